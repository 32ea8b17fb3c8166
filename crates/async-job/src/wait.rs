//! `wait`: waits until every one of a list of jobs has ended and returns each one's result
//! as `async_status` reports it ([`async_core::status::report`]).
//!
//! Waiting costs no CPU: the async dir is watched with inotify, and a job's end is the
//! rename of its result over its job file (`IN_MOVED_TO` with the job's name), noticed the
//! moment it happens. A supervisor that dies without a result (a lost job) makes no event,
//! so the pending jobs are also read again every [`RECHECK`]. Each read of a running job is a
//! status call: it renews the job's lease, if it has one (see [`async_core::lease`]). Where inotify is not to be had
//! (an old or restricted kernel, no instances left) the jobs are read every [`SLEEP`].

use std::time::{Duration, Instant};

use async_core::rules::quote;
use async_core::status::{self, is_failed, is_over};
use async_core::watch::Watcher;
use async_core::{JobDir, JobId};
use serde_json::Value;

use crate::jobs::{check_dir, Error};

pub use async_core::watch::{RECHECK, SLEEP};
/// The longest wait: 10 years, as for a job's time limit.
pub const MAX_TIMEOUT: u64 = async_core::rules::MAX_TIME_LIMIT;

/// How to notice a job's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// inotify when the kernel has it, else sleeps.
    Inotify,
    /// Only short sleeps: what a kernel without inotify gets (tests pick it to check that path).
    #[cfg_attr(not(test), allow(dead_code))]
    Sleep,
}

/// What to wait for, and how.
#[derive(Clone, Debug)]
pub struct Request {
    /// The job ids as given, in order (checked by [`wait`]).
    pub jids: Vec<String>,
    /// `None`: as long as the jobs run (each job's own time limit ends it); `Some(0)`: look once.
    pub timeout: Option<Duration>,
    /// Remove the files and logs of the jobs that ended, once their results are read.
    pub cleanup: bool,
    /// Report what cleanup would remove; remove nothing.
    pub check_mode: bool,
    pub watch: Watch,
}

/// What a wait saw.
#[derive(Debug)]
pub struct Waited {
    /// One report per job, in the order asked: the result of each job that ended, the
    /// running status of each that did not.
    pub results: Vec<Value>,
    /// The jobs that ended and failed (their result has `failed`), in order.
    pub failed: Vec<String>,
    /// The jobs still running when the timeout came, in order.
    pub running: Vec<String>,
    /// The jobs whose files cleanup removed (or would remove, in check mode).
    pub removed: Vec<String>,
    pub timeout: Option<Duration>,
}

/// Moves the `_ansible_new_secrets` of the jobs' results (ansible-core 2.22: the values of
/// `no_log` options a module returned) to the top of the wait's own result, the one place the
/// controller takes them from to mask them on display; nested, they would be shown.
fn hoist_new_secrets(result: &mut Value) {
    let mut secrets: Vec<Value> = Vec::new();
    if let Some(Value::Array(results)) = result.get_mut("results") {
        for job in results.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Array(listed)) = job.remove("_ansible_new_secrets") {
                for secret in listed {
                    if !secrets.contains(&secret) {
                        secrets.push(secret);
                    }
                }
            }
        }
    }
    if !secrets.is_empty() {
        result["_ansible_new_secrets"] = Value::Array(secrets);
    }
}

impl Waited {
    /// Every job ended.
    pub fn finished(&self) -> bool {
        self.running.is_empty()
    }

    /// A job failed, or the time ran out.
    pub fn is_failed(&self) -> bool {
        !self.failed.is_empty() || !self.running.is_empty()
    }

    /// The answer of a wait, as the module and `async_job --json wait` give it.
    pub fn to_json(&self, async_dir: &JobDir, cleanup: bool) -> Value {
        let mut result = serde_json::json!({
            "changed": !self.removed.is_empty(),
            "finished": self.finished(),
            "failed": self.is_failed(),
            "msg": self.msg(),
            "async_dir": async_dir.path().display().to_string(),
            "failed_jobs": self.failed,
            "results": self.results,
        });
        if !self.running.is_empty() {
            result["running_jobs"] = serde_json::json!(self.running);
        }
        if cleanup {
            result["removed"] = serde_json::json!(self.removed);
        }
        hoist_new_secrets(&mut result);
        result
    }

