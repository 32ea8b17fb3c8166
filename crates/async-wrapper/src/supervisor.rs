//! One supervisor per job: it runs the module in a process group of its own, waits for it
//! without polling (the time limit is a `sigtimedwait` timeout), and writes the result.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::mem::MaybeUninit;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_core::{output, JobDir, JobId};
use nix::sys::signal::{killpg, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use serde_json::{json, Map, Value};

use crate::invocation::Invocation;

/// Signals the supervisor handles itself: the module's exit, and being asked to stop.
const HANDLED: [Signal; 4] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
];

pub struct Supervisor {
    pub id: JobId,
    pub dir: JobDir,
    pub invocation: Invocation,
}

/// How waiting for the module ended.
enum Outcome {
    Exited(ExitStatus),
    TimedOut,
    Stopped(Signal),
}

/// The module's stdout and stderr: unlinked files in the job dir rather than pipes, so
/// output costs no memory while the job runs and a background child that keeps them
/// open cannot hold the job "running".
pub(crate) struct Capture {
    stdout: File,
    stderr: File,
}

impl Supervisor {
    /// Writes the "started" job file; the job exists from here on.
    pub fn record_start(&self) -> Result<(), async_core::Error> {
        self.dir.write(
            &self.id,
            &json!({"started": true, "finished": false, "ansible_job_id": self.id.as_str()}),
        )
    }

