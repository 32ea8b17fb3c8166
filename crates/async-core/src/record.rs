//! The records our programs write into job files, each described once.
//!
//! A job file holds one JSON object (see the crate doc): while the job runs, a [`Running`]
//! marker; once it is over, the module's own result or one of the failed results below. The
//! portable fallback (`crates/ansible-async/library/fallback/`) writes the same records in
//! Python; `tests/protocol/jobfiles/samples/` holds a sample of every kind, against which this module,
//! the programs that read job files and the fallback are all tested.
//!
//! Written with keys sorted (serde_json's map), as the fallback writes them too. The programs
//! read a finished job's file as a plain map, since most are a module's own result; the
//! result types derive `Deserialize` for the tests that hold them to their samples.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rules::{self, fill, TIMEOUT_MSG};
use crate::{clock, JobId, ProcessStamp};

/// A record as the JSON object written to a job file.
pub trait Record: Serialize {
    fn to_value(&self) -> Value {
        // These types hold only strings, numbers and bools: serialising them cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The file of a running job. async_wrapper writes it as the job starts and again once the
/// module runs, to add `module_process`. A stock wrapper's marker has only `started`,
/// `finished` (as `1` and `0`) and `ansible_job_id`; every other field is then `None`.
///
/// Read by hand ([`Running::of`]) rather than by a derived `Deserialize`, which would add
/// ~14 KB to a program copied to the host on every task; a test holds the reader to the
/// fields written here.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Running {
    pub started: bool,
    pub finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ansible_job_id: Option<String>,
    /// Seconds since the epoch at which ansible invoked the wrapper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    /// Seconds; 0 is no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<u64>,
    /// Seconds after the module's start at which the time limit ends the job: by default
    /// when ansible-core's own wrapper would have, else the limit itself; none without a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// The module's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Seconds without a status call after which the job is ended (see [`crate::lease`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
    /// The job's grace period in seconds (see [`crate::control`]), so that whoever ends the
    /// job later uses the one it started with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<f64>,
    /// The job's supervisor: a running file whose supervisor is gone is a lost job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<ProcessStamp>,
    /// The module, the leader of the job's process group: who to end when the supervisor
    /// is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_process: Option<ProcessStamp>,
    /// `"fallback"` when the portable fallback wrote the file; the native program writes none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<String>,
    /// The task's `no_log` (`_ansible_no_log` among the module's arguments): its progress
    /// then shows no command lines and no tail (see [`crate::progress`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_log: Option<bool>,
    /// The file whose last lines the job's progress shows (`ASYNC_WRAPPER_TAIL`), absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
}

impl Record for Running {}

impl Running {
    /// Whether a job file's object is a running job's: ansible's rule, the presence of
    /// `started` (whatever its value).
    pub fn is_running(job: &Map<String, Value>) -> bool {
        job.contains_key(crate::rules::RUNNING_KEY)
    }

    /// The marker a running job file holds; `None` when the job is over. Read leniently: a
    /// field of an unexpected type reads as missing, never as a damaged file.
    pub fn of(job: &Map<String, Value>) -> Option<Running> {
        if !Running::is_running(job) {
            return None;
        }
        let text = |key| job.get(key).and_then(Value::as_str).map(str::to_string);
        let stamp = |key| job.get(key).and_then(ProcessStamp::from_value);
        // `true` and non-zero numbers (a stock wrapper's `1`) are true.
        let truthy = |key| match job.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
            _ => false,
        };
        Some(Running {
            started: truthy("started"),
            finished: truthy("finished"),
            ansible_job_id: text("ansible_job_id"),
            started_at: job.get("started_at").and_then(Value::as_f64),
            time_limit: job.get("time_limit").and_then(Value::as_u64),
            deadline: job.get("deadline").and_then(Value::as_u64),
            module: text("module"),
            lease: job.get("lease").and_then(Value::as_u64),
            kill_grace: job.get("kill_grace").and_then(Value::as_f64),
            supervisor: stamp("supervisor"),
            module_process: stamp("module_process"),
            wrapper: text("wrapper"),
            no_log: job.get("no_log").and_then(Value::as_bool),
            tail: text("tail"),
        })
    }

