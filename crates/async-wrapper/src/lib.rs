//! `async_wrapper`: what ansible runs on the managed host for a task with `async:`.
//!
//! It checks its command line and the async dir, then forks: the first process waits for
//! the job to be running and answers ansible with the job id; the other detaches (new
//! session, second fork, stdio on `/dev/null`) and becomes the job's `Supervisor`, the
//! only process the job costs besides the module itself.

mod deadline;
mod invocation;
mod supervisor;
mod syslog;

pub use deadline::HALVING_SINCE;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use async_core::rules::{self, fill};
use async_core::{control, JobDir, JobId, Reply};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{fork, setsid, ForkResult};
use serde_json::json;

use deadline::Rule;
use invocation::Invocation;
use supervisor::Supervisor;

/// What the supervisor sends up the pipe once the module runs (or could not be started,
/// which is a finished job too). Anything else is an error text.
const STARTED: &[u8] = b"started";

/// Runs `async_wrapper` with `args` (without the program name). In the process ansible
/// started, the reply is ansible's answer; the job's detached processes return a silent
/// one when they are done.
pub fn run(args: Vec<OsString>) -> Reply {
    let supervisor = match prepare(&args) {
        Ok(supervisor) => supervisor,
        Err(msg) => return Reply::failure(msg),
    };
    let id = supervisor.id.clone();
    let results_file = supervisor.dir.job_path(&id).display().to_string();
    let suppress_tmpdir_delete = !supervisor.invocation.preserve_tmp;
    match launch(supervisor) {
        Side::Caller(Ok(())) => Reply::json(
            &json!({
                "failed": false,
                "started": true,
                "finished": false,
                "ansible_job_id": id.as_str(),
                "results_file": results_file,
                "_ansible_suppress_tmpdir_delete": suppress_tmpdir_delete,
            }),
            0,
        ),
        Side::Caller(Err(msg)) => {
            Reply::json(&json!({"failed": true, "msg": msg, "ansible_job_id": id.as_str()}), 1)
        }
        Side::Detached(code) => Reply::silent(code),
    }
}

/// Checks the command line, the environment and the async dir; the job's supervisor-to-be.
fn prepare(args: &[OsString]) -> Result<Supervisor, String> {
    let invocation = Invocation::parse(args)?;
    let id = JobId::for_wrapper(&invocation.jid, std::process::id()).map_err(|e| e.to_string())?;
    let grace = control::grace_from_env()?;
    let limit_rule = match deadline::exact_from_env()? {
        true => Rule::Exact,
        false if invocation.time_limit.is_none() => Rule::Exact,
        false => Rule::Stock(invocation.stock_watchdog()),
    };
    let lease = async_core::lease::lease_from_env()?;
    let secrets_to_disk = secrets_to_disk_from_env()?;
    let retain = async_core::retain::retain_from_env()?;
    let dir = JobDir::from_env();
    dir.create().map_err(|e| e.to_string())?;
    let started_at = async_core::clock::now();
    // Read once: the progress takes an unstated no_log as no_log; holding a result takes
    // only a stated one (ansible always states it; see `held`).
    let no_log_stated = invocation.no_log_stated();
    let no_log = no_log_stated.unwrap_or(true);
    let hold_no_log = no_log_stated == Some(true);
    let secret_args = invocation.arguments_hold_secrets();
    let tail = tail_from_env();
    Ok(Supervisor {
        id,
        dir,
        invocation,
        grace,
        limit_rule,
        lease,
        started_at,
        no_log,
        tail,
        hold_no_log,
        secret_args,
        secrets_to_disk,
        retain,
    })
}

/// `ASYNC_WRAPPER_SECRETS`: `disk` writes a result that holds secrets to the job file, as
/// ansible-core's own wrapper does; `memory` (the default) keeps it in the supervisor's.
fn secrets_to_disk_from_env() -> Result<bool, String> {
    use async_core::rules::{self, SECRETS_DISK, SECRETS_ENV, SECRETS_MEMORY};
    let Some(value) = std::env::var_os(SECRETS_ENV) else { return Ok(false) };
    let value = value.to_string_lossy();
    match value.trim().to_ascii_lowercase().as_str() {
        "" | SECRETS_MEMORY => Ok(false),
        SECRETS_DISK => Ok(true),
        _ => Err(rules::fill(rules::BAD_SECRETS, &[("env", &SECRETS_ENV), ("value", &rules::quote(&value))])),
    }
}

