//! A job as `async_status` reports it: the one report, shared by `async_status` and
//! `async_job wait`, so that both say the same of a job.

use serde_json::{json, Value};

use crate::record::Running;
use crate::{JobDir, JobFile, JobId};

/// The status of job `id` in `dir`, as `async_status` answers it, and the exit code (1 when
/// the report itself is a failure: a missing, damaged, unreadable or lost job; 0 otherwise,
/// also for a finished job whose module failed, as ansible-core does).
///
/// A running job whose supervisor is gone is lost: its result will never come, so it is
/// reported finished and failed. Reporting changes nothing on disk.
pub fn report(dir: &JobDir, id: &JobId) -> (Value, i32) {
    let path = dir.job_path(id).display().to_string();
    let over =
        json!({"ansible_job_id": id.as_str(), "results_file": path, "started": true, "finished": true});
    let mut lost = None;
    // Read again when the supervisor is gone: it writes the result just before exiting.
    for _ in 0..2 {
        let mut job = match dir.read(id) {
            Ok(JobFile::Missing) => return not_found(id),
            Ok(JobFile::Empty) => {
                let running = json!({"results_file": path, "ansible_job_id": id.as_str(),
                                     "started": true, "finished": false});
                return (running, 0);
            }
            Ok(JobFile::Garbage(data)) => return failed(over, format!("Could not parse job output: {data}")),
            Ok(JobFile::Object(job)) => job,
            Err(e) => return failed(over, format!("could not read job file: {e}")),
        };
        let Some(running) = Running::of(&job) else {
            job.insert("finished".into(), json!(true));
            job.insert("ansible_job_id".into(), json!(id.as_str()));
            return (Value::Object(job), 0);
        };
        match running.supervisor {
            Some(supervisor) if !supervisor.is_alive() => lost = Some(supervisor.pid),
            _ => {
                job.entry("finished").or_insert(json!(false));
                if let Some(elapsed) = running.elapsed() {
                    job.insert("elapsed".into(), json!(elapsed));
                }
                return (Value::Object(job), 0);
            }
        }
    }
    let pid = lost.unwrap_or_default();
    failed(
        over,
        format!(
            "the job was lost: its supervisor (async_wrapper, pid {pid}) is no longer running and \
             left no result; the host may have rebooted or the process was killed"
        ),
    )
}

/// Whether a report says the job is over (finished, failed, lost, gone): `finished` true.
pub fn is_over(report: &Value) -> bool {
    matches!(report.get("finished"), Some(Value::Bool(true))) || report.get("finished") == Some(&json!(1))
}

/// Whether a report is a failure: `failed` true (or `1`, as ansible-core ≤ 2.18 writes it).
pub fn is_failed(report: &Value) -> bool {
    matches!(report.get("failed"), Some(Value::Bool(true))) || report.get("failed") == Some(&json!(1))
}

/// `extra` with `failed` and `msg`, and exit code 1.
pub fn failed(mut extra: Value, msg: String) -> (Value, i32) {
    extra["failed"] = json!(true);
    extra["msg"] = json!(msg);
    (extra, 1)
}

/// `could not find job`, the text users and tools match on.
pub fn not_found(id: &JobId) -> (Value, i32) {
    failed(
        json!({"ansible_job_id": id.as_str(), "started": true, "finished": true}),
        "could not find job".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_and_failed_take_bools_and_ansibles_old_ints() {
        assert!(is_over(&json!({"finished": true})) && is_over(&json!({"finished": 1})));
        assert!(!is_over(&json!({"finished": false})) && !is_over(&json!({})));
        assert!(is_failed(&json!({"failed": true})) && is_failed(&json!({"failed": 1})));
        assert!(!is_failed(&json!({"failed": false})) && !is_failed(&json!({"rc": 1})));
    }
}
