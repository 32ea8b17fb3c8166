//! Removing finished jobs older than a given age: `async_job gc`, and each launch of a job
//! whose task sets `ASYNC_WRAPPER_RETAIN` (so that jobs nobody collects do not pile up).

use std::time::Duration;

use crate::rules::{self, fill, quote, RETAIN_ENV};
use crate::{clock, Error, JobDir, JobInfo};

/// A duration as `async_job gc --older-than` and `ASYNC_WRAPPER_RETAIN` take it: seconds,
/// or a number with `s`, `m`, `h`, `d` or `w`; `None` when `text` is not one (or negative).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.starts_with('-') {
        return None;
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number = crate::decimal::parse_f64(number)?;
    let (_, scale) = rules::DURATION_UNITS.iter().find(|(name, _)| *name == unit)?;
    let secs = number * *scale as f64;
    if !secs.is_finite() || secs > 1e12 {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// `ASYNC_WRAPPER_RETAIN` as the task's environment sets it: `None` when unset.
pub fn retain_from_env() -> Result<Option<Duration>, String> {
    let Some(value) = std::env::var_os(RETAIN_ENV) else { return Ok(None) };
    let value = value.to_string_lossy();
    parse_duration(&value)
        .map(Some)
        .ok_or_else(|| fill(rules::BAD_RETAIN, &[("env", &RETAIN_ENV), ("value", &quote(&value))]))
}

/// What [`collect`] removed, or would remove in check mode.
pub struct Collected {
    pub removed: Vec<String>,
    pub kept_running: usize,
}

/// The jobs of `dir`, as far as they can be read (a job cleaned up meanwhile is skipped).
pub fn jobs(dir: &JobDir) -> Result<Vec<JobInfo>, Error> {
    let mut jobs = Vec::new();
    for id in dir.job_ids()? {
        if let Some(info) = dir.info(&id)? {
            jobs.push(info);
        }
    }
    Ok(jobs)
}

/// Whether a job is over and its file was last written at least `age` before `now`.
pub fn is_older(info: &JobInfo, age: Duration, now: f64) -> bool {
    !info.state.is_running() && info.updated_at.map_or(0.0, |at| now - at) >= age.as_secs_f64()
}

/// Removes the job files (and logs) of jobs that are over and whose file was last written
/// at least `older_than` ago. Running jobs are never touched; a held result's supervisor is
/// released ([`JobDir::remove`]). The dir is the running user's own ([`JobDir::check`]).
pub fn collect(dir: &JobDir, older_than: Duration, check_mode: bool) -> Result<Collected, Error> {
    dir.check()?;
    let now = clock::now();
    let mut collected = Collected { removed: Vec::new(), kept_running: 0 };
    for info in jobs(dir)? {
        if info.state.is_running() {
            collected.kept_running += 1;
            continue;
        }
        if !is_older(&info, older_than, now) {
            continue;
        }
        if !check_mode {
            dir.remove(&info.id)?;
        }
        collected.removed.push(info.id.to_string());
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, ProcessStamp};
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration(" 7d "), Some(Duration::from_secs(7 * 86_400)));
        for bad in ["", "d", "1y", "-1d", "1.2.3", "1e400", "soon"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn collects_old_finished_jobs_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        let me = ProcessStamp::current().unwrap();
        let running = JobId::new("j1.1").unwrap();
        let done = JobId::new("j2.2").unwrap();
        dir.write(&running, &json!({"started": true, "finished": false, "supervisor": me})).unwrap();
        dir.write(&done, &json!({"rc": 0})).unwrap();
        dir.log(&done, "result state=finished");
        let kept = collect(&dir, Duration::from_secs(3600), false).unwrap();
        assert_eq!((kept.removed.len(), kept.kept_running), (0, 1), "too young");
        let gone = collect(&dir, Duration::ZERO, false).unwrap();
        assert_eq!(gone.removed, ["j2.2"]);
        assert!(!dir.job_path(&done).exists() && !dir.log_path(&done).exists());
        assert!(dir.job_path(&running).exists());
    }
}
