//! One supervisor per job: it runs the module in a process group of its own, waits for it
//! without polling (the time limit is a `sigtimedwait` timeout), ends it when asked or when
//! time is up (SIGTERM to the group, a grace period, then SIGKILL), and writes the result.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_core::control::{self, TERMINATE};
use async_core::record::{Expired, NoResult, Record, Running, Terminated, TimedOut, Unwritten};
use async_core::rules::{self, fill};
use async_core::{held, output, JobDir, JobId, JobState, ProcessStamp, Written};

use crate::syslog;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::Value;

use crate::deadline::Rule;
use crate::invocation::Invocation;

/// Signals the supervisor handles itself: its children's exits, being asked to stop
/// (shutdown, an operator), and SIGUSR1, which is how `async_job terminate` asks.
const HANDLED: [Signal; 5] =
    [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1];

pub struct Supervisor {
    pub id: JobId,
    pub dir: JobDir,
    pub invocation: Invocation,
    pub grace: Duration,
    /// When the time limit ends the job.
    pub limit_rule: Rule,
    /// How long the job may go without a status call (`ASYNC_WRAPPER_LEASE`).
    pub lease: Option<Duration>,
    /// Seconds since the epoch at which ansible invoked the wrapper.
    pub started_at: f64,
    /// The task's `no_log`: the progress of the job then shows no command lines, no tail.
    pub no_log: bool,
    /// The file whose last lines the progress shows (`ASYNC_WRAPPER_TAIL`), absolute.
    pub tail: Option<String>,
    /// The module's arguments state the task is `no_log`: its result is held in memory.
    pub hold_no_log: bool,
    /// The module's arguments hold secrets the controller knows (ansible-core 2.22): its
    /// result may hold them without listing them.
    pub secret_args: bool,
    /// `ASYNC_WRAPPER_SECRETS=disk`: a result that holds secrets is written all the same.
    pub secrets_to_disk: bool,
    /// `ASYNC_WRAPPER_RETAIN`: finished jobs older than this are removed at the start.
    pub retain: Option<Duration>,
}

/// A running module: the leader of its own process group.
pub(crate) struct Module {
    pid: Pid,
    started: Instant,
    capture: Capture,
}

/// How the module's run ended.
enum Outcome {
    Exited(WaitStatus),
    TimedOut,
    Stopped(Signal),
    /// No status call came for the lease's length; when the last one came, if any did.
    LeaseExpired(Option<SystemTime>),
}

/// A running job's lease (see [`async_core::lease`]): when it runs out, and the job file's
/// time last seen, which status calls move forward to renew it.
struct Lease<'a> {
    dir: &'a JobDir,
    id: &'a JobId,
    length: Duration,
    renewed: Instant,
    seen: Option<SystemTime>,
    last_call: Option<SystemTime>,
}

impl Lease<'_> {
    fn expiry(&self) -> Instant {
        self.renewed + self.length
    }

    /// Takes in a renewal, if one came since the last look (the job file's time moved);
    /// whether the lease has run out.
    fn run_out(&mut self) -> bool {
        if let Some(at) = self.dir.last_renewal(self.id).filter(|&at| Some(at) != self.seen) {
            self.seen = Some(at);
            // On the monotonic clock, as long ago as the file's time says (never ahead).
            let ago = SystemTime::now().duration_since(at).unwrap_or_default();
            let renewed = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
            if renewed > self.renewed {
                self.renewed = renewed;
                self.last_call = Some(at);
            }
        }
        Instant::now() >= self.expiry()
    }
}

/// The module's stdout and stderr: unlinked files in the job dir rather than pipes, so
/// output costs no memory while the job runs and a background child that keeps them
/// open cannot hold the job "running".
struct Capture {
    stdout: File,
    stderr: File,
}

impl Supervisor {
    /// Writes the "started" job file; the job exists from here on. Besides ansible's three
    /// keys it records who supervises the job (so a lost job can be told from a running
    /// one), when it started, its time limit and, once it runs, the module's process.
    pub fn record_start(&self) -> Result<Written, async_core::Error> {
        let inv = &self.invocation;
        self.dir.log(
            &self.id,
            &fill(
                rules::LOG_INVOKED,
                &[
                    ("protocol", &inv.protocol.name()),
                    ("time_limit", &inv.time_limit_secs()),
                    ("grace", &self.grace.as_secs_f64()),
                    ("limits", &self.limits_for_log()),
                    ("module", &inv.module_path.display()),
                ],
            ),
        );
        self.dir.write_unsynced(&self.id, &self.marker(None).to_value())
    }

