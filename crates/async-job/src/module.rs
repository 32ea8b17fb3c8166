//! `async_job` as an ansible binary module: `async_job ARGS_FILE`.
//!
//! Arguments: `mode` (`list`, `terminate`, `gc`), `jid` (terminate), `older_than` (gc:
//! `3600`, `90s`, `15m`, `2h`, `1d`), `async_dir` (default: `ANSIBLE_ASYNC_DIR`, else
//! `~/.ansible_async`). Supports check mode: reports what would change, changes nothing.

use std::path::Path;

use async_core::ModuleArgs;
use serde_json::{json, Value};

use crate::jobs::{self, Error};

pub fn run(args_file: &Path) -> (Value, i32) {
    match read_args(args_file).and_then(|args| execute(&args)) {
        Ok(result) => (result, 0),
        Err(e) => (json!({"failed": true, "msg": e.to_string()}), 1),
    }
}

fn read_args(path: &Path) -> Result<ModuleArgs, Error> {
    ModuleArgs::read(path).map_err(Error::Invalid)
}

fn execute(args: &ModuleArgs) -> Result<Value, Error> {
    const KNOWN: [&str; 4] = ["mode", "jid", "older_than", "async_dir"];
    args.only("async_job", &KNOWN, &KNOWN).map_err(Error::Invalid)?;
    let text = |key: &str| args.string(key).map_err(Error::Invalid);
    let check_mode = args.check_mode();
    let dir = args.job_dir("async_dir").map_err(Error::Invalid)?;
    let async_dir = dir.path().display().to_string();
    match text("mode")?.as_deref() {
        Some("list") => {
            let jobs: Vec<Value> = jobs::list(&dir)?.iter().map(|info| info.to_json()).collect();
            Ok(json!({"changed": false, "async_dir": async_dir, "jobs": jobs}))
        }
        Some("terminate") => {
            let jid = text("jid")?.ok_or_else(|| Error::Invalid("mode=terminate needs jid".into()))?;
            let done = jobs::terminate(&dir, &jid, check_mode)?;
            Ok(json!({
                "changed": done.changed,
                "ansible_job_id": jid,
                "state_before": done.before.as_str(),
                "msg": done.msg,
                "result": done.result,
            }))
        }
        Some("gc") => {
            let older_than = text("older_than")?
                .ok_or_else(|| Error::Invalid("mode=gc needs older_than (e.g. 1d)".into()))?;
            let done = jobs::gc(&dir, jobs::parse_duration(&older_than)?, check_mode)?;
            Ok(json!({
                "changed": !done.removed.is_empty(),
                "async_dir": async_dir,
                "removed": done.removed,
                "kept_running": done.kept_running,
            }))
        }
        Some(other) => {
            Err(Error::Invalid(format!("value of mode must be one of: list, terminate, gc, got: {other}")))
        }
        None => Err(Error::Invalid("missing required arguments: mode".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(dir: &Path, args: Value) -> (Value, i32) {
        let file = dir.join("args");
        std::fs::write(&file, args.to_string()).unwrap();
        run(&file)
    }

    #[test]
    fn bad_input_is_a_clear_failure_that_touches_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let async_dir = tmp.path().join("async");
        std::fs::create_dir(&async_dir).unwrap();
        let victim = tmp.path().join("x");
        std::fs::write(&victim, "{}").unwrap();
        let d = async_dir.to_str().unwrap();
        let cases = [
            (json!({"mode": "terminate", "jid": "../x", "async_dir": d}), "invalid job id"),
            (json!({"mode": "terminate", "jid": "j1.1", "async_dir": d}), "could not find job j1.1"),
            (json!({"mode": "terminate", "async_dir": d}), "mode=terminate needs jid"),
            (json!({"mode": "kill", "async_dir": d}), "value of mode must be one of"),
            (json!({"mode": "gc", "older_than": "-1d", "async_dir": d}), "must not be negative"),
            (json!({"mode": "gc", "async_dir": d}), "needs older_than"),
            (
                json!({"mode": "list", "async_dir": tmp.path().join("nope").to_str().unwrap()}),
                "does not exist",
            ),
            (json!({"mode": "list", "bogus": 1}), "Unsupported parameters"),
            (json!({"async_dir": d}), "missing required arguments: mode"),
        ];
        for (args, msg) in cases {
            let (result, code) = call(tmp.path(), args.clone());
            assert_eq!(code, 1, "{args}");
            assert_eq!(result["failed"], true);
            assert!(result["msg"].as_str().unwrap().contains(msg), "{args} -> {result}");
        }
        assert!(victim.exists());
        assert!(!tmp.path().join("nope").exists());
    }
}
