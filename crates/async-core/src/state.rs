//! What a job is doing, told from its job file and its log: what `async_job list` shows.

use std::fmt;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};

use crate::record::Running;
use crate::rules::{self, TIMEOUT_MSG};
use crate::{clock, log, Error, JobDir, JobFile, JobId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// The module runs (or the job file is being written).
    Running,
    /// The file says "running" but the supervisor is gone: no result will come.
    Lost,
    /// The module finished and did not fail.
    Finished,
    /// The module finished and failed, could not start, or printed no JSON.
    Failed,
    /// The time limit ended it.
    TimedOut,
    /// It was ended on request (`async_job terminate`) or because the supervisor was
    /// told to stop.
    Terminated,
    /// Its lease ran out: nothing asked for it for that long.
    Expired,
    /// The job file is not JSON.
    Damaged,
}

const ALL: [JobState; 8] = [
    JobState::Running,
    JobState::Lost,
    JobState::Finished,
    JobState::Failed,
    JobState::TimedOut,
    JobState::Terminated,
    JobState::Expired,
    JobState::Damaged,
];

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Lost => "lost",
            JobState::Finished => rules::STATE_FINISHED,
            JobState::Failed => rules::STATE_FAILED,
            JobState::TimedOut => rules::STATE_TIMED_OUT,
            JobState::Terminated => rules::STATE_TERMINATED,
            JobState::Expired => rules::STATE_EXPIRED,
            JobState::Damaged => "damaged",
        }
    }

    /// The state named `name` ([`JobState::as_str`]).
    pub fn from_name(name: &str) -> Option<JobState> {
        ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the job can still change (and so must not be removed or reported as over).
    pub fn is_running(self) -> bool {
        self == JobState::Running
    }

    /// The state a finished job's result stands for, decided in the order of
    /// [`rules::STATE_FLAGS`].
    pub fn of_result(result: &Map<String, Value>) -> JobState {
        let failed = crate::status::true_or_one(result.get("failed"));
        let flagged = rules::STATE_FLAGS.iter().find(|(key, _)| result.get(*key) == Some(&Value::Bool(true)));
        let state = match flagged {
            Some((_, state)) => state,
            None if failed && result.get("msg").and_then(Value::as_str) == Some(TIMEOUT_MSG) => {
                rules::STATE_TIMED_OUT
            }
            None if failed => rules::STATE_FAILED,
            None => rules::STATE_FINISHED,
        };
        JobState::from_name(state).unwrap_or(JobState::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job as `async_job` reports it.
#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: JobId,
    pub state: JobState,
    /// Seconds since the epoch.
    pub started_at: Option<f64>,
    /// When the job file was last written: for a finished job, when it finished.
    pub updated_at: Option<f64>,
    pub time_limit: Option<u64>,
    pub module: Option<String>,
    /// The job file's content.
    pub file: JobFile,
    /// Its result holds secrets and is held in its supervisor's memory (see [`crate::held`]).
    pub held: bool,
}

impl JobInfo {
    /// Seconds the job has run, or ran until it finished.
    pub fn elapsed(&self) -> Option<f64> {
        let end = if self.state.is_running() || self.state == JobState::Lost {
            clock::now()
        } else {
            self.updated_at?
        };
        Some(clock::elapsed(self.started_at?, end))
    }

    /// The module's name as a person calls it: `command` for `.../AnsiballZ_command.py`, the
    /// file's name for a module of another kind.
    pub fn module_name(&self) -> Option<String> {
        let path = self.module.as_deref()?;
        let file = path.rsplit('/').next().unwrap_or(path);
        let file = file.strip_prefix("AnsiballZ_").unwrap_or(file);
        Some(file.strip_suffix(".py").unwrap_or(file).to_string())
    }

    /// What a running job is doing (see [`crate::progress`]); none for another state, or a
    /// job of ansible's own wrapper.
    pub fn progress(&self) -> Option<Value> {
        let JobFile::Object(job) = &self.file else { return None };
        if !self.state.is_running() {
            return None;
        }
        crate::progress::of(&Running::of(job)?)
    }

    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "jid": self.id.as_str(),
            "state": self.state.as_str(),
            "started": self.started_at.map(clock::utc_timestamp),
            "elapsed": self.elapsed(),
            "time_limit": self.time_limit,
            "module": self.module,
            "module_name": self.module_name(),
            "held": self.held,
        });
        if let Some(progress) = self.progress() {
            value["progress"] = progress;
        }
        value
    }
}

