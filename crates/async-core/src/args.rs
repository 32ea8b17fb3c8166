//! The arguments ansible gives a JSON-args or binary module: one flat JSON object in a file,
//! the task's arguments plus ansible's own `_ansible_*` keys.

use std::path::Path;

use serde_json::{Map, Value};

use crate::rules::{self, fill};
use crate::JobDir;

#[derive(Clone, Debug)]
pub struct ModuleArgs {
    map: Map<String, Value>,
}

impl ModuleArgs {
    /// Reads the arguments file; the error is a `msg` for the user.
    pub fn read(path: &Path) -> Result<ModuleArgs, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("could not read the module arguments file {}: {e}", path.display()))?;
        match crate::json::parse_slice(&text) {
            Ok(Value::Object(map)) => Ok(ModuleArgs { map }),
            Ok(_) => Err(format!("the module arguments file {} is not a JSON object", path.display())),
            Err(e) => Err(format!("the module arguments file {} is not valid JSON: {e}", path.display())),
        }
    }

    pub fn new(map: Map<String, Value>) -> ModuleArgs {
        ModuleArgs { map }
    }

    /// Refuses arguments other than `known` (and ansible's own), as AnsibleModule does;
    /// `shown` are the ones the message lists as supported.
    pub fn only(&self, module: &str, known: &[&str], shown: &[&str]) -> Result<(), String> {
        let unsupported: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !k.starts_with(rules::ANSIBLE_ARG_PREFIX) && !known.contains(k))
            .collect();
        if unsupported.is_empty() {
            return Ok(());
        }
        let (keys, known) = (unsupported.join(", "), shown.join(", "));
        Err(fill(rules::UNSUPPORTED, &[("module", &module), ("keys", &keys), ("known", &known)]))
    }

    /// A string argument; numbers are taken as their text, as ansible's `str` type does.
    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(fill(rules::NOT_A_STRING, &[("key", &key), ("value", other)])),
        }
    }

    /// A number of seconds, 0 or more, given as a JSON number; `None` when absent.
    pub fn seconds(&self, key: &str) -> Result<Option<f64>, String> {
        let bad = |value: &Value| {
            fill(rules::BAD_WAIT, &[("key", &key), ("max", &rules::MAX_TIME_LIMIT), ("value", value)])
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs >= 0.0 && secs.is_finite() => Ok(Some(secs)),
                _ => Err(bad(&Value::Number(n.clone()))),
            },
            Some(other) => Err(bad(other)),
        }
    }

    /// An argument as given.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A boolean argument, as ansible's `bool` type takes it: JSON `true`/`false`, or `yes`,
    /// `no`, `on`, `off`, `true`, `false`, `y`, `n`, `1`, `0` (any case) as text or number.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        let text = match self.get(key) {
            None => return Ok(None),
            Some(Value::Bool(b)) => return Ok(Some(*b)),
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(format!("argument '{key}' must be a boolean, not {other}")),
        };
        match text.as_str() {
            "yes" | "on" | "true" | "y" | "t" | "1" | "1.0" => Ok(Some(true)),
            "no" | "off" | "false" | "n" | "f" | "0" | "0.0" => Ok(Some(false)),
            _ => Err(format!("argument '{key}' must be a boolean (true or false), got: {text}")),
        }
    }

    /// The job dir named by argument `key`, else the one ansible's environment names.
    pub fn job_dir(&self, key: &str) -> Result<JobDir, String> {
        Ok(match self.string(key)? {
            Some(dir) if !dir.is_empty() => JobDir::new(&dir),
            _ => JobDir::from_env(),
        })
    }

    pub fn check_mode(&self) -> bool {
        self.flag("_ansible_check_mode")
    }

    /// Whether ansible asks for `invocation` in the results a module builds itself
    /// (ansible-core 2.21 on: its `INJECT_INVOCATION` setting; off by default).
    pub fn inject_invocation(&self) -> bool {
        self.flag("_ansible_inject_invocation")
    }

    fn flag(&self, key: &str) -> bool {
        self.map.get(key) == Some(&Value::Bool(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> ModuleArgs {
        ModuleArgs::new(v.as_object().unwrap().clone())
    }

    #[test]
    fn reads_strings_numbers_and_flags() {
        let a = args(json!({"jid": "j1", "n": 17, "none": null, "_ansible_check_mode": true}));
        assert_eq!(a.string("jid").unwrap().as_deref(), Some("j1"));
        assert_eq!(a.string("n").unwrap().as_deref(), Some("17"));
        assert_eq!(a.string("none").unwrap(), None);
        assert_eq!(a.string("missing").unwrap(), None);
        assert!(a.check_mode());
        assert!(args(json!({"l": [1]})).string("l").unwrap_err().contains("must be a string"));
        let b = args(json!({"t": true, "y": "Yes", "n": 0, "bad": "maybe", "l": [], "none": null}));
        assert_eq!(
            (b.boolean("t"), b.boolean("y"), b.boolean("n")),
            (Ok(Some(true)), Ok(Some(true)), Ok(Some(false)))
        );
        assert_eq!(b.boolean("none"), Ok(None));
        assert!(b.boolean("bad").unwrap_err().contains("must be a boolean"));
        assert!(b.boolean("l").unwrap_err().contains("must be a boolean"));
    }

    #[test]
    fn refuses_unknown_arguments_but_not_ansibles_own() {
        let a = args(json!({"jid": "j1", "_ansible_no_log": false, "bogus": 1}));
        let msg = a.only("async_status", &["jid"], &["jid"]).unwrap_err();
        assert_eq!(
            msg,
            "Unsupported parameters for (async_status) module: bogus. Supported parameters include: jid."
        );
        assert!(args(json!({"jid": "j1", "_ansible_x": 1})).only("m", &["jid"], &["jid"]).is_ok());
    }

    #[test]
    fn unreadable_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("args");
        assert!(ModuleArgs::read(&path).unwrap_err().starts_with("could not read the module arguments file"));
        std::fs::write(&path, "jid=1 mode=status").unwrap();
        assert!(ModuleArgs::read(&path).unwrap_err().contains("is not valid JSON"));
        std::fs::write(&path, "[1]").unwrap();
        assert!(ModuleArgs::read(&path).unwrap_err().contains("is not a JSON object"));
    }
}
