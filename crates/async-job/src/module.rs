//! `async_job` as an ansible module: `async_job --args-json JSON` (what `library/async_job`,
//! a JSON-args script, runs), or `async_job ARGS_FILE`.
//!
//! Arguments: `mode` (`list`, `terminate`, `gc`, `wait`), `jid` (one job id or a list of
//! them), `all` (terminate: every running job, instead of `jid`; narrowed by `older_than` and
//! `module`, a module name), `older_than` (gc, terminate: `3600`, `90s`, `15m`, `2h`, `1d`),
//! `timeout` (wait: whole seconds; none: as long as the jobs run), `cleanup` (wait: remove the files of the
//! jobs returned), `async_dir` (default: `ANSIBLE_ASYNC_DIR`, else `~/.ansible_async`).
//! Supports check mode: reports what would change, changes nothing.

use std::path::Path;

use async_core::{rules, JobDir, ModuleArgs};
use serde_json::{json, Value};

use crate::jobs::{self, Error, Selection};
use crate::wait::{self, Watch};

/// The values `mode` takes.
const MODES: [&str; 4] = ["list", "terminate", "gc", "wait"];

pub fn run(args_file: &Path) -> (Value, i32) {
    answer(ModuleArgs::read(args_file).map_err(Error::Invalid))
}

/// The arguments as JSON text (what ansible writes into a JSON-args module).
pub fn run_json(text: &str) -> (Value, i32) {
    let args = match async_core::json::parse(text) {
        Ok(Value::Object(map)) => Ok(ModuleArgs::new(map)),
        Ok(_) => Err(Error::Invalid(rules::ARGS_NOT_OBJECT.into())),
        Err(_) => Err(Error::Invalid(rules::ARGS_NOT_JSON.into())),
    };
    answer(args)
}

fn answer(args: Result<ModuleArgs, Error>) -> (Value, i32) {
    match args.and_then(|args| execute(&args)) {
        Ok(result) => {
            let code = if result["failed"] == json!(true) { 1 } else { 0 };
            (result, code)
        }
        Err(e) => (json!({"failed": true, "msg": e.to_string()}), 1),
    }
}

fn execute(args: &ModuleArgs) -> Result<Value, Error> {
    const KNOWN: [&str; 8] =
        ["mode", "jid", "all", "module", "older_than", "timeout", "cleanup", "async_dir"];
    args.only("async_job", &KNOWN, &KNOWN).map_err(Error::Invalid)?;
    let dir = args.job_dir("async_dir").map_err(Error::Invalid)?;
    let call = Call { args, async_dir: dir.path().display().to_string(), dir, check_mode: args.check_mode() };
    match call.text("mode")?.as_deref() {
        Some("list") => call.list(),
        Some("terminate") => call.terminate(),
        Some("gc") => call.gc(),
        Some("wait") => call.wait(),
        Some(other) => Err(Error::Invalid(rules::fill(
            rules::NOT_A_CHOICE,
            &[("key", &"mode"), ("choices", &MODES.join(", ")), ("value", &other)],
        ))),
        None => Err(Error::Invalid(rules::fill(rules::MISSING, &[("keys", &"mode")]))),
    }
}

/// One call of the module: its arguments and the async dir they name.
struct Call<'a> {
    args: &'a ModuleArgs,
    dir: JobDir,
    async_dir: String,
    check_mode: bool,
}

