//! `async_wrapper`: what ansible runs on the managed host for a task with `async:`.
//!
//! It checks its command line and the async dir, then forks: the first process waits for
//! the job to be running and answers ansible with the job id; the other detaches (new
//! session, second fork, stdio on `/dev/null`) and becomes the job's `Supervisor`, the
//! only process the job costs besides the module itself.

mod invocation;
mod supervisor;
mod syslog;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use async_core::{reply, JobDir, JobId};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{fork, setsid, ForkResult};
use serde_json::json;

use invocation::Invocation;
use supervisor::Supervisor;

/// What the supervisor sends up the pipe once the module runs (or could not be started,
/// which is a finished job too). Anything else is an error text.
const STARTED: &[u8] = b"started";

/// Runs `async_wrapper` with `args` (without the program name) and exits.
pub fn run(args: Vec<OsString>) -> ! {
    let invocation = Invocation::parse(&args).unwrap_or_else(|msg| reply::exit(&reply::failure(msg), 1));
    let id = JobId::for_wrapper(&invocation.jid, std::process::id())
        .unwrap_or_else(|e| reply::exit(&reply::failure(e.to_string()), 1));
    let grace =
        async_core::control::grace_from_env().unwrap_or_else(|msg| reply::exit(&reply::failure(msg), 1));
    let dir = JobDir::from_env();
    if let Err(e) = dir.create() {
        reply::exit(&reply::failure(e.to_string()), 1);
    }
    let results_file = dir.job_path(&id).display().to_string();
    let suppress_tmpdir_delete = !invocation.preserve_tmp;
    let started_at = async_core::log::now();
    let supervisor = Supervisor { id: id.clone(), dir, invocation, grace, started_at };

    match launch(supervisor) {
        Ok(()) => reply::exit(
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
        Err(msg) => reply::exit(&json!({"failed": true, "msg": msg, "ansible_job_id": id.as_str()}), 1),
    }
}

/// Starts the detached supervisor and returns once the job runs.
fn launch(supervisor: Supervisor) -> Result<(), String> {
    let (ready_read, ready_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("could not create a pipe: {e}"))?;
    // SAFETY: the program is single-threaded here, so the child may do anything.
    match unsafe { fork() }.map_err(|e| format!("fork #1 failed: {e}"))? {
        ForkResult::Parent { child } => {
            drop(ready_write);
            let mut answer = Vec::new();
            let _ = File::from(ready_read).read_to_end(&mut answer);
            // The first child exited right after the second fork; reap it.
            let _ = nix::sys::wait::waitpid(child, None);
            match answer.as_slice() {
                STARTED => Ok(()),
                [] => Err("the job's supervisor exited before the job started".into()),
                text => Err(String::from_utf8_lossy(text).into_owned()),
            }
        }
        ForkResult::Child => {
            drop(ready_read);
            detach(ready_write, supervisor)
        }
    }
}

/// Runs in the first child: leaves ansible's session, forks the supervisor, exits.
fn detach(ready: OwnedFd, supervisor: Supervisor) -> ! {
    let _ = setsid();
    // SAFETY: single-threaded; the parent of this fork only exits.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => exit_now(0),
        Ok(ForkResult::Child) => {}
        Err(e) => {
            let _ = File::from(ready).write_all(format!("fork #2 failed: {e}").as_bytes());
            exit_now(1);
        }
    }
    // The supervisor must not hold ansible's stdout open, or ansible would wait for it.
    if let Err(e) = to_dev_null() {
        let _ = File::from(ready).write_all(format!("could not redirect stdio to /dev/null: {e}").as_bytes());
        exit_now(1);
    }
    close_inherited_fds(ready.as_raw_fd());
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));

    let mut ready = File::from(ready);
    let first_write = match supervisor.record_start() {
        Ok(written) => written,
        Err(e) => {
            let _ = ready.write_all(format!("could not write the job file: {e}").as_bytes());
            exit_now(1);
        }
    };
    match supervisor.start_module() {
        Ok(module) => {
            let _ = ready.write_all(STARTED);
            drop(ready);
            supervisor.record_running(first_write, Some(&module));
            let result = supervisor.supervise(module);
            supervisor.finish(&result);
        }
        Err(failed) => {
            supervisor.finish(&failed);
            let _ = ready.write_all(STARTED);
            drop(ready);
            supervisor.record_running(first_write, None);
        }
    }
    exit_now(0)
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

fn exit_now(code: i32) -> ! {
    std::process::exit(code)
}