    /// The summary for a person.
    pub fn msg(&self) -> String {
        let total = self.results.len();
        let mut parts = Vec::new();
        if !self.running.is_empty() {
            let secs = self.timeout.map_or(0, |t| t.as_secs());
            parts.push(format!(
                "timed out after {secs} s: {} of {total} job(s) still running (they keep running): {}",
                self.running.len(),
                self.running.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            parts.push(format!("{} of {total} job(s) failed: {}", self.failed.len(), self.failed.join(", ")));
        }
        if parts.is_empty() {
            format!("all {total} job(s) ended")
        } else {
            parts.join("; ")
        }
    }
}

/// The timeout argument: a whole number of seconds, as a number or as text.
pub fn parse_timeout(value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let bad = |shown: &str| {
        Error::Invalid(format!(
            "timeout must be a whole number of seconds from 0 to {MAX_TIMEOUT}, got: {shown}"
        ))
    };
    let secs = match value {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(&n.to_string()))?,
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&quote(s)));
            }
            t.parse().map_err(|_| bad(&quote(s)))?
        }
        Some(other) => return Err(bad(&other.to_string())),
    };
    if secs > MAX_TIMEOUT {
        return Err(bad(&secs.to_string()));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// Checks the request (every id valid, none twice, each with a job file in a safe dir),
/// then waits. Bad input is an error before anything is read or removed.
pub fn wait(dir: &JobDir, request: &Request) -> Result<Waited, Error> {
    let ids = checked_ids(dir, &request.jids)?;
    let reports = watch(dir, &ids, request);
    collect(dir, &ids, reports, request)
}

/// The job ids of `jids`: each valid, none twice, each with a job file in a safe dir.
fn checked_ids(dir: &JobDir, jids: &[String]) -> Result<Vec<JobId>, Error> {
    if jids.is_empty() {
        return Err(Error::Invalid("mode=wait needs jid: one job id or a non-empty list of them".into()));
    }
    let mut ids: Vec<JobId> = Vec::with_capacity(jids.len());
    for jid in jids {
        let id = JobId::new(jid)?;
        // A linear search: a few hundred ids at most, and no hasher in the program.
        if ids.contains(&id) {
            return Err(Error::Invalid(format!("job id {jid} is given more than once")));
        }
        ids.push(id);
    }
    check_dir(dir)?;
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| std::fs::symlink_metadata(dir.job_path(id)).is_err())
        .map(JobId::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::NotFound(unknown.join(", ")));
    }
    Ok(ids)
}

/// Each job's last report, and whether it is over, once every job is over or the timeout
/// has come.
fn watch(dir: &JobDir, ids: &[JobId], request: &Request) -> Vec<(Value, bool)> {
    let deadline = request.timeout.map(|t| Instant::now() + t);
    // Watch before the first look: a result written in between is then an event.
    let watcher = match request.watch {
        Watch::Inotify => Watcher::new(dir),
        Watch::Sleep => None,
    };
    let mut reports: Vec<(Value, bool)> = vec![(Value::Null, false); ids.len()];
    loop {
        for (id, (report, ended)) in ids.iter().zip(reports.iter_mut()) {
            if !*ended {
                *report = status::report(dir, id).into_value();
                *ended = is_over(report);
            }
        }
        if reports.iter().all(|(_, ended)| *ended) {
            return reports;
        }
        let left = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return reports,
            },
            None => Duration::MAX,
        };
        match &watcher {
            Some(watcher) => {
                let pending: Vec<&str> =
                    ids.iter().zip(&reports).filter(|(_, (_, e))| !e).map(|(id, _)| id.as_str()).collect();
                watcher.wait(&pending, left.min(RECHECK));
            }
            None => std::thread::sleep(left.min(SLEEP)),
        }
    }
}