impl Call<'_> {
    fn text(&self, key: &str) -> Result<Option<String>, Error> {
        self.args.string(key).map_err(Error::Invalid)
    }

    fn list(&self) -> Result<Value, Error> {
        let infos = jobs::list(&self.dir)?;
        let old = jobs::finished_older_than_a_day(&infos);
        let jobs: Vec<Value> = infos.iter().map(|info| info.to_json()).collect();
        Ok(
            json!({"changed": false, "async_dir": self.async_dir, "jobs": jobs, "finished_older_than_1d": old}),
        )
    }

    /// One job (`jid` one id) answers with that job's outcome; several (a list of ids, ids
    /// separated by commas, or `all: true`) with each one's and a summary.
    fn terminate(&self) -> Result<Value, Error> {
        const NEEDS: &str = "mode=terminate needs jid, or all: true";
        let all = self.args.boolean("all").map_err(Error::Invalid)?.unwrap_or(false);
        let selection = match (self.args.get("jid"), all) {
            (Some(_), true) => {
                return Err(Error::Invalid("mode=terminate takes jid or all, not both".into()))
            }
            (None, true) => Selection::Running {
                older_than: self.text("older_than")?.map(|d| jobs::parse_duration(&d)).transpose()?,
                module: self.text("module")?,
            },
            (None, false) => return Err(Error::Invalid(NEEDS.into())),
            (Some(jid @ Value::Array(_)), false) => Selection::Ids(job_ids(Some(jid))?),
            (Some(jid), false) => {
                let one = self.text("jid")?.ok_or_else(|| Error::Invalid(NEEDS.into()))?;
                if !one.contains(',') {
                    return self.terminate_one(&one);
                }
                Selection::Ids(job_ids(Some(jid))?)
            }
        };
        let outcomes = jobs::terminate_many(&self.dir, &selection, self.check_mode)?;
        Ok(many_to_json(&self.async_dir, &outcomes, self.check_mode))
    }

    fn terminate_one(&self, jid: &str) -> Result<Value, Error> {
        let done = jobs::terminate(&self.dir, jid, self.check_mode)?;
        Ok(json!({
            "changed": done.changed,
            "ansible_job_id": jid,
            "state_before": done.before.as_str(),
            "msg": done.msg,
            "result": done.result,
        }))
    }

    fn gc(&self) -> Result<Value, Error> {
        let older_than = self
            .text("older_than")?
            .ok_or_else(|| Error::Invalid("mode=gc needs older_than (e.g. 1d)".into()))?;
        let done = jobs::gc(&self.dir, jobs::parse_duration(&older_than)?, self.check_mode)?;
        Ok(json!({
            "changed": !done.removed.is_empty(),
            "async_dir": self.async_dir,
            "removed": done.removed,
            "kept_running": done.kept_running,
        }))
    }

    fn wait(&self) -> Result<Value, Error> {
        let request = wait::Request {
            jids: job_ids(self.args.get("jid"))?,
            timeout: wait::parse_timeout(self.args.get("timeout"))?,
            cleanup: self.args.boolean("cleanup").map_err(Error::Invalid)?.unwrap_or(false),
            check_mode: self.check_mode,
            watch: Watch::Inotify,
        };
        Ok(wait::wait(&self.dir, &request)?.to_json(&self.dir, request.cleanup))
    }
}

/// The answer of a terminate of many jobs: each job's outcome, in order, and which ended.
pub(crate) fn many_to_json(async_dir: &str, outcomes: &[jobs::JobOutcome], check_mode: bool) -> Value {
    let mut ended = Vec::new();
    let mut errors = Vec::new();
    let jobs: Vec<Value> = outcomes
        .iter()
        .map(|job| match (&job.outcome, &job.error) {
            (Some(done), _) => {
                if done.changed {
                    ended.push(job.jid.clone());
                }
                json!({"ansible_job_id": job.jid, "changed": done.changed, "state_before": done.before.as_str(),
                       "msg": done.msg})
            }
            (None, Some(error)) => {
                errors.push(job.jid.clone());
                json!({"ansible_job_id": job.jid, "changed": false, "failed": true, "msg": error})
            }
            (None, None) => json!({"ansible_job_id": job.jid, "changed": false, "state_before": "missing",
                                   "msg": Error::NotFound(job.jid.clone()).to_string()}),
        })
        .collect();
    let verb = if check_mode { "would terminate" } else { "terminated" };
    let mut msg = format!("{verb} {} of {} job(s)", ended.len(), outcomes.len());
    if !errors.is_empty() {
        msg.push_str(&format!("; could not end {}", errors.join(", ")));
    }
    let key = if check_mode { "would_terminate" } else { "terminated" };
    json!({"changed": !ended.is_empty(), "failed": !errors.is_empty(), "async_dir": async_dir, "jobs": jobs,
           key: ended, "msg": msg})
}