    /// Seconds since the job started, when the file says when that was.
    pub fn elapsed(&self) -> Option<f64> {
        Some(clock::elapsed(self.started_at?, clock::now()))
    }

    /// The grace period the job started with, when the file records a valid one.
    pub fn kill_grace(&self) -> Option<Duration> {
        crate::control::grace_from_secs(self.kill_grace?)
    }
}

/// The result of a job the time limit ended: ansible-core's own shape, key for key, and
/// how long the module ran against which limit, so that a user sees why at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedOut {
    pub failed: bool,
    pub msg: String,
    /// The module's pid.
    pub child_pid: i64,
    /// Seconds the module ran, to a tenth.
    pub elapsed: f64,
    /// The task's `async:` seconds.
    pub time_limit: u64,
}

impl Record for TimedOut {}

impl TimedOut {
    pub fn new(child_pid: i64, ran: Duration, time_limit: u64) -> TimedOut {
        TimedOut {
            failed: true,
            msg: TIMEOUT_MSG.into(),
            child_pid,
            elapsed: clock::elapsed(0.0, ran.as_secs_f64()),
            time_limit,
        }
    }
}

/// The result of a job ended on request (`async_job terminate`) or by a signal to its
/// supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Terminated {
    pub failed: bool,
    pub terminated: bool,
    pub msg: String,
    /// The module's pid.
    pub child_pid: i64,
    pub ansible_job_id: String,
}

impl Record for Terminated {}

impl Terminated {
    pub fn new(id: &JobId, child_pid: i64, msg: impl Into<String>) -> Terminated {
        Terminated {
            failed: true,
            terminated: true,
            msg: msg.into(),
            child_pid,
            ansible_job_id: id.to_string(),
        }
    }
}

/// The result of a job whose lease ran out: nothing asked for it (no `async_status` call)
/// for `lease` seconds, so the play that wanted it is taken to be gone. A [`Terminated`]
/// with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expired {
    pub failed: bool,
    pub terminated: bool,
    pub lease_expired: bool,
    pub msg: String,
    /// The module's pid.
    pub child_pid: i64,
    pub ansible_job_id: String,
    /// The lease, in seconds.
    pub lease: u64,
    /// When the last call came (UTC), if any came.
    pub last_call: Option<String>,
}

impl Record for Expired {}

impl Expired {
    /// `last_call`: seconds since the epoch.
    pub fn new(id: &JobId, child_pid: i64, lease: u64, last_call: Option<f64>) -> Expired {
        let last_call = last_call.map(clock::utc_timestamp);
        let when = match &last_call {
            Some(at) => fill(rules::LAST_CALL_AT, &[("at", at)]),
            None => rules::NO_CALL_SINCE_START.to_string(),
        };
        Expired {
            failed: true,
            terminated: true,
            lease_expired: true,
            msg: fill(
                rules::LEASE_EXPIRED,
                &[("lease", &lease), ("env", &rules::LEASE_ENV), ("when", &when)],
            ),
            child_pid,
            ansible_job_id: id.to_string(),
            lease,
            last_call,
        }
    }
}

/// The result of a job whose module could not be started, or ended without printing a JSON
/// result: ansible-core's shape (`data` is the module's stdout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoResult {
    pub failed: bool,
    /// The module's command line.
    pub cmd: String,
    pub msg: String,
    pub data: String,
    pub stderr: String,
    pub ansible_job_id: String,
}

impl Record for NoResult {}

impl NoResult {
    pub fn new(id: &JobId, cmd: impl Into<String>, msg: impl Into<String>) -> NoResult {
        NoResult {
            failed: true,
            cmd: cmd.into(),
            msg: msg.into(),
            data: String::new(),
            stderr: String::new(),
            ansible_job_id: id.to_string(),
        }
    }
}

/// What is written in place of a module's result that could not be written (a full disk, a
/// file size limit): short enough that it may still fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unwritten {
    pub failed: bool,
    pub msg: String,
    pub ansible_job_id: String,
}