    /// Completes the start once ansible has its answer: makes the first job file durable,
    /// records the module's process in it, and sends the syslog notices.
    pub(crate) fn record_running(&self, first_write: Written, module: Option<&Module>) {
        let _ = first_write.sync();
        syslog::notice(&fill(
            rules::SYSLOG_INVOKED,
            &[("id", &self.id), ("args", &self.invocation.display_args())],
        ));
        let Some(module) = module else { return };
        let pid = module.pid.as_raw() as u32;
        syslog::notice(&format!("{} {}", self.id, fill(rules::LOG_STARTED, &[("pid", &pid)])));
        // Who to end if the supervisor itself is lost; the job runs without it otherwise.
        if let Some(stamp) = ProcessStamp::of(pid) {
            let _ = self.dir.write(&self.id, &self.marker(Some(stamp)).to_value());
        }
    }

    fn marker(&self, module_process: Option<ProcessStamp>) -> Running {
        Running {
            started: true,
            finished: false,
            ansible_job_id: Some(self.id.to_string()),
            started_at: Some((self.started_at * 1000.0).round() / 1000.0),
            time_limit: Some(self.invocation.time_limit_secs()),
            deadline: self.deadline().map(|deadline| deadline.as_secs()),
            lease: self.lease.map(|lease| lease.as_secs()),
            module: Some(self.invocation.module_path.to_string_lossy().into_owned()),
            kill_grace: Some(self.grace.as_secs_f64()),
            supervisor: ProcessStamp::current(),
            module_process,
            wrapper: None,
            no_log: Some(self.no_log),
            tail: self.tail.clone().filter(|_| !self.no_log),
        }
    }

    /// The deadline and the lease as the `invoked` log line has them.
    fn limits_for_log(&self) -> String {
        let mut text = String::new();
        if let Some(deadline) = self.deadline() {
            let values: [(&str, &dyn std::fmt::Display); 2] =
                [("deadline", &deadline.as_secs()), ("rule", &self.limit_rule.name())];
            text += &fill(rules::LOG_INVOKED_DEADLINE, &values);
        }
        if let Some(lease) = self.lease {
            text += &fill(rules::LOG_INVOKED_LEASE, &[("lease", &lease.as_secs())]);
        }
        text
    }

    /// How long after the module's start the time limit ends the job; `None`: no limit.
    fn deadline(&self) -> Option<Duration> {
        self.limit_rule.deadline(self.invocation.time_limit_secs())
    }

    /// Records an event in the job's log and in syslog, as the stock wrapper does.
    pub fn event(&self, event: &str) {
        self.dir.log(&self.id, event);
        syslog::notice(&format!("{} {event}", self.id));
    }