/// `jid` of mode=wait: one id, a list of them, or ids separated by commas (as ansible's
/// `list` type takes text).
fn job_ids(value: Option<&Value>) -> Result<Vec<String>, Error> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(Error::Invalid(format!("jid must be a job id or a list of job ids, got: {other}"))),
    };
    match value {
        None => Err(Error::Invalid("jid: one job id or a non-empty list of them is needed".into())),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(Value::String(s)) if s.contains(',') => Ok(s.split(',').map(|j| j.trim().to_string()).collect()),
        Some(other) => Ok(vec![one(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_core::{JobDir, JobId, ProcessStamp};

    fn call(dir: &Path, args: Value) -> (Value, i32) {
        let file = dir.join("args");
        std::fs::write(&file, args.to_string()).unwrap();
        run(&file)
    }

    #[test]
    fn list_counts_the_finished_jobs_older_than_a_day() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        let me = ProcessStamp::current().unwrap();
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for (id, job) in [
            ("j1.1", json!({"rc": 0})),
            ("j2.2", json!({"failed": true})),
            ("j3.3", json!({"rc": 0})),
            ("j4.4", json!({"started": true, "finished": false, "supervisor": me})),
        ] {
            let id = JobId::new(id).unwrap();
            dir.write(&id, &job).unwrap();
            if id.as_str() != "j3.3" {
                let file = std::fs::File::options().write(true).open(dir.job_path(&id)).unwrap();
                file.set_modified(two_days_ago).unwrap();
            }
        }
        let (r, code) = call(tmp.path(), json!({"mode": "list", "async_dir": dir.path().to_str().unwrap()}));
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["finished_older_than_1d"], 2, "the old running one and the young one do not count: {r}");
        assert_eq!(r["jobs"][0]["held"], false);
    }

    #[test]
    fn bad_input_is_a_clear_failure_that_touches_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let async_dir = tmp.path().join("async");
        std::fs::create_dir(&async_dir).unwrap();
        let victim = tmp.path().join("x");
        std::fs::write(&victim, "{}").unwrap();
        std::fs::write(async_dir.join("j2.2"), "{\"rc\": 0}").unwrap();
        let d = async_dir.to_str().unwrap();
        let cases = [
            (json!({"mode": "terminate", "jid": "../x", "async_dir": d}), "invalid job id"),
            (json!({"mode": "terminate", "jid": "j1.1", "async_dir": d}), "could not find job j1.1"),
            (json!({"mode": "terminate", "async_dir": d}), "mode=terminate needs jid, or all: true"),
            (json!({"mode": "terminate", "jid": ["j1.1", "../x"], "async_dir": d}), "invalid job id"),
            (json!({"mode": "terminate", "jid": ["j1.1", "j1.1"], "async_dir": d}), "more than once"),
            (json!({"mode": "terminate", "jid": [], "async_dir": d}), "at least one job"),
            (json!({"mode": "terminate", "jid": ["j1.1"], "all": true, "async_dir": d}), "not both"),
            (
                json!({"mode": "terminate", "all": true, "older_than": "soon", "async_dir": d}),
                "older_than must be",
            ),
            (json!({"mode": "kill", "async_dir": d}), "value of mode must be one of"),
            (json!({"mode": "gc", "older_than": "-1d", "async_dir": d}), "must not be negative"),
            (json!({"mode": "gc", "async_dir": d}), "needs older_than"),
            (
                json!({"mode": "list", "async_dir": tmp.path().join("nope").to_str().unwrap()}),
                "does not exist",
            ),
            (json!({"mode": "list", "bogus": 1}), "Unsupported parameters"),
            (json!({"async_dir": d}), "missing required arguments: mode"),
            (json!({"mode": "wait", "async_dir": d, "cleanup": true}), "jid: one job id or a non-empty list"),
            (json!({"mode": "wait", "jid": [], "async_dir": d, "cleanup": true}), "non-empty list"),
            (
                json!({"mode": "wait", "jid": ["j2.2", "../x"], "async_dir": d, "cleanup": true}),
                "invalid job id",
            ),
            (json!({"mode": "wait", "jid": ["j2.2", {"a": 1}], "async_dir": d}), "a list of job ids"),
            (json!({"mode": "wait", "jid": "j2.2,j2.2", "async_dir": d, "cleanup": true}), "more than once"),
            (
                json!({"mode": "wait", "jid": ["j2.2", "j9.9"], "async_dir": d, "cleanup": true}),
                "could not find job j9.9",
            ),
            (
                json!({"mode": "wait", "jid": "j2.2", "timeout": 2.5, "async_dir": d, "cleanup": true}),
                "whole number",
            ),
            (
                json!({"mode": "wait", "jid": "j2.2", "timeout": "soon", "async_dir": d, "cleanup": true}),
                "whole number",
            ),
            (json!({"mode": "wait", "jid": "j2.2", "cleanup": "maybe", "async_dir": d}), "must be a boolean"),
        ];
        for (args, msg) in cases {
            let (result, code) = call(tmp.path(), args.clone());
            assert_eq!(code, 1, "{args}");
            assert_eq!(result["failed"], true);
            assert!(result["msg"].as_str().unwrap().contains(msg), "{args} -> {result}");
        }
        assert!(victim.exists());
        assert!(async_dir.join("j2.2").exists(), "no cleanup after bad input");
        assert!(!tmp.path().join("nope").exists());
    }

    #[test]
    fn wait_as_a_module() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        let id = |j: &str| JobId::new(j).unwrap();
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        dir.write(&id("j2.2"), &json!({"rc": 3, "failed": true, "msg": "boom"})).unwrap();
        let me = ProcessStamp::current().unwrap();
        dir.write(
            &id("j3.3"),
            &json!({"started": true, "finished": false, "ansible_job_id": "j3.3", "supervisor": me}),
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();

        let args =
            json!({"mode": "wait", "jid": ["j2.2", "j1.1"], "async_dir": d, "_ansible_check_mode": false});
        let (r, code) = run_json(&args.to_string());
        assert_eq!(code, 1, "{r}");
        assert_eq!(
            (&r["finished"], &r["failed"], &r["changed"]),
            (&json!(true), &json!(true), &json!(false))
        );
        assert_eq!(r["msg"], "1 of 2 job(s) failed: j2.2");
        assert_eq!(r["failed_jobs"], json!(["j2.2"]));
        assert_eq!(
            r["results"][0],
            json!({"rc": 3, "failed": true, "msg": "boom", "finished": true, "ansible_job_id": "j2.2"})
        );
        assert_eq!(r["results"][1], json!({"rc": 0, "finished": true, "ansible_job_id": "j1.1"}));
        assert!(r.get("removed").is_none() && r.get("running_jobs").is_none());

        // One id as text, and a timeout as text: a running job times out.
        let args = json!({"mode": "wait", "jid": "j3.3", "timeout": "0", "async_dir": d});
        let (r, code) = run_json(&args.to_string());
        assert_eq!((code, &r["finished"], &r["failed"]), (1, &json!(false), &json!(true)), "{r}");
        assert_eq!(r["running_jobs"], json!(["j3.3"]));

        // Check mode: would remove, removes nothing; then for real.
        let args = json!({"mode": "wait", "jid": "j1.1", "cleanup": "yes", "async_dir": d, "_ansible_check_mode": true});
        let (r, code) = run_json(&args.to_string());
        assert_eq!((code, &r["changed"], &r["removed"]), (0, &json!(true), &json!(["j1.1"])), "{r}");
        assert!(dir.job_path(&id("j1.1")).exists());
        let args = json!({"mode": "wait", "jid": "j1.1", "cleanup": true, "async_dir": d});
        let (r, code) = run_json(&args.to_string());
        assert_eq!((code, &r["changed"], &r["msg"]), (0, &json!(true), &json!("all 1 job(s) ended")), "{r}");
        assert!(!dir.job_path(&id("j1.1")).exists());
    }

    #[test]
    fn terminate_answers_for_one_job_or_for_many_by_the_form_of_jid_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        dir.write(&JobId::new("j1.1").unwrap(), &json!({"rc": 0})).unwrap();
        let d = dir.path().to_str().unwrap();
        for args in [
            json!({"mode": "terminate", "jid": "j1.1", "async_dir": d}),
            json!({"mode": "terminate", "jid": "j1.1", "all": false, "async_dir": d}),
        ] {
            let (r, code) = run_json(&args.to_string());
            assert_eq!(
                (code, &r["ansible_job_id"], &r["state_before"]),
                (0, &json!("j1.1"), &json!("finished")),
                "{args}: {r}"
            );
            assert!(r.get("jobs").is_none(), "{args}: {r}");
        }
        for args in [
            json!({"mode": "terminate", "jid": ["j1.1"], "async_dir": d}),
            json!({"mode": "terminate", "jid": "j1.1,j2.2", "all": false, "async_dir": d}),
        ] {
            let (r, _) = run_json(&args.to_string());
            assert_eq!(r["jobs"][0]["ansible_job_id"], "j1.1", "{args}: {r}");
        }
    }

    #[test]
    fn arguments_as_json_text() {
        let (r, code) = run_json("[1]");
        assert_eq!((code, r["msg"].as_str().unwrap()), (1, "the module arguments are not a JSON object"));
        let (r, _) = run_json("<<INCLUDE>>");
        assert!(r["msg"].as_str().unwrap().starts_with("the module arguments are not valid JSON"), "{r}");
    }
}