impl Record for Unwritten {}

impl Unwritten {
    pub fn new(id: &JobId, why: impl std::fmt::Display) -> Unwritten {
        Unwritten {
            failed: true,
            msg: fill(rules::NOT_WRITTEN, &[("error", &why)]),
            ansible_job_id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobDir, JobFile, JobId, JobState};
    use serde_json::json;
    use std::path::PathBuf;

    /// `tests/protocol/jobfiles/`: a sample job file of every kind and what each reader makes of it.
    fn jobfiles() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/jobfiles")
    }

    fn expected() -> Map<String, Value> {
        let text = std::fs::read_to_string(jobfiles().join("expected.json")).unwrap();
        let Ok(Value::Object(expected)) = crate::json::parse(&text) else { panic!("expected.json") };
        expected
    }

    fn sample(name: &str) -> String {
        std::fs::read_to_string(jobfiles().join("samples").join(name)).unwrap()
    }

    /// The sample read into `T` and written back, as our programs write job files.
    fn rewritten<T: Record + serde::de::DeserializeOwned>(text: &str) -> String {
        let record: T = serde_json::from_str(text).unwrap();
        format!("{}\n", record.to_value())
    }

    #[test]
    fn each_record_type_writes_its_sample_exactly() {
        let mut seen = Vec::new();
        for (name, expect) in expected() {
            let Some(record) = expect.get("record").and_then(Value::as_str) else { continue };
            let text = sample(&name);
            let again = match record {
                "Running" => {
                    let JobFile::Object(job) = JobFile::parse(text.as_bytes()) else { panic!("{name}") };
                    format!("{}\n", Running::of(&job).unwrap().to_value())
                }
                "TimedOut" => rewritten::<TimedOut>(&text),
                "Terminated" => rewritten::<Terminated>(&text),
                "Expired" => rewritten::<Expired>(&text),
                "NoResult" => rewritten::<NoResult>(&text),
                "Unwritten" => rewritten::<Unwritten>(&text),
                other => panic!("{name}: no record type {other}"),
            };
            assert_eq!(again, text, "{name}: the sample is not what {record} writes");
            seen.push(record.to_string());
        }
        seen.sort();
        assert_eq!(seen, ["Expired", "NoResult", "Running", "Terminated", "TimedOut", "Unwritten"]);
    }

    /// The crate doc's "Job file format" and the README's "The job directory" name every key a
    /// record writes (a new field without a word in them is caught here).
    #[test]
    fn the_docs_name_every_key_a_record_writes() {
        let stamp = ProcessStamp { pid: 1, start_time: 2, boot_id: "b".into() };
        let running = Running {
            started: true,
            finished: false,
            ansible_job_id: Some("j1.1".into()),
            started_at: Some(1.0),
            time_limit: Some(1),
            deadline: Some(2),
            module: Some("m".into()),
            lease: Some(3),
            kill_grace: Some(2.0),
            supervisor: Some(stamp.clone()),
            module_process: Some(stamp),
            wrapper: Some("fallback".into()),
            no_log: Some(true),
            tail: Some("/var/log/x.log".into()),
        };
        let mut keys: Vec<String> = running.to_value().as_object().unwrap().keys().cloned().collect();
        for (name, expect) in expected() {
            if expect.get("record").is_some() {
                let Ok(Value::Object(job)) = serde_json::from_str::<Value>(&sample(&name)) else {
                    panic!("{name}")
                };
                keys.extend(job.keys().cloned());
            }
        }
        let crate_doc = include_str!("lib.rs");
        let readme =
            std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
                .unwrap();
        for key in keys {
            let named = format!("`{key}`");
            let quoted = format!("\"{key}\"");
            for (doc, text) in [("async-core's crate doc", crate_doc), ("README.md", readme.as_str())] {
                assert!(
                    text.contains(&named) || text.contains(&quoted),
                    "{doc} does not name the job file's `{key}`"
                );
            }
        }
    }