    /// Starts the module; `Err` is a finished job's failed result (the module never ran).
    pub(crate) fn start_module(&self) -> Result<Module, Value> {
        block(&HANDLED);
        // Descendants the module leaves behind are reparented to us and reaped, not left
        // as zombies to a PID 1 that may never reap them.
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer argument.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let capture =
            Capture::new(&self.dir).map_err(|e| self.failure(fill(rules::NOT_CAPTURED, &[("error", &e)])))?;
        let command = self.invocation.command().map_err(|e| self.os_failure(&e))?;
        let (program, args) =
            command.split_first().ok_or_else(|| self.failure(rules::EMPTY_COMMAND.into()))?;
        let mut command = Command::new(program);
        // SAFETY: only async-signal-safe calls between fork and exec. The module must start
        // with no blocked or ignored signals; std leaves the mask as the parent has it.
        unsafe {
            command.pre_exec(|| {
                let empty = SigSet::empty();
                nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&empty), None)?;
                // Every disposition back to the default: a wrapper started with signals
                // ignored (nohup, a CI runner's background shell) must not pass that on.
                // signal(2) is async-signal-safe; the ones that cannot be set fail harmlessly.
                for signal in 1..=64 {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            })
        };
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(capture.stdout.try_clone().map_err(|e| self.os_failure(&e))?)
            .stderr(capture.stderr.try_clone().map_err(|e| self.os_failure(&e))?)
            // A group of its own, so ending the job ends the module's children too.
            .process_group(0)
            .spawn()
            .map_err(|e| self.spawn_failure(program, &e))?;
        let pid = child.id();
        self.dir.log(&self.id, &fill(rules::LOG_STARTED, &[("pid", &pid)]));
        Ok(Module { pid: Pid::from_raw(pid as i32), started: Instant::now(), capture })
    }

    /// Waits for the module, ends it at the time limit or when the supervisor is told to
    /// stop, and returns the job's result.
    pub(crate) fn supervise(&self, module: Module) -> Value {
        let pid = module.pid.as_raw();
        let deadline = self.deadline().map(|deadline| module.started + deadline);
        // The supervisor's own writes of the job file are not calls.
        let mut lease = self.lease.map(|length| Lease {
            dir: &self.dir,
            id: &self.id,
            length,
            renewed: module.started,
            seen: self.dir.last_renewal(&self.id),
            last_call: None,
        });
        match wait(module.pid, deadline, lease.as_mut()) {
            Outcome::Exited(status) => {
                self.event(&match status {
                    WaitStatus::Exited(_, code) => fill(rules::LOG_EXITED, &[("code", &code)]),
                    WaitStatus::Signaled(_, signal, _) => fill(rules::LOG_KILLED, &[("signal", &signal)]),
                    _ => rules::LOG_ENDED_OTHERWISE.to_string(),
                });
                self.result_of_exit(status, module.capture)
            }
            Outcome::TimedOut => {
                let limit = self.invocation.time_limit_secs();
                self.event(&fill(
                    rules::LOG_TIMEOUT,
                    &[("time_limit", &limit), ("rule", &self.limit_rule.name())],
                ));
                self.end(module.pid);
                TimedOut::new(pid.into(), module.started.elapsed(), limit).to_value()
            }
            Outcome::LeaseExpired(last_call) => {
                let lease = self.lease.unwrap_or_default().as_secs();
                let last_call =
                    last_call.and_then(|at| at.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64());
                let last = last_call.map_or("none".to_string(), async_core::clock::utc_timestamp);
                self.event(&fill(rules::LOG_LEASE_EXPIRED, &[("lease", &lease), ("last", &last)]));
                self.end(module.pid);
                Expired::new(&self.id, pid.into(), lease, last_call).to_value()
            }
            Outcome::Stopped(signal) => {
                let msg = if signal == TERMINATE {
                    self.event(rules::LOG_TERMINATE);
                    rules::TERMINATED_ON_REQUEST.to_string()
                } else {
                    self.event(&fill(rules::LOG_STOPPED, &[("signal", &signal)]));
                    fill(rules::STOPPED_BY_SIGNAL, &[("signal", &signal)])
                };
                self.end(module.pid);
                Terminated::new(&self.id, pid.into(), msg).to_value()
            }
        }
    }

    fn end(&self, module: Pid) {
        let killed = end_group(module, self.grace);
        let signal = if killed { Signal::SIGKILL } else { Signal::SIGTERM };
        self.event(&fill(rules::LOG_ENDED, &[("signal", &signal)]));
    }

    /// Removes the finished jobs of the async dir older than `ASYNC_WRAPPER_RETAIN`, when
    /// the task sets it (best effort: the job runs whatever happens here).
    pub fn retain(&self) {
        let Some(age) = self.retain else { return };
        match async_core::retain::collect(&self.dir, age, false) {
            Ok(done) => self.dir.log(
                &self.id,
                &fill(rules::LOG_RETAIN, &[("age", &age.as_secs()), ("removed", &done.removed.len())]),
            ),
            Err(e) => self
                .dir
                .log(&self.id, &fill(rules::LOG_RETAIN_FAILED, &[("age", &age.as_secs()), ("error", &e)])),
        }
    }

    /// The job's result once its module ran: written to the job file, or, when it holds
    /// secrets (see [`async_core::held`]), held in this process's memory and answered over
    /// a socket until the job is cleaned up. Where the socket cannot be made, or the task
    /// opted out (`ASYNC_WRAPPER_SECRETS=disk`), it is written, and the log says so.
    pub fn deliver(&self, result: Value) {
        let Some(reason) = held::secrets_reason(self.hold_no_log, self.secret_args, &result) else {
            return self.write_result(&result);
        };
        let on_disk = |why: &dyn std::fmt::Display| {
            self.dir.log(&self.id, &fill(rules::LOG_SECRETS_ON_DISK, &[("reason", &reason), ("why", why)]));
        };
        if self.secrets_to_disk {
            on_disk(&format_args!("{}={}", rules::SECRETS_ENV, rules::SECRETS_DISK));
            return self.write_result(&result);
        }
        let holder = match held::Holder::bind(&self.dir) {
            Ok(holder) => holder,
            Err(e) => {
                on_disk(&format_args!("no socket: {e}"));
                return self.write_result(&result);
            }
        };
        let Some(supervisor) = ProcessStamp::current() else {
            on_disk(&"no process stamp");
            drop(holder);
            return self.write_result(&result);
        };
        let state = result.as_object().map_or(JobState::Failed, JobState::of_result);
        let info = held::HeldInfo {
            supervisor,
            socket: holder.name.clone(),
            state: state.to_string(),
            reason: reason.into(),
            since: (async_core::clock::now() * 1000.0).round() / 1000.0,
        };
        let text = async_core::json::to_string(&result).into_bytes();
        drop(result);
        // No core dump of this process from here on, and no reading its memory but by root.
        // SAFETY: prctl with PR_SET_DUMPABLE takes a plain integer argument.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        self.remove_tmp();
        self.event(&fill(
            rules::LOG_RESULT_HELD,
            &[("state", &state), ("socket", &holder.name), ("reason", &reason)],
        ));
        if let Err(e) = self.dir.write(&self.id, &held::Held::new(&self.id, info).to_value()) {
            let _ = self.dir.write(&self.id, &Unwritten::new(&self.id, e).to_value());
            return;
        }
        // Orphans the module left are the kernel's to reap while we wait.
        // SAFETY: plain integer arguments; SIG_IGN for SIGCHLD makes children reap themselves.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        }
        // The signals that end a supervisor (still blocked) end the holding: through a
        // signalfd, so that the socket is removed on the way out; the result goes with us.
        let stops: SigSet = HANDLED.into_iter().filter(|&s| s != Signal::SIGCHLD).collect();
        // SAFETY: a valid signal set; the descriptor returned is ours alone.
        let stop = unsafe { libc::signalfd(-1, stops.as_ref(), libc::SFD_CLOEXEC) };
        // SAFETY: a descriptor signalfd just returned, owned here.
        let stop = (stop >= 0).then(|| unsafe { OwnedFd::from_raw_fd(stop) });
        if stop.is_none() {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        }
        holder.serve(&self.id, text, stop.as_ref().map(|fd| fd.as_fd()));
    }

    fn remove_tmp(&self) {
        if let Some(tmp) = self.invocation.tmp_dir_to_remove() {
            let is_real_dir = std::fs::symlink_metadata(tmp).is_ok_and(|m| m.is_dir());
            if is_real_dir && std::fs::remove_dir_all(tmp).is_ok() {
                self.event(&fill(rules::LOG_TMP_REMOVED, &[("dir", &tmp.display())]));
            }
        }
    }

    /// Removes ansible's tmp dir when that is ours to do, then writes the job's result.
    /// Everything the log says comes first: once the result is there, ansible may clean up
    /// the job file and its log at any moment, and a later line would leave a stray log.
    pub fn write_result(&self, result: &Value) {
        self.remove_tmp();
        let state = result.as_object().map_or(JobState::Failed, JobState::of_result);
        self.event(&fill(rules::LOG_RESULT, &[("state", &state)]));
        if let Err(e) = self.dir.write(&self.id, result) {
            self.event(&fill(rules::LOG_NOT_WRITTEN, &[("error", &e)]));
            // Most likely a full disk or a size limit: a short failure may still fit, and
            // the "running" file stays whole if not.
            let _ = self.dir.write(&self.id, &Unwritten::new(&self.id, e).to_value());
        }
    }

    /// The job's result once the module exited by itself: its JSON result, or a
    /// [`NoResult`] that says why there is none.
    fn result_of_exit(&self, status: WaitStatus, mut capture: Capture) -> Value {
        let (stdout, stderr) = match capture.read() {
            Ok(output) => output,
            Err(e) => return self.failure(fill(rules::NOT_READ, &[("error", &e)])),
        };
        match output::module_result(&stdout, &stderr, self.invocation.protocol.junk()) {
            Ok(result) => Value::Object(result),
            Err(output::NotJson(why)) => {
                let mut msg = fill(rules::NO_JSON_RESULT, &[("why", &why)]);
                match status {
                    WaitStatus::Signaled(_, signal, _) => msg.push_str(&fill(
                        rules::NO_JSON_KILLED,
                        &[("number", &(signal as i32)), ("signal", &signal)],
                    )),
                    WaitStatus::Exited(_, code) if code != 0 => {
                        msg.push_str(&fill(rules::NO_JSON_EXITED, &[("code", &code)]))
                    }
                    _ => {}
                }
                let result = NoResult {
                    data: async_core::json::decode(&stdout),
                    stderr: async_core::json::decode(&stderr),
                    ..NoResult::new(&self.id, self.invocation.display_command(), msg)
                };
                result.to_value()
            }
        }
    }

    fn failure(&self, msg: String) -> Value {
        NoResult::new(&self.id, self.invocation.display_command(), msg).to_value()
    }

    /// The text Python gives an `OSError`, which is what ansible-core reports.
    fn os_failure(&self, e: &io::Error) -> Value {
        match e.raw_os_error() {
            Some(errno) => {
                self.failure(fill(rules::OS_ERROR, &[("errno", &errno), ("error", &strerror(errno))]))
            }
            None => self.failure(e.to_string()),
        }
    }

    fn spawn_failure(&self, program: &OsString, e: &io::Error) -> Value {
        match e.raw_os_error() {
            Some(errno) => {
                let values: [(&str, &dyn std::fmt::Display); 3] =
                    [("errno", &errno), ("error", &strerror(errno)), ("program", &program.to_string_lossy())];
                self.failure(fill(rules::NOT_RUN, &values))
            }
            None => self.failure(format!("could not start '{}': {e}", program.to_string_lossy())),
        }
    }
}