impl JobDir {
    /// What is known of job `id`; `None` when it has no job file.
    pub fn info(&self, id: &JobId) -> Result<Option<JobInfo>, Error> {
        let file = self.read(id)?;
        let updated_at = std::fs::symlink_metadata(self.job_path(id))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64());
        let lines = log::read(&self.log_path(id));
        let invoked = |key| log::field(&lines, "invoked", key);
        let mut info = JobInfo {
            id: id.clone(),
            state: JobState::Running,
            started_at: lines
                .iter()
                .find(|l| l.split(' ').nth(1) == Some("invoked"))
                .and_then(|l| parse_time(l)),
            updated_at,
            time_limit: invoked("time_limit").and_then(|t| t.parse().ok()),
            module: invoked("module"),
            file,
            held: false,
        };
        match &info.file {
            JobFile::Missing => return Ok(None),
            JobFile::Empty => {}
            JobFile::Garbage(_) => info.state = JobState::Damaged,
            JobFile::Object(job) => match Running::of(job) {
                Some(running) => {
                    info.started_at = running.started_at.or(info.started_at);
                    info.time_limit = running.time_limit.or(info.time_limit);
                    info.module = running.module.or(info.module);
                    if running.supervisor.is_some_and(|s| !s.is_alive()) {
                        info.state = JobState::Lost;
                    }
                }
                None => match crate::held::Held::of(job) {
                    Some(held) => {
                        info.held = true;
                        info.state = crate::held::state(&held);
                    }
                    None => info.state = JobState::of_result(job),
                },
            },
        }
        Ok(Some(info))
    }
}

/// The time at the start of a log line, as epoch seconds.
fn parse_time(line: &str) -> Option<f64> {
    clock::parse_utc_timestamp(line.split(' ').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessStamp;
    use std::fs;

    fn result(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn classifies_finished_results() {
        assert_eq!(JobState::of_result(&result(json!({"rc": 0}))), JobState::Finished);
        assert_eq!(JobState::of_result(&result(json!({"failed": false}))), JobState::Finished);
        assert_eq!(JobState::of_result(&result(json!({"failed": true, "msg": "x"}))), JobState::Failed);
        assert_eq!(JobState::of_result(&result(json!({"failed": 1}))), JobState::Failed);
        let timeout = json!({"failed": true, "msg": "Timeout exceeded", "child_pid": 3});
        assert_eq!(JobState::of_result(&result(timeout)), JobState::TimedOut);
        let terminated = json!({"failed": true, "terminated": true, "msg": "terminated"});
        assert_eq!(JobState::of_result(&result(terminated)), JobState::Terminated);
    }

    #[test]
    fn log_times_read_back() {
        for secs in [0.0, 951_782_400.5, 1_795_924_487.613] {
            let line = format!("{} invoked time_limit=1", clock::utc_timestamp(secs));
            assert!((parse_time(&line).unwrap() - secs).abs() < 0.001, "{line}");
        }
        assert_eq!(parse_time("garbage invoked"), None);
    }

    #[test]
    fn info_combines_the_job_file_and_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::new(tmp.path().to_str().unwrap());
        let id = JobId::new("j1.1").unwrap();
        assert!(dir.info(&id).unwrap().is_none());

        dir.log(&id, "invoked protocol=legacy time_limit=30 module=/tmp/ansible-tmp-1/m y.py");
        let me = ProcessStamp::current().unwrap();
        dir.write(&id, &json!({"started": true, "finished": false, "started_at": 5.0, "supervisor": me}))
            .unwrap();
        let info = dir.info(&id).unwrap().unwrap();
        assert_eq!(info.state, JobState::Running);
        assert_eq!(info.started_at, Some(5.0));
        assert_eq!(info.time_limit, Some(30));
        assert_eq!(info.module.as_deref(), Some("/tmp/ansible-tmp-1/m y.py"));
        assert_eq!(info.module_name().as_deref(), Some("m y"));
        assert!(info.to_json()["progress"]["processes"].is_array(), "this process is its supervisor");

        let gone = ProcessStamp { start_time: me.start_time + 1, ..me };
        dir.write(&id, &json!({"started": true, "supervisor": gone})).unwrap();
        assert_eq!(dir.info(&id).unwrap().unwrap().state, JobState::Lost);

        dir.write(&id, &json!({"rc": 0})).unwrap();
        let info = dir.info(&id).unwrap().unwrap();
        assert_eq!(info.state, JobState::Finished);
        assert!(info.started_at.unwrap() > 1e9, "from the log line's time");
        assert!(info.elapsed().unwrap() >= 0.0);
        assert_eq!(info.to_json()["state"], "finished");

        fs::write(dir.job_path(&id), "{oops").unwrap();
        assert_eq!(dir.info(&id).unwrap().unwrap().state, JobState::Damaged);
    }
}