    /// Starts the module; `Err` is a finished job's failed result (the module never ran).
    pub fn start_module(&self) -> Result<(Child, Capture), Value> {
        block(&HANDLED);
        let capture = Capture::new(&self.dir)
            .map_err(|e| self.failure(format!("could not capture the module's output: {e}")))?;
        let command = self.invocation.command().map_err(|e| self.os_failure(&e))?;
        let (program, args) = command
            .split_first()
            .ok_or_else(|| self.failure("the module command is empty".into()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(
                capture
                    .stdout
                    .try_clone()
                    .map_err(|e| self.os_failure(&e))?,
            )
            .stderr(
                capture
                    .stderr
                    .try_clone()
                    .map_err(|e| self.os_failure(&e))?,
            )
            // A group of its own, so the time limit ends the module's children too.
            .process_group(0)
            .spawn()
            .map_err(|e| self.spawn_failure(program, &e))?;
        Ok((child, capture))
    }

    /// Waits for the module, ends it at the time limit, and returns the job's result.
    pub fn supervise(&self, mut child: Child, capture: Capture) -> Value {
        let pid = child.id();
        match wait(&mut child, Instant::now() + self.invocation.time_limit) {
            Outcome::Exited(status) => self.finished(status, capture),
            Outcome::TimedOut => {
                end_group(&mut child);
                json!({"msg": "Timeout exceeded", "failed": true, "child_pid": pid})
            }
            Outcome::Stopped(signal) => {
                end_group(&mut child);
                json!({
                    "failed": true,
                    "msg": format!("the job was ended because its async_wrapper received {signal}"),
                    "child_pid": pid,
                })
            }
        }
    }

    /// Writes the final result and removes ansible's tmp dir when that is ours to do.
    pub fn finish(&self, result: &Value) {
        // Nobody is left to tell when this fails: the job file keeps saying "running".
        let _ = self.dir.write(&self.id, result);
        if let Some(tmp) = self.invocation.tmp_dir_to_remove() {
            let is_real_dir = std::fs::symlink_metadata(tmp).is_ok_and(|m| m.is_dir());
            if is_real_dir {
                let _ = std::fs::remove_dir_all(tmp);
            }
        }
    }

    fn finished(&self, status: ExitStatus, mut capture: Capture) -> Value {
        let (stdout, stderr) = match capture.read() {
            Ok(output) => output,
            Err(e) => return self.failure(format!("could not read the module's output: {e}")),
        };
        match output::module_result(&stdout, &stderr) {
            Ok(result) => Value::Object(result),
            Err(output::NotJson(why)) => {
                let mut msg = format!("The module did not return a JSON result: {why}");
                if let Some(signal) = status.signal() {
                    let name = Signal::try_from(signal)
                        .map(|s| s.as_str())
                        .unwrap_or("unknown signal");
                    msg.push_str(&format!(" (it was killed by signal {signal}, {name})"));
                } else if let Some(code) = status.code().filter(|&c| c != 0) {
                    msg.push_str(&format!(" (it exited with status {code})"));
                }
                let mut result = self.failure_map(msg);
                result.insert("data".into(), json!(String::from_utf8_lossy(&stdout)));
                result.insert("stderr".into(), json!(String::from_utf8_lossy(&stderr)));
                Value::Object(result)
            }
        }
    }

    fn failure_map(&self, msg: String) -> Map<String, Value> {
        let value = json!({
            "failed": true,
            "cmd": self.invocation.display_command(),
            "msg": msg,
            "ansible_job_id": self.id.as_str(),
        });
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn failure(&self, msg: String) -> Value {
        let mut map = self.failure_map(msg);
        map.insert("data".into(), json!(""));
        map.insert("stderr".into(), json!(""));
        Value::Object(map)
    }

    /// The text Python gives an `OSError`, which is what ansible-core reports.
    fn os_failure(&self, e: &io::Error) -> Value {
        match e.raw_os_error() {
            Some(errno) => self.failure(format!("[Errno {errno}] {}", strerror(errno))),
            None => self.failure(e.to_string()),
        }
    }

    fn spawn_failure(&self, program: &OsString, e: &io::Error) -> Value {
        match e.raw_os_error() {
            Some(errno) => self.failure(format!(
                "[Errno {errno}] {}: '{}'",
                strerror(errno),
                program.to_string_lossy()
            )),
            None => self.failure(format!(
                "could not start {:?}: {e}",
                program.to_string_lossy()
            )),
        }
    }
}

impl Capture {
    fn new(dir: &JobDir) -> io::Result<Capture> {
        Ok(Capture {
            stdout: tempfile::tempfile_in(dir.path())?,
            stderr: tempfile::tempfile_in(dir.path())?,
        })
    }

    fn read(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let read = |file: &mut File| -> io::Result<Vec<u8>> {
            let mut data = Vec::new();
            file.rewind()?;
            file.read_to_end(&mut data)?;
            Ok(data)
        };
        Ok((read(&mut self.stdout)?, read(&mut self.stderr)?))
    }
}

fn block(signals: &[Signal]) {
    let mut set = SigSet::empty();
    for &signal in signals {
        set.add(signal);
    }
    // Cannot fail with a valid set; the child gets an empty mask back from std.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Waits for the module to exit, for the deadline, or for a stop signal, whichever first.
fn wait(child: &mut Child, deadline: Instant) -> Outcome {
    let mut set = SigSet::empty();
    for signal in HANDLED {
        set.add(signal);
    }
    loop {
        // SIGCHLD may have come before we got here, or for an earlier event: ask first.
        if let Ok(Some(status)) = child.try_wait() {
            return Outcome::Exited(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::TimedOut;
        }
        match sigtimedwait(&set, left) {
            Some(Signal::SIGCHLD) | None => continue,
            Some(signal) => return Outcome::Stopped(signal),
        }
    }
}

/// Waits up to `timeout` for one of `set`; `None` on timeout or interruption.
fn sigtimedwait(set: &SigSet, timeout: Duration) -> Option<Signal> {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
    // SAFETY: the set, siginfo and timespec pointers are valid for the call.
    let signal = unsafe { libc::sigtimedwait(set.as_ref(), info.as_mut_ptr(), &timeout) };
    Signal::try_from(signal).ok()
}

/// Kills the module's whole process group and reaps the module.
fn end_group(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std says "No such file or directory (os error 2)"; Python says it without the suffix.
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
