//! The operations, shared by the module and the command.

use std::fmt;
use std::time::{Duration, Instant};

use async_core::control::{self, TERMINATE};
use async_core::record::{Record, Running, Terminated};
use async_core::rules::quote;
use async_core::{clock, log, JobDir, JobFile, JobId, JobInfo, JobState, ProcessStamp};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{json, Value};

/// How long past its grace period a supervisor may take to write the result it was asked for.
const RESULT_SLACK: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum Error {
    /// Bad input: an invalid job id, a bad duration, a missing argument.
    Invalid(String),
    /// No job file for this id.
    NotFound(String),
    /// The operation could not be done.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(msg) | Error::Failed(msg) => f.write_str(msg),
            Error::NotFound(jid) => write!(f, "{} {jid}", async_core::rules::NOT_FOUND),
        }
    }
}

impl From<async_core::Error> for Error {
    fn from(e: async_core::Error) -> Error {
        match e {
            async_core::Error::InvalidJobId { .. } => Error::Invalid(e.to_string()),
            _ => Error::Failed(e.to_string()),
        }
    }
}

/// Checks that the job dir exists and is safe to act on.
pub(crate) fn check_dir(dir: &JobDir) -> Result<(), Error> {
    if !dir.exists() {
        return Err(Error::Failed(format!("the async directory {} does not exist", dir.path().display())));
    }
    Ok(dir.check()?)
}

pub fn list(dir: &JobDir) -> Result<Vec<JobInfo>, Error> {
    check_dir(dir)?;
    let mut jobs = Vec::new();
    for id in dir.job_ids()? {
        // A job cleaned up while we list is simply not there any more.
        if let Some(info) = dir.info(&id)? {
            jobs.push(info);
        }
    }
    // Running jobs first, then the newest.
    async_core::progress::sort_descending(&mut jobs, |job| {
        (job.state.is_running(), job.started_at.unwrap_or(0.0))
    });
    Ok(jobs)
}

pub fn show(dir: &JobDir, jid: &str) -> Result<(JobInfo, Vec<String>), Error> {
    check_dir(dir)?;
    let id = JobId::new(jid)?;
    let info = dir.info(&id)?.ok_or_else(|| Error::NotFound(jid.into()))?;
    Ok((info, log::read(&dir.log_path(&id))))
}

/// What `terminate` did.
pub struct TerminateOutcome {
    pub changed: bool,
    /// The job's state before.
    pub before: JobState,
    /// The job file afterwards (unchanged in check mode or when there was nothing to do).
    pub result: Value,
    pub msg: String,
}

/// Ends a running job: its supervisor is asked to (SIGTERM to the module's group, grace
/// period, SIGKILL, failed result), and this waits until the result is written. A lost
/// job whose module still runs is ended here directly.
pub fn terminate(dir: &JobDir, jid: &str, check_mode: bool) -> Result<TerminateOutcome, Error> {
    check_dir(dir)?;
    request_end(dir, jid, check_mode)?.finish(dir)
}

/// A terminate underway: asked for, not yet awaited. Many are asked for first and then
/// awaited, so that their grace periods run at the same time.
enum Ending {
    /// Nothing (more) to do: not running, check mode.
    Done(TerminateOutcome),
    /// The supervisor was signalled; its result is awaited.
    Asked { id: JobId, before: JobState, grace: Duration },
    /// The supervisor is gone: the module's group is ended here.
    Orphan { id: JobId, before: JobState, grace: Duration, module: ProcessStamp },
}

