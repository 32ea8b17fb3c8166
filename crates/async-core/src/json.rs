//! JSON text as Python reads and writes it, lone surrogates included.
//!
//! ansible-core reads a module's output with `errors="surrogateescape"`: every byte that is
//! not UTF-8 becomes a lone surrogate (`\xe9` → U+DCE9), and Python's `json` writes such a
//! character as a lone surrogate escape (`"caf\udce9"`); modules printing JSON with
//! `MODULE_STRICT_UTF8_RESPONSE` off do the same. That is not Unicode, and serde_json
//! refuses it. So every reader and writer of module results and job files goes through
//! here: a lone surrogate is held in a Rust string as two private-use characters
//! ([`MARK`], then U+10D800 + its offset) and written back as the same escape, so a job
//! file reads back to what ansible's own wrapper would have written, byte for byte in
//! those strings.
//!
//! Text that really holds U+10FFFD followed by a character of U+10D800..=U+10DFFF (both
//! private use, in the last plane) would be written as a lone surrogate: no module output
//! has been seen to hold that pair.

use serde_json::Value;

/// Marks the next character as standing for a lone surrogate.
const MARK: char = '\u{10FFFD}';
/// Where the stand-ins of U+D800..=U+DFFF start.
const BASE: u32 = 0x10_0000;

/// The stand-in of the lone surrogate `unit` (U+D800..=U+DFFF).
fn stand_in(unit: u32) -> [char; 2] {
    debug_assert!((0xD800..=0xDFFF).contains(&unit));
    [MARK, char::from_u32(BASE + unit).unwrap_or(char::REPLACEMENT_CHARACTER)]
}

/// `bytes` decoded as Python does with `errors="surrogateescape"`: each byte that is not
/// part of valid UTF-8 stands for U+DC80..=U+DCFF.
pub fn decode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for &byte in chunk.invalid() {
            text.extend(stand_in(0xDC00 + u32::from(byte)));
        }
    }
    text
}

/// Parses JSON text, taking lone surrogate escapes as Python does.
pub fn parse(text: &str) -> serde_json::Result<Value> {
    match serde_json::from_str(text) {
        Err(e) if e.is_syntax() => match with_stand_ins(text) {
            Some(text) => serde_json::from_str(&text).map_err(|_| e),
            None => Err(e),
        },
        parsed => parsed,
    }
}

/// Parses JSON bytes (UTF-8, as every job file and arguments file is).
pub fn parse_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// `value` as compact JSON, lone surrogates written back as `\udXXX` escapes.
pub fn to_string(value: &Value) -> String {
    with_escapes(value.to_string())
}

/// `value` as indented JSON for a person, lone surrogates written as escapes.
pub fn to_string_pretty(value: &Value) -> String {
    with_escapes(serde_json::to_string_pretty(value).unwrap_or_default())
}

/// `text` with every lone surrogate escape replaced by its stand-in; `None` when it has none.
fn with_stand_ins(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let unit_at = |i: usize| -> Option<u32> {
        let digits = bytes.get(i..i + 6)?;
        if digits[0] != b'\\' || digits[1] != b'u' {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(&digits[2..]).ok()?, 16).ok()
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unit_at(i) else {
            // Any other escape (`\\` among them) is two bytes long.
            i += 2;
            continue;
        };
        let paired = (0xD800..=0xDBFF).contains(&unit)
            && unit_at(i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
        if paired {
            i += 12;
        } else if (0xD800..=0xDFFF).contains(&unit) {
            out.push_str(&text[copied..i]);
            out.extend(stand_in(unit));
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// `json` (serialised by serde_json) with every stand-in written as Python's escape.
fn with_escapes(json: String) -> String {
    if !json.contains(MARK) {
        return json;
    }
    let mut out = String::with_capacity(json.len());
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        let unit = chars.peek().map(|&next| u32::from(next).wrapping_sub(BASE));
        match unit {
            Some(unit) if c == MARK && (0xD800..=0xDFFF).contains(&unit) => {
                chars.next();
                out.push_str(&format!("\\u{unit:04x}"));
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lone_surrogates_read_and_write_back_as_python_wrote_them() {
        for text in [
            r#"{"stdout":"caf\udce9","x":["\ud800","a\udfffb"]}"#,
            r#"{"k\udce9":"\udce9\udce9"}"#,
            r#"{"high_then_text":"\ud83dx","low_alone":"\ude00"}"#,
        ] {
            assert_eq!(to_string(&parse(text).unwrap()), text);
        }
    }

    #[test]
    fn other_escapes_and_pairs_are_ordinary_json() {
        let value = parse(r#"{"pair":"\ud83d\ude00","slash":"\\udce9","e":"\u00e9"}"#).unwrap();
        assert_eq!(value, json!({"pair": "😀", "slash": "\\udce9", "e": "é"}));
        assert_eq!(to_string(&value), r#"{"e":"é","pair":"😀","slash":"\\udce9"}"#);
    }

    #[test]
    fn uppercase_escapes_are_written_back_as_python_writes_them() {
        assert_eq!(to_string(&parse(r#"{"a":"\uDCE9"}"#).unwrap()), r#"{"a":"\udce9"}"#);
    }

    #[test]
    fn invalid_json_keeps_serde_json_s_message() {
        let e = parse(r#"{"a": \udce9}"#).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(parse(r#"{"a": "\ud"}"#).is_err());
        assert!(parse(r#"{"a": "x\"#).is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_decode_as_surrogateescape() {
        let text = decode(b"caf\xe9 \xe2\x82 ok \xc3\xa9");
        assert_eq!(to_string(&json!(text)), r#""caf\udce9 \udce2\udc82 ok é""#);
        assert_eq!(decode(b"plain"), "plain");
    }

    #[test]
    fn pretty_output_escapes_too() {
        let value = parse(r#"{"a":"\udce9"}"#).unwrap();
        assert_eq!(to_string_pretty(&value), "{\n  \"a\": \"\\udce9\"\n}");
    }
}