/// The answer from each job's last report; the files of the jobs that ended removed when
/// the request says so.
fn collect(
    dir: &JobDir,
    ids: &[JobId],
    reports: Vec<(Value, bool)>,
    request: &Request,
) -> Result<Waited, Error> {
    let mut waited = Waited {
        results: Vec::with_capacity(ids.len()),
        failed: Vec::new(),
        running: Vec::new(),
        removed: Vec::new(),
        timeout: request.timeout,
    };
    for (id, (report, ended)) in ids.iter().zip(reports) {
        if !ended {
            waited.running.push(id.to_string());
        } else {
            if is_failed(&report) {
                waited.failed.push(id.to_string());
            }
            if request.cleanup {
                let removed = if request.check_mode { dir.job_path(id).exists() } else { dir.remove(id)? };
                if removed {
                    waited.removed.push(id.to_string());
                }
            }
        }
        waited.results.push(report);
    }
    Ok(waited)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_jobs_new_secrets_go_to_the_top_where_ansible_masks_them() {
        let mut result = serde_json::json!({"results": [
            {"pw": "a", "_ansible_new_secrets": ["a"]},
            {"rc": 0},
            {"pw": "a", "pw2": "b", "_ansible_new_secrets": ["a", "b"]},
        ]});
        super::hoist_new_secrets(&mut result);
        assert_eq!(result["_ansible_new_secrets"], serde_json::json!(["a", "b"]));
        assert!(result["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("_ansible_new_secrets").is_none()));
        let mut none = serde_json::json!({"results": [{"rc": 0}]});
        super::hoist_new_secrets(&mut none);
        assert!(none.get("_ansible_new_secrets").is_none());
    }

    use super::*;
    use async_core::ProcessStamp;
    use serde_json::json;
    use std::thread;

    fn dir() -> (tempfile::TempDir, JobDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        (tmp, dir)
    }

    fn id(jid: &str) -> JobId {
        JobId::new(jid).unwrap()
    }

    /// A running job whose supervisor is this test process: alive as long as the test runs.
    fn start(dir: &JobDir, jid: &str) {
        let me = ProcessStamp::current().unwrap();
        dir.write(
            &id(jid),
            &json!({"started": true, "finished": false, "ansible_job_id": jid, "supervisor": me}),
        )
        .unwrap();
        dir.log(&id(jid), "invoked protocol=legacy time_limit=60 grace=2 module=/m");
    }

    fn request(jids: &[&str], timeout: Option<u64>) -> Request {
        Request {
            jids: jids.iter().map(|j| j.to_string()).collect(),
            timeout: timeout.map(Duration::from_secs),
            cleanup: false,
            check_mode: false,
            watch: Watch::Inotify,
        }
    }

    /// Writes `result` for `jid` after `ms` milliseconds, from another thread; returns when
    /// it was written.
    fn finish_later(dir: &JobDir, jid: &str, ms: u64, result: Value) -> thread::JoinHandle<Instant> {
        let (dir, jid) = (dir.clone(), jid.to_string());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(ms));
            dir.write(&id(&jid), &result).unwrap();
            Instant::now()
        })
    }

    #[test]
    fn returns_every_result_in_the_order_given_once_the_last_one_ends() {
        for watch in [Watch::Inotify, Watch::Sleep] {
            let (_tmp, dir) = dir();
            for jid in ["j1.1", "j2.2", "j3.3"] {
                start(&dir, jid);
            }
            // They end in another order than asked.
            let a = finish_later(&dir, "j2.2", 30, json!({"rc": 0, "said": "two"}));
            let b = finish_later(&dir, "j3.3", 60, json!({"rc": 0, "said": "three"}));
            let c = finish_later(&dir, "j1.1", 300, json!({"rc": 0, "said": "one"}));
            let waited =
                wait(&dir, &Request { watch, ..request(&["j3.3", "j1.1", "j2.2"], Some(30)) }).unwrap();
            let returned = Instant::now();
            let last = c.join().unwrap();
            a.join().unwrap();
            b.join().unwrap();
            let said: Vec<&str> = waited.results.iter().map(|r| r["said"].as_str().unwrap()).collect();
            assert_eq!(said, ["three", "one", "two"], "{watch:?}");
            for (r, jid) in waited.results.iter().zip(["j3.3", "j1.1", "j2.2"]) {
                assert_eq!((&r["ansible_job_id"], &r["finished"]), (&json!(jid), &json!(true)), "{r}");
            }
            assert!(waited.finished() && !waited.is_failed(), "{waited:?}");
            assert_eq!(waited.msg(), "all 3 job(s) ended");
            // Returned once the last result was written, not at the 30 s timeout.
            let late = returned.saturating_duration_since(last);
            assert!(late < Duration::from_secs(15), "{watch:?}: returned {late:?} after the last result");
        }
    }

    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec it is given, which lives on this stack.
        assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    #[test]
    fn waiting_costs_next_to_no_cpu() {
        for (watch, budget) in [(Watch::Inotify, 20), (Watch::Sleep, 100)] {
            let (_tmp, dir) = dir();
            start(&dir, "j1.1");
            let before = thread_cpu();
            let waited = wait(&dir, &Request { watch, ..request(&["j1.1"], Some(2)) }).unwrap();
            let used = thread_cpu() - before;
            assert_eq!(waited.running, ["j1.1"]);
            assert!(used < Duration::from_millis(budget), "{watch:?}: {used:?} of CPU in a 2 s wait");
        }
    }

    #[test]
    fn a_wait_renews_the_lease_of_the_jobs_it_watches() {
        let (_tmp, dir) = dir();
        let me = ProcessStamp::current().unwrap();
        dir.write(&id("j1.1"), &json!({"started": true, "finished": false, "supervisor": me, "lease": 30}))
            .unwrap();
        let past = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.job_path(&id("j1.1")))
            .unwrap()
            .set_modified(past)
            .unwrap();
        let waited = wait(&dir, &request(&["j1.1"], Some(0))).unwrap();
        assert_eq!(waited.running, ["j1.1"]);
        let renewed = dir.last_renewal(&id("j1.1")).unwrap();
        assert!(renewed > past + Duration::from_secs(3000), "the lease was not renewed");
    }

    #[test]
    fn reports_each_job_exactly_as_async_status_does() {
        let (_tmp, dir) = dir();
        start(&dir, "j1.1");
        dir.write(&id("j2.2"), &json!({"rc": 0, "stdout": "x"})).unwrap();
        std::fs::write(dir.job_path(&id("j3.3")), "{oops").unwrap();
        let waited = wait(&dir, &request(&["j2.2", "j3.3", "j1.1"], Some(0))).unwrap();
        for (jid, r) in ["j2.2", "j3.3", "j1.1"].iter().zip(&waited.results) {
            assert_eq!(r, status::report(&dir, &id(jid)).value(), "{jid}");
        }
    }

    #[test]
    fn a_failed_job_fails_the_wait_and_is_named() {
        let (_tmp, dir) = dir();
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        dir.write(&id("j2.2"), &json!({"rc": 2, "failed": true, "msg": "non-zero return code"})).unwrap();
        dir.write(&id("j3.3"), &json!({"failed": true, "msg": "Timeout exceeded", "child_pid": 9})).unwrap();
        let waited = wait(&dir, &request(&["j1.1", "j2.2", "j3.3"], None)).unwrap();
        assert!(waited.finished() && waited.is_failed());
        assert_eq!(waited.failed, ["j2.2", "j3.3"]);
        assert_eq!(waited.msg(), "2 of 3 job(s) failed: j2.2, j3.3");
        assert_eq!(waited.results[1]["rc"], 2);
    }

    #[test]
    fn a_lost_job_counts_as_ended_and_failed() {
        let (_tmp, dir) = dir();
        let me = ProcessStamp::current().unwrap();
        let gone = ProcessStamp { start_time: me.start_time + 1, ..me };
        dir.write(&id("j1.1"), &json!({"started": true, "finished": false, "supervisor": gone})).unwrap();
        let waited = wait(&dir, &request(&["j1.1"], Some(5))).unwrap();
        assert_eq!(waited.failed, ["j1.1"]);
        let msg = waited.results[0]["msg"].as_str().unwrap();
        assert!(msg.starts_with("the job was lost: "), "{msg}");
    }

    #[test]
    fn a_timeout_names_the_jobs_still_running_and_leaves_them_be() {
        let (_tmp, dir) = dir();
        start(&dir, "j1.1");
        start(&dir, "j2.2");
        dir.write(&id("j3.3"), &json!({"rc": 0})).unwrap();
        let begun = Instant::now();
        let mut req = request(&["j1.1", "j3.3", "j2.2"], Some(1));
        req.cleanup = true;
        let waited = wait(&dir, &req).unwrap();
        let took = begun.elapsed();
        assert!(took >= Duration::from_secs(1), "gave up before its timeout: {took:?}");
        assert!(!waited.finished() && waited.is_failed());
        assert_eq!(waited.running, ["j1.1", "j2.2"]);
        assert_eq!(waited.results[0]["finished"], false);
        assert_eq!(
            waited.msg(),
            "timed out after 1 s: 2 of 3 job(s) still running (they keep running): j1.1, j2.2"
        );
        // Cleanup removed the job that ended, not the running ones.
        assert_eq!(waited.removed, ["j3.3"]);
        assert!(dir.job_path(&id("j1.1")).exists() && dir.log_path(&id("j1.1")).exists());
        assert!(!dir.job_path(&id("j3.3")).exists());
        // Timeout 0 looks once.
        let waited = wait(&dir, &request(&["j1.1"], Some(0))).unwrap();
        assert_eq!(waited.running, ["j1.1"]);
    }

    #[test]
    fn cleanup_removes_the_files_and_logs_of_the_jobs_it_returned() {
        let (_tmp, dir) = dir();
        start(&dir, "j1.1");
        start(&dir, "j2.2");
        let a = finish_later(&dir, "j1.1", 20, json!({"rc": 0}));
        let b = finish_later(&dir, "j2.2", 40, json!({"rc": 1, "failed": true}));
        let mut req = request(&["j1.1", "j2.2"], None);
        req.cleanup = true;
        let waited = wait(&dir, &req).unwrap();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(waited.removed, ["j1.1", "j2.2"]);
        assert_eq!(waited.results[1]["rc"], 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no job file or log left");
    }

    #[test]
    fn check_mode_reports_what_cleanup_would_remove_and_removes_nothing() {
        let (_tmp, dir) = dir();
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        dir.log(&id("j1.1"), "result state=finished");
        let mut req = request(&["j1.1"], None);
        req.cleanup = true;
        req.check_mode = true;
        let waited = wait(&dir, &req).unwrap();
        assert_eq!(waited.removed, ["j1.1"]);
        assert!(dir.job_path(&id("j1.1")).exists() && dir.log_path(&id("j1.1")).exists());
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_read_or_removed() {
        let (tmp, dir) = dir();
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        let victim = tmp.path().join("x");
        std::fs::write(&victim, "{}").unwrap();
        let cleanup = |jids: &[&str]| Request { cleanup: true, ..request(jids, None) };
        let err = |d: &JobDir, req: Request| wait(d, &req).unwrap_err();
        assert!(matches!(err(&dir, cleanup(&[])), Error::Invalid(m) if m.contains("non-empty list")));
        assert!(
            matches!(err(&dir, cleanup(&["j1.1", "../x"])), Error::Invalid(m) if m.contains("invalid job id"))
        );
        assert!(
            matches!(err(&dir, cleanup(&["j1.1", "j1.1"])), Error::Invalid(m) if m.contains("more than once"))
        );
        match err(&dir, cleanup(&["j1.1", "j7.7", "j8.8"])) {
            Error::NotFound(jids) => assert_eq!(jids, "j7.7, j8.8"),
            other => panic!("{other:?}"),
        }
        // A shared dir, a symlinked one, a missing one.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(err(&dir, cleanup(&["j1.1"])).to_string().contains("other users can write"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(err(&JobDir::at(link), cleanup(&["j1.1"])).to_string().contains("symbolic link"));
        let missing = JobDir::at(tmp.path().join("nope"));
        assert!(err(&missing, cleanup(&["j1.1"])).to_string().contains("does not exist"));
        assert!(!missing.path().exists());
        // Nothing was removed.
        assert!(dir.job_path(&id("j1.1")).exists() && victim.exists());
    }

    #[test]
    fn timeouts_are_whole_seconds() {
        assert_eq!(parse_timeout(None).unwrap(), None);
        assert_eq!(parse_timeout(Some(&json!(30))).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout(Some(&json!("30"))).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout(Some(&json!(0))).unwrap(), Some(Duration::ZERO));
        for bad in [
            json!(1.5),
            json!(-1),
            json!("1.5"),
            json!("ten"),
            json!(""),
            json!(true),
            json!([1]),
            json!(MAX_TIMEOUT + 1),
        ] {
            let e = parse_timeout(Some(&bad)).unwrap_err();
            assert!(e.to_string().starts_with("timeout must be a whole number of seconds"), "{bad}: {e}");
        }
    }
}