/// The first half of a terminate: looks at the job and signals its supervisor.
fn request_end(dir: &JobDir, jid: &str, check_mode: bool) -> Result<Ending, Error> {
    let id = JobId::new(jid)?;
    let info = dir.info(&id)?.ok_or_else(|| Error::NotFound(jid.into()))?;
    let JobFile::Object(job) = &info.file else {
        return Ok(Ending::Done(unchanged(&info, "it is not running")));
    };
    let Some(running) = Running::of(job) else {
        return Ok(Ending::Done(unchanged(&info, &format!("it is {}", info.state))));
    };
    let module = running.module_process.clone().filter(ProcessStamp::is_alive);
    match info.state {
        JobState::Running => {}
        JobState::Lost if module.is_some() => {}
        state => return Ok(Ending::Done(unchanged(&info, &format!("it is {state}")))),
    }
    // Whom to signal: the supervisor when it lives, else the module's group directly.
    let target = match (running.supervisor.clone().filter(ProcessStamp::is_alive), module) {
        (Some(supervisor), _) => Target::Supervisor(supervisor),
        (None, Some(module)) => Target::Group(module),
        (None, None) => {
            return Err(Error::Failed(format!(
                "job {jid} records no process to signal (was it started by ansible's own async_wrapper?)"
            )));
        }
    };
    if check_mode {
        return Ok(Ending::Done(TerminateOutcome {
            changed: true,
            before: info.state,
            result: Value::Object(job.clone()),
            msg: format!("job {jid} would be terminated"),
        }));
    }
    let grace = grace_of(&running);
    let before = info.state;
    match target {
        Target::Supervisor(supervisor) => {
            kill(Pid::from_raw(supervisor.pid as i32), TERMINATE)
                .map_err(|e| Error::Failed(format!("could not signal the job's supervisor: {e}")))?;
            Ok(Ending::Asked { id, before, grace })
        }
        Target::Group(module) => Ok(Ending::Orphan { id, before, grace, module }),
    }
}

impl Ending {
    /// The second half: waits for the result (or ends a lost job's group and writes it).
    fn finish(self, dir: &JobDir) -> Result<TerminateOutcome, Error> {
        let (id, before) = match self {
            Ending::Done(outcome) => return Ok(outcome),
            Ending::Asked { id, before, grace } => {
                await_result(dir, &id, grace + RESULT_SLACK)?;
                (id, before)
            }
            Ending::Orphan { id, before, grace, module } => {
                control::end_group(Pid::from_raw(module.pid as i32), grace, || !module.is_alive());
                let result = Terminated::new(
                    &id,
                    module.pid.into(),
                    "the job was terminated on request (async_job terminate); its supervisor was already gone",
                );
                dir.write(&id, &result.to_value())?;
                dir.log(&id, "terminated by=async_job supervisor=gone");
                (id, before)
            }
        };
        let result = match dir.read(&id)? {
            JobFile::Object(result) => Value::Object(result),
            JobFile::Missing => json!("no job file"),
            JobFile::Empty => json!(""),
            JobFile::Garbage(text) => json!(text),
        };
        Ok(TerminateOutcome { changed: true, before, result, msg: format!("job {id} was terminated") })
    }
}

/// Who `terminate` signals.
enum Target {
    /// The job's supervisor, which ends the module's group and writes the result.
    Supervisor(ProcessStamp),
    /// The module's group itself, when its supervisor is gone.
    Group(ProcessStamp),
}

fn unchanged(info: &JobInfo, why: &str) -> TerminateOutcome {
    let result = match &info.file {
        JobFile::Object(job) => Value::Object(job.clone()),
        _ => Value::Null,
    };
    TerminateOutcome {
        changed: false,
        before: info.state,
        result,
        msg: format!("job {} was not terminated: {why}", info.id),
    }
}