impl Capture {
    fn new(dir: &JobDir) -> io::Result<Capture> {
        Ok(Capture { stdout: tempfile::tempfile_in(dir.path())?, stderr: tempfile::tempfile_in(dir.path())? })
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

/// Blocks `signals` and SIGXFSZ (so that a result write over a size limit fails with
/// EFBIG instead of killing the supervisor). The module gets an empty mask back.
fn block(signals: &[Signal]) {
    let mut set: SigSet = signals.iter().copied().collect();
    set.add(Signal::SIGXFSZ);
    // Cannot fail with a valid set.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Reaps every child that has exited (the module and any orphans reparented to us);
/// returns the module's status once it is among them.
fn reap(module: Pid) -> Option<WaitStatus> {
    let mut module_status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return module_status,
            Ok(status) if status.pid() == Some(module) => module_status = Some(status),
            Ok(_) => {}
        }
    }
}

/// Waits for the module to exit, for the deadline (none: no time limit), for the lease to
/// run out, or for a stop signal, whichever first.
fn wait(module: Pid, deadline: Option<Instant>, mut lease: Option<&mut Lease>) -> Outcome {
    let set: SigSet = HANDLED.into_iter().collect();
    loop {
        // SIGCHLD may have come before we got here, or for another child: ask first.
        if let Some(status) = reap(module) {
            return Outcome::Exited(status);
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| deadline <= now) {
            return Outcome::TimedOut;
        }
        if let Some(lease) = lease.as_deref_mut() {
            if lease.expiry() <= now && lease.run_out() {
                return Outcome::LeaseExpired(lease.last_call);
            }
        }
        let wake = deadline.into_iter().chain(lease.as_deref().map(Lease::expiry)).min();
        let left = wake.map(|wake| wake.saturating_duration_since(now));
        match sigtimedwait(&set, left) {
            Some(Signal::SIGCHLD) | None => continue,
            Some(signal) => return Outcome::Stopped(signal),
        }
    }
}

/// Waits up to `timeout` (none: for as long as it takes) for one of `set`; `None` on
/// timeout or interruption.
fn sigtimedwait(set: &SigSet, timeout: Option<Duration>) -> Option<Signal> {
    let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
    let signal = match timeout {
        Some(timeout) => {
            let timeout = libc::timespec {
                tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: the set, siginfo and timespec pointers are valid for the call.
            unsafe { libc::sigtimedwait(set.as_ref(), info.as_mut_ptr(), &timeout) }
        }
        // SAFETY: the set and siginfo pointers are valid for the call.
        None => unsafe { libc::sigwaitinfo(set.as_ref(), info.as_mut_ptr()) },
    };
    Signal::try_from(signal).ok()
}

/// Ends the module's process group as [`control::end_group`] says; returns once the module
/// is reaped and the group is empty. `true` when SIGKILL was needed.
fn end_group(module: Pid, grace: Duration) -> bool {
    let mut reaped = false;
    let killed = control::end_group(module, grace, || {
        reaped |= reap(module).is_some();
        reaped && control::group_gone(module)
    });
    if !killed {
        return false;
    }
    if !reaped {
        let _ = waitpid(module, None);
    }
    // Killed members are reparented to us as the subreaper; reap them so the group empties.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !control::group_gone(module) && Instant::now() < deadline {
        reap(module);
        std::thread::sleep(control::GRACE_CHECK);
    }
    true
}

fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std says "No such file or directory (os error 2)"; Python says it without the suffix.
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