/// The file named by `ASYNC_WRAPPER_TAIL`, made absolute against the module's working
/// folder (the wrapper's); none when unset or empty.
fn tail_from_env() -> Option<String> {
    let path = std::env::var_os(async_core::rules::TAIL_ENV).filter(|p| !p.is_empty())?;
    let path = std::path::PathBuf::from(path);
    let path = if path.is_absolute() { path } else { std::env::current_dir().ok()?.join(path) };
    Some(path.to_string_lossy().into_owned())
}

/// Which process [`launch`] returns in.
enum Side {
    /// The process ansible started: the job runs, or why it does not.
    Caller(Result<(), String>),
    /// One of the job's detached processes, done: it ends with this exit code.
    Detached(i32),
}

/// Starts the detached supervisor; in the caller, returns once the job runs.
fn launch(supervisor: Supervisor) -> Side {
    let (ready_read, ready_write) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => return Side::Caller(Err(format!("could not create a pipe: {e}"))),
    };
    // SAFETY: the program is single-threaded here, so the child may do anything.
    match unsafe { fork() } {
        Err(e) => Side::Caller(Err(fill(rules::FORK_FAILED, &[("n", &1), ("error", &e)]))),
        Ok(ForkResult::Parent { child }) => {
            drop(ready_write);
            let mut answer = Vec::new();
            let _ = File::from(ready_read).read_to_end(&mut answer);
            // The first child exited right after the second fork; reap it.
            let _ = nix::sys::wait::waitpid(child, None);
            Side::Caller(match answer.as_slice() {
                STARTED => Ok(()),
                [] => Err(rules::NOT_STARTED.into()),
                text => Err(String::from_utf8_lossy(text).into_owned()),
            })
        }
        Ok(ForkResult::Child) => {
            drop(ready_read);
            Side::Detached(detach(ready_write, supervisor))
        }
    }
}

/// Runs in the first child: leaves ansible's session, forks the supervisor and returns at
/// once; in the supervisor, returns when the job is over. Returns the exit code. Errors
/// before the job runs go up the `ready` pipe, for the caller to report.
fn detach(ready: OwnedFd, supervisor: Supervisor) -> i32 {
    let mut ready = File::from(ready);
    let _ = setsid();
    // SAFETY: single-threaded; the parent of this fork only returns and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            let _ = ready.write_all(fill(rules::FORK_FAILED, &[("n", &2), ("error", &e)]).as_bytes());
            return 1;
        }
    }
    // The supervisor must not hold ansible's stdout open, or ansible would wait for it.
    if let Err(e) = to_dev_null() {
        let _ = ready.write_all(fill(rules::NO_DEV_NULL, &[("error", &e)]).as_bytes());
        return 1;
    }
    close_inherited_fds(ready.as_raw_fd());
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));

    let first_write = match supervisor.record_start() {
        Ok(written) => written,
        Err(e) => {
            let _ = ready.write_all(fill(rules::JOB_FILE_NOT_WRITTEN, &[("error", &e)]).as_bytes());
            return 1;
        }
    };
    match supervisor.start_module() {
        Ok(module) => {
            let _ = ready.write_all(STARTED);
            drop(ready);
            supervisor.record_running(first_write, Some(&module));
            supervisor.retain();
            let result = supervisor.supervise(module);
            supervisor.deliver(result);
        }
        Err(failed) => {
            supervisor.write_result(&failed);
            let _ = ready.write_all(STARTED);
            drop(ready);
            supervisor.record_running(first_write, None);
        }
    }
    0
}

fn to_dev_null() -> nix::Result<()> {
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
    for fd in 0..=2 {
        nix::unistd::dup2(null, fd)?;
    }
    if null > 2 {
        nix::unistd::close(null)?;
    }
    Ok(())
}

/// Closes every descriptor but stdio and `keep`, so the module inherits nothing from the
/// connection that started the job.
fn close_inherited_fds(keep: RawFd) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        // No /proc (a chroot, say): the usual range.
        Err(_) => (3..1024).collect(),
    };
    for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        let _ = nix::unistd::close(fd);
    }
}
