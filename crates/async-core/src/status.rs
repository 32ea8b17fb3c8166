//! A job as `async_status` reports it: the one report, shared by `async_status` and
//! `async_job wait`, so that both say the same of a job.

use serde_json::{json, Value};

use crate::record::Running;
use crate::rules::{self, fill};
use crate::{JobDir, JobFile, JobId};

/// A report: a job file's own content, printed as it is (as ansible-core's module prints
/// it), or one built here (with its exit code), to which ansible-core's AnsibleModule adds
/// `invocation` when ansible asks for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    File(Value),
    Built(Value, i32),
}

impl From<(Value, i32)> for Report {
    fn from((value, code): (Value, i32)) -> Report {
        Report::Built(value, code)
    }
}

impl Report {
    pub fn value(&self) -> &Value {
        let (Report::File(value) | Report::Built(value, _)) = self;
        value
    }

    pub fn into_value(self) -> Value {
        let (Report::File(value) | Report::Built(value, _)) = self;
        value
    }

    /// The job runs: `finished` is false (a stock wrapper's running file says `0`).
    pub fn is_running(&self) -> bool {
        let value = self.value();
        matches!(value.get("finished"), Some(Value::Bool(false))) || value.get("finished") == Some(&json!(0))
    }
}

/// The status of job `id` in `dir`, as `async_status` answers it (a built report's exit code
/// is 1 when the report itself is a failure: a missing, damaged, unreadable or lost job; a
/// finished job whose module failed is its file, with 0, as ansible-core does).
///
/// A running job whose supervisor is gone is lost: its result will never come, so it is
/// reported finished and failed. A held result (see [`crate::held`]) is fetched from its
/// supervisor and reported as the job file would have held it; lost with its supervisor.
/// Asking renews a running job's lease (see
/// [`crate::lease`]); nothing else on disk changes.
pub fn report(dir: &JobDir, id: &JobId) -> Report {
    let path = dir.job_path(id).display().to_string();
    let over =
        json!({"ansible_job_id": id.as_str(), "results_file": path, "started": true, "finished": true});
    let mut lost = None;
    let mut lost_held = None;
    // Read again when the supervisor is gone: it writes the result just before exiting.
    for _ in 0..2 {
        let mut job = match dir.read(id) {
            Ok(JobFile::Missing) => return not_found(id).into(),
            Ok(JobFile::Empty) => {
                let running = json!({"results_file": path, "ansible_job_id": id.as_str(),
                                     "started": true, "finished": false});
                return (running, 0).into();
            }
            Ok(JobFile::Garbage(data)) => {
                return failed(over, fill(rules::UNPARSABLE, &[("data", &data)])).into()
            }
            Ok(JobFile::Object(job)) => job,
            Err(e) => return failed(over, fill(rules::UNREADABLE, &[("error", &e)])).into(),
        };
        if let Some(held) = crate::held::Held::of(&job) {
            if !held.supervisor.is_alive() {
                // Gone with its result; read again, as for a lost running job.
                lost_held = Some(held.supervisor.pid);
                continue;
            }
            match crate::held::fetch(dir, &held) {
                Ok(result) => job = result,
                Err(_) if !held.supervisor.is_alive() => {
                    lost_held = Some(held.supervisor.pid);
                    continue;
                }
                Err(e) => {
                    let msg = fill(rules::HELD_UNREACHABLE, &[("pid", &held.supervisor.pid), ("error", &e)]);
                    return failed(over, msg).into();
                }
            }
        }
        let Some(running) = Running::of(&job) else {
            job.insert("finished".into(), json!(true));
            job.insert("ansible_job_id".into(), json!(id.as_str()));
            return Report::File(Value::Object(job));
        };
        match running.supervisor {
            Some(supervisor) if !supervisor.is_alive() => lost = Some(supervisor.pid),
            _ => {
                if running.lease.is_some() {
                    // Asked for: the lease starts again (best effort: a failure ends nothing).
                    let _ = dir.renew(id);
                }
                job.entry("finished").or_insert(json!(false));
                if let Some(elapsed) = running.elapsed() {
                    job.insert("elapsed".into(), json!(elapsed));
                }
                return Report::File(Value::Object(job));
            }
        }
    }
    if let Some(pid) = lost_held {
        return failed(over, crate::held::lost_msg(pid)).into();
    }
    let pid = lost.unwrap_or_default();
    failed(
        over,
        format!(
            "the job was lost: its supervisor (async_wrapper, pid {pid}) is no longer running and \
             left no result; the host may have rebooted or the process was killed"
        ),
    )
    .into()
}

/// Whether a report says the job is over (finished, failed, lost, gone): `finished` true.
pub fn is_over(report: &Value) -> bool {
    true_or_one(report.get("finished"))
}

/// Whether a report is a failure: `failed` true (or `1`, as ansible-core ≤ 2.18 writes it).
pub fn is_failed(report: &Value) -> bool {
    true_or_one(report.get("failed"))
}

/// Whether a flag of a report or a result is set: `true`, or `1` as ansible-core ≤ 2.18
/// writes it.
pub fn true_or_one(flag: Option<&Value>) -> bool {
    matches!(flag, Some(Value::Bool(true))) || flag == Some(&json!(1))
}

/// `extra` with `failed` and `msg`, and exit code 1.
pub fn failed(mut extra: Value, msg: String) -> (Value, i32) {
    extra["failed"] = json!(true);
    extra["msg"] = json!(msg);
    (extra, 1)
}

/// `could not find job`, the text users and tools match on.
pub fn not_found(id: &JobId) -> (Value, i32) {
    failed(json!({"ansible_job_id": id.as_str(), "started": true, "finished": true}), rules::NOT_FOUND.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_is_finished_false_or_stocks_zero() {
        assert!(Report::File(json!({"finished": false})).is_running());
        assert!(Report::File(json!({"finished": 0})).is_running());
        assert!(!Report::Built(json!({"finished": true}), 1).is_running());
        assert_eq!(Report::from((json!({"a": 1}), 1)).into_value(), json!({"a": 1}));
    }

    #[test]
    fn over_and_failed_take_bools_and_ansibles_old_ints() {
        assert!(is_over(&json!({"finished": true})) && is_over(&json!({"finished": 1})));
        assert!(!is_over(&json!({"finished": false})) && !is_over(&json!({})));
        assert!(is_failed(&json!({"failed": true})) && is_failed(&json!({"failed": 1})));
        assert!(!is_failed(&json!({"failed": false})) && !is_failed(&json!({"rc": 1})));
    }
}
