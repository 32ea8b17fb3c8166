//! A module's raw output turned into its result, the way ansible-core's async_wrapper does:
//! lines before the first line starting with `{` and after the last line ending with `}`
//! are dropped, and trailing junk earns a warning. Which trailing lines are junk depends on
//! the ansible-core in use: see [`Junk`].

use serde_json::{Map, Value};

/// The warning ansible-core adds for text after a module's JSON; users match on it.
pub use crate::rules::JUNK_WARNING;
use crate::rules::{self, fill};

/// Why a module's output gave no result. The text ends up in the job file's `msg`.
#[derive(Debug, PartialEq, Eq)]
pub struct NotJson(pub String);

/// Which lines after a module's JSON count as junk (and earn the warning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Junk {
    /// Any line, blank ones too: ansible-core up to 2.20 (the legacy wrapper protocol).
    AnyLine,
    /// Only when one of them is not blank: ansible-core 2.21 on (the command protocol).
    NonBlankLine,
}

/// Python's `str.splitlines()`: every line break ansible's own filter splits on.
fn split_lines(data: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = data.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if is_break {
            lines.push(&data[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < data.len() {
        lines.push(&data[start..]);
    }
    lines
}

/// Cuts the JSON object out of `data`; returns it with the junk warnings to add.
pub fn filter_non_json_lines(data: &str, rule: Junk) -> Result<(String, Vec<String>), NotJson> {
    let lines = split_lines(data);
    let start = lines
        .iter()
        .position(|l| l.trim().starts_with('{'))
        .ok_or_else(|| NotJson(rules::NO_JSON_START.into()))?;
    let lines = &lines[start..];
    let end = lines
        .iter()
        .rposition(|l| l.trim().ends_with('}'))
        .ok_or_else(|| NotJson(rules::NO_JSON_END.into()))?;
    let junk = &lines[end + 1..];
    let mut warnings = Vec::new();
    let is_junk = match rule {
        Junk::AnyLine => !junk.is_empty(),
        Junk::NonBlankLine => junk.iter().any(|l| !l.trim().is_empty()),
    };
    if is_junk {
        warnings.push(format!("{JUNK_WARNING}{}", junk.join("\n")));
    }
    Ok((lines[..=end].join("\n"), warnings))
}

/// The result a module's run leaves in its job file: its JSON object, with junk warnings
/// merged into `warnings` and its stderr, when it wrote any, as `stderr`.
pub fn module_result(stdout: &[u8], stderr: &[u8], rule: Junk) -> Result<Map<String, Value>, NotJson> {
    let text = crate::json::decode(stdout);
    let (json, junk) = filter_non_json_lines(&text, rule)?;
    let mut result = match crate::json::parse(&json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(NotJson(rules::NOT_AN_OBJECT.into())),
        Err(e) => return Err(NotJson(fill(rules::NOT_VALID_JSON, &[("error", &e)]))),
    };
    if !junk.is_empty() {
        let warnings = match result.remove("warnings") {
            Some(Value::Array(list)) => list,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => vec![other],
        };
        let warnings = warnings.into_iter().chain(junk.into_iter().map(Value::String));
        result.insert("warnings".into(), Value::Array(warnings.collect()));
    }
    if !stderr.is_empty() {
        result.insert("stderr".into(), Value::String(crate::json::decode(stderr)));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_passes_through() {
        let r = module_result(b"{\"changed\": true, \"rc\": 0}\n", b"", Junk::NonBlankLine).unwrap();
        assert_eq!(Value::Object(r), json!({"changed": true, "rc": 0}));
    }

    #[test]
    fn leading_junk_is_dropped_silently() {
        let r =
            module_result(b"MOTD line\n  tcgetattr: nope\n{\"a\": 1}\n", b"", Junk::NonBlankLine).unwrap();
        assert_eq!(Value::Object(r), json!({"a": 1}));
    }

    #[test]
    fn trailing_junk_is_dropped_with_a_warning() {
        let r = module_result(b"{\"a\": 1,\n \"warnings\": [\"w\"]}\nbye\nnow\n", b"", Junk::NonBlankLine)
            .unwrap();
        assert_eq!(r["warnings"], json!(["w", "Module invocation had junk after the JSON data: bye\nnow"]));
        let r = module_result(b"{\"a\": 1, \"warnings\": \"w\"}\nbye", b"", Junk::NonBlankLine).unwrap();
        assert_eq!(r["warnings"], json!(["w", "Module invocation had junk after the JSON data: bye"]));
    }

    #[test]
    fn blank_trailing_lines_are_junk_up_to_ansible_core_2_20_only() {
        let r = module_result(b"{\"a\": 1}\n\n   \n", b"", Junk::NonBlankLine).unwrap();
        assert!(!r.contains_key("warnings"));
        let r = module_result(b"{\"a\": 1}\n\n   \n", b"", Junk::AnyLine).unwrap();
        assert_eq!(r["warnings"], json!(["Module invocation had junk after the JSON data: \n   "]));
        // A single final newline ends the JSON line; it is no line of its own.
        let r = module_result(b"{\"a\": 1}\n", b"", Junk::AnyLine).unwrap();
        assert!(!r.contains_key("warnings"));
        let r = module_result(b"{\"a\": 1}\nbye\n", b"", Junk::AnyLine).unwrap();
        assert_eq!(r["warnings"], json!(["Module invocation had junk after the JSON data: bye"]));
    }

    #[test]
    fn stderr_is_kept_when_there_is_some() {
        let r = module_result(b"{\"a\": 1}", b"oops\n", Junk::NonBlankLine).unwrap();
        assert_eq!(r["stderr"], "oops\n");
    }

    #[test]
    fn splits_lines_as_python_does() {
        assert_eq!(split_lines("a\r\nb\rc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n\nb\n"), ["a", "", "b"]);
        assert_eq!(split_lines(""), Vec::<&str>::new());
        let r = module_result(b"junk\r\n{\"a\": 1}\r\n", b"", Junk::NonBlankLine).unwrap();
        assert_eq!(r["a"], 1);
    }

    #[test]
    fn output_without_json_says_why() {
        assert_eq!(module_result(b"", b"", Junk::NonBlankLine).unwrap_err().0, "No start of json char found");
        assert_eq!(
            module_result(b"Traceback\n  boom\n", b"", Junk::NonBlankLine).unwrap_err().0,
            "No start of json char found"
        );
        assert_eq!(
            module_result(b"{ \"a\": 1\n", b"", Junk::NonBlankLine).unwrap_err().0,
            "No end of json char found"
        );
        let e = module_result(b"{\"a\": }\n", b"", Junk::NonBlankLine).unwrap_err().0;
        assert!(e.starts_with("module output is not valid JSON: "), "{e}");
    }

    #[test]
    fn non_utf8_output_does_not_break_parsing() {
        let r = module_result(b"\xff\xfe junk\n{\"a\": \"x\"}\n", b"\xff", Junk::NonBlankLine).unwrap();
        assert_eq!(r["a"], "x");
        // As ansible-core's wrapper has it (surrogateescape), so written back as `\udcff`.
        assert_eq!(crate::json::to_string(&r["stderr"]), r#""\udcff""#);
    }

    #[test]
    fn lone_surrogates_from_python_s_json_are_kept() {
        let r = module_result(b"{\"stdout\": \"caf\\udce9\", \"rc\": 0}\n", b"", Junk::NonBlankLine).unwrap();
        assert_eq!(crate::json::to_string(&Value::Object(r)), r#"{"rc":0,"stdout":"caf\udce9"}"#);
    }
}