/// Waits until the job file holds a result.
fn await_result(dir: &JobDir, id: &JobId, limit: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    loop {
        match dir.read(id)? {
            JobFile::Object(job) if !Running::is_running(&job) => return Ok(()),
            JobFile::Missing => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(Error::Failed(format!(
                    "job {id} was signalled but has not written its result within {} s",
                    limit.as_secs()
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The grace period the job was started with, as its running job file records it (a stock
/// wrapper's job has none: the default).
fn grace_of(job: &Running) -> Duration {
    job.kill_grace().unwrap_or(control::DEFAULT_GRACE)
}

pub use async_core::retain::Collected;

/// How many of `jobs` are over and were last written more than a day ago: what
/// `async_job list` points out, as jobs that nobody collected.
pub fn finished_older_than_a_day(jobs: &[JobInfo]) -> usize {
    let now = clock::now();
    jobs.iter().filter(|info| async_core::retain::is_older(info, Duration::from_secs(86_400), now)).count()
}

/// Removes the job files (and logs) of jobs that are over and whose file was last written
/// at least `older_than` ago. Running jobs are never touched (`async_core::retain`).
pub fn gc(dir: &JobDir, older_than: Duration, check_mode: bool) -> Result<Collected, Error> {
    check_dir(dir)?;
    Ok(async_core::retain::collect(dir, older_than, check_mode)?)
}

/// `90`, `90s`, `15m`, `2h`, `1d`, `1w`.
/// Which jobs a bulk terminate ends: the ids given, or every running job in the dir that is
/// older than `older_than` (when given) and runs the module `module` (when given).
pub enum Selection {
    Ids(Vec<String>),
    Running { older_than: Option<Duration>, module: Option<String> },
}

/// What a bulk terminate did to one job.
pub struct JobOutcome {
    pub jid: String,
    /// `None`: there is no such job.
    pub outcome: Option<TerminateOutcome>,
    /// Why it could not be ended, when it could not.
    pub error: Option<String>,
}

/// Ends many jobs at once (their grace periods overlap): the cleanup an
/// operator runs after a cancelled play. Bad job ids are refused before any job is touched;
/// a job that is not there or no longer runs is reported as such, not as a failure.
pub fn terminate_many(
    dir: &JobDir,
    selection: &Selection,
    check_mode: bool,
) -> Result<Vec<JobOutcome>, Error> {
    check_dir(dir)?;
    let jids: Vec<String> = match selection {
        Selection::Ids(jids) => {
            if jids.is_empty() {
                return Err(Error::Invalid("jid must name at least one job".into()));
            }
            for (n, jid) in jids.iter().enumerate() {
                JobId::new(jid)?;
                if jids[..n].contains(jid) {
                    return Err(Error::Invalid(format!("job {jid} is named more than once")));
                }
            }
            jids.clone()
        }
        Selection::Running { older_than, module } => {
            let now = clock::now();
            list(dir)?
                .into_iter()
                .filter(|info| matches!(info.state, JobState::Running | JobState::Lost))
                .filter(|info| {
                    older_than
                        .is_none_or(|age| info.started_at.is_some_and(|at| now - at >= age.as_secs_f64()))
                })
                .filter(|info| module.as_deref().is_none_or(|name| runs_module(info, name)))
                .map(|info| info.id.to_string())
                .collect()
        }
    };
    // Every supervisor is asked first, then each result awaited: the grace periods overlap.
    let asked: Vec<(String, Result<Ending, Error>)> =
        jids.into_iter().map(|jid| (jid.clone(), request_end(dir, &jid, check_mode))).collect();
    let outcomes = asked
        .into_iter()
        .map(|(jid, ending)| match ending.and_then(|ending| ending.finish(dir)) {
            Ok(outcome) => JobOutcome { jid, outcome: Some(outcome), error: None },
            Err(Error::NotFound(_)) => JobOutcome { jid, outcome: None, error: None },
            Err(e) => JobOutcome { jid, outcome: None, error: Some(e.to_string()) },
        })
        .collect();
    Ok(outcomes)
}

/// Whether a job runs module `name` (`command`, or `ansible.builtin.command`): the module file
/// ansible copied, `AnsiballZ_command.py`, names it.
fn runs_module(info: &JobInfo, name: &str) -> bool {
    let want = name.rsplit('.').next().unwrap_or(name);
    info.module_name().as_deref() == Some(want)
}

pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(Error::Invalid(format!("older_than must not be negative, got: {}", quote(text))));
    }
    async_core::retain::parse_duration(text).ok_or_else(|| {
        Error::Invalid(format!(
            "older_than must be a duration like 3600, 90s, 15m, 2h or 1d, got: {}",
            quote(text)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration(" 1d ").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("-1d").unwrap_err().to_string().contains("must not be negative"));
        for bad in ["", "d", "1y", "1.2.3", "abc", "1e400"] {
            assert!(matches!(parse_duration(bad), Err(Error::Invalid(_))), "{bad}");
        }
    }
}

#[cfg(test)]
mod grace_tests {
    use super::*;

    #[test]
    fn the_job_file_says_the_grace_period_else_it_is_the_default() {
        let job = |value: Value| Running::of(value.as_object().unwrap()).unwrap();
        assert_eq!(grace_of(&job(json!({"started": true, "kill_grace": 30}))), Duration::from_secs(30));
        assert_eq!(grace_of(&job(json!({"started": true}))), control::DEFAULT_GRACE);
    }
}