    #[test]
    fn the_constructors_make_the_samples_shapes() {
        let id = JobId::new("j123456789012.4242").unwrap();
        let parse = |name| serde_json::from_str::<Value>(&sample(name)).unwrap();
        assert_eq!(TimedOut::new(4243, Duration::from_millis(11_030), 6).to_value(), parse("timed-out.json"));
        let msg = "the job was terminated on request (async_job terminate) before its module finished";
        assert_eq!(Terminated::new(&id, 4243, msg).to_value(), parse("terminated.json"));
        assert_eq!(Expired::new(&id, 4243, 30, Some(1795924517.613)).to_value(), parse("expired.json"));
        let no_result = NoResult::new(&id, "cmd", "msg").to_value();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&no_result), keys(&parse("no-result.json")));
        let unwritten = Unwritten::new(&id, "disk full").to_value();
        assert_eq!(keys(&unwritten), keys(&parse("unwritten.json")));
        assert!(unwritten["msg"].as_str().unwrap().starts_with("could not write the module's result: "));
    }

    #[test]
    fn every_sample_reads_back_as_the_state_it_stands_for() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().to_path_buf());
        let id = JobId::new("j123456789012.4242").unwrap();
        for (name, expect) in expected() {
            std::fs::write(dir.job_path(&id), sample(&name)).unwrap();
            let info = dir.info(&id).unwrap().unwrap();
            assert_eq!(info.state.as_str(), expect["state"], "{name}");
        }
        // The running sample's supervisor is of another boot; with a live one it runs.
        let JobFile::Object(mut job) = JobFile::parse(sample("running.json").as_bytes()) else { panic!() };
        job.insert("supervisor".into(), json!(ProcessStamp::current().unwrap()));
        dir.write(&id, &Value::Object(job)).unwrap();
        assert_eq!(dir.info(&id).unwrap().unwrap().state, JobState::Running);
    }

    #[test]
    fn the_running_reader_reads_every_field_the_writer_writes() {
        let stamp = |pid| Some(ProcessStamp { pid, start_time: 7, boot_id: "b".into() });
        let full = Running {
            started: true,
            finished: false,
            ansible_job_id: Some("j1.2".into()),
            started_at: Some(1.5),
            time_limit: Some(30),
            deadline: Some(31),
            module: Some("/m".into()),
            lease: Some(20),
            kill_grace: Some(2.5),
            supervisor: stamp(2),
            module_process: stamp(3),
            wrapper: Some("fallback".into()),
            no_log: Some(true),
            tail: Some("/var/log/x.log".into()),
        };
        let Value::Object(written) = full.to_value() else { panic!() };
        assert_eq!(Running::of(&written), Some(full));
    }

    #[test]
    fn a_running_file_reads_leniently() {
        let of = |text: &str| match JobFile::parse(text.as_bytes()) {
            JobFile::Object(job) => Running::of(&job),
            other => panic!("{other:?}"),
        };
        let ours = of(&sample("running.json")).unwrap();
        assert!(ours.started && !ours.finished);
        assert_eq!((ours.time_limit, ours.kill_grace()), (Some(30), Some(Duration::from_secs(2))));
        assert_eq!(ours.supervisor.as_ref().unwrap().pid, 4242);
        assert!(ours.elapsed().unwrap() > 0.0);
        let stock = of(&sample("running-stock.json")).unwrap();
        assert!(stock.started && !stock.finished);
        assert_eq!(stock.ansible_job_id.as_deref(), Some("j123456789012.4242"));
        assert_eq!((&stock.supervisor, stock.started_at, stock.elapsed()), (&None, None, None));
        // Fields of another type read as missing, not as a damaged file.
        let odd =
            of(r#"{"started": "yes", "time_limit": "30", "kill_grace": 9999, "supervisor": {"pid": -1}}"#);
        let odd = odd.unwrap();
        assert!(!odd.started, "only true and non-zero numbers are true");
        assert_eq!((odd.time_limit, odd.kill_grace(), odd.supervisor), (None, None, None));
        // Without "started" the job is over, whatever else the file says.
        assert_eq!(of(r#"{"finished": false, "supervisor": null}"#), None);
    }
}
