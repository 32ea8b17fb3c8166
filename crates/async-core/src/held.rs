//! Results that hold secrets, kept in their supervisor's memory instead of on disk.
//!
//! When a job's module was called `no_log` (`_ansible_no_log`), or its result lists
//! `_ansible_new_secrets` (ansible-core 2.22 keeps a `no_log` option's real value in the
//! result and lists it there), the supervisor does not write the result to the job file. It
//! writes a [`Held`] record instead (no `started` key, so every reader that does not know it
//! reports a finished, failed job that says why), and stays alive with the result in memory,
//! answering on a Unix socket in the async dir (a name starting with `.`: never a job) until
//! the job is cleaned up or the supervisor is signalled.
//!
//! The protocol on the socket: one request, `get` or `release`, then the answer and the end
//! of the connection. `get` answers the result as the job file would have held it;
//! `release` answers `released` and the supervisor exits. Each side checks the other's
//! credentials (`SO_PEERCRED`): the same user only; the client also checks the pid is the
//! recorded supervisor's. The async dir is `0700`, so no other user reaches the socket anyway.
//!
//! A held job's supervisor also exits when its job file is removed or replaced by anyone (a
//! cleanup by ansible's own `async_status`, an older release, a person): it looks every
//! [`CHECK_EVERY`], and at once on every connection.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::record::Record;
use crate::rules::{self, fill};
use crate::{JobDir, JobFile, JobId, JobState, ProcessStamp};

/// The key of a held job file that says it is one.
pub const KEY: &str = "held";
/// Socket names: this prefix and the supervisor's pid (unique among live processes).
pub const SOCKET_PREFIX: &str = ".held-";
/// How often a held job's supervisor checks that its job file is still there.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);
/// How long either side waits for the other on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request (`release`).
const MAX_REQUEST: u64 = 16;

/// What a held job file records of the result: enough to find it and to see what happened,
/// none of its values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldInfo {
    /// The supervisor holding the result.
    pub supervisor: ProcessStamp,
    /// The socket's name in the async dir.
    pub socket: String,
    /// The job's state, as the result says ([`JobState::of_result`]).
    pub state: String,
    /// Why it is held: `no_log` (the task's), `secret_args` (the module's arguments hold
    /// secrets the controller knows) or `new_secrets` (the result lists secrets).
    pub reason: String,
    /// When the job ended, seconds since the epoch.
    pub since: f64,
}

/// The job file of a job whose result is held: a finished, failed job to every reader that
/// does not know it, with a message that says why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Held {
    pub failed: bool,
    pub held: HeldInfo,
    pub msg: String,
    pub ansible_job_id: String,
}

impl Record for Held {}

impl Held {
    pub fn new(id: &JobId, held: HeldInfo) -> Held {
        Held { failed: true, held, msg: rules::HELD_MSG.into(), ansible_job_id: id.to_string() }
    }

    /// The held record of a job file, when it is one (no `started`, a `held` object with a
    /// supervisor and a socket name that is one of ours).
    pub fn of(job: &Map<String, Value>) -> Option<HeldInfo> {
        if job.contains_key(rules::RUNNING_KEY) {
            return None;
        }
        let held = job.get(KEY)?.as_object()?;
        let socket = held.get("socket")?.as_str()?;
        if !socket.starts_with(SOCKET_PREFIX) || socket.contains('/') {
            return None;
        }
        Some(HeldInfo {
            supervisor: ProcessStamp::from_value(held.get("supervisor")?)?,
            socket: socket.to_string(),
            state: held.get("state").and_then(Value::as_str).unwrap_or("finished").to_string(),
            reason: held.get("reason").and_then(Value::as_str).unwrap_or_default().to_string(),
            since: held.get("since").and_then(Value::as_f64).unwrap_or_default(),
        })
    }
}

/// Why a result must not reach the disk, if it must not: the task's `no_log`, else secrets
/// the controller knows among the module's arguments (`secret_args`), else a non-empty
/// `_ansible_new_secrets` in the result.
pub fn secrets_reason(no_log: bool, secret_args: bool, result: &Value) -> Option<&'static str> {
    let listed = result.get("_ansible_new_secrets").is_some_and(|secrets| match secrets {
        Value::Array(list) => !list.is_empty(),
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
    if no_log {
        Some("no_log")
    } else if secret_args {
        Some("secret_args")
    } else if listed {
        Some("new_secrets")
    } else {
        None
    }
}

/// The msg of a held job whose supervisor is gone: its result went with it.
pub fn lost_msg(pid: u32) -> String {
    fill(rules::HELD_LOST, &[("pid", &pid)])
}

/// The path to reach `name` in `dir` by: the path itself when a socket address can hold it
/// (108 bytes), else through `/proc/self/fd/N/` of `dir_fd`, an open descriptor of the dir.
fn socket_path(dir: &Path, name: &str, dir_fd: &File) -> PathBuf {
    let full = dir.join(name);
    if full.as_os_str().len() < 100 {
        full
    } else {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd()))
    }
}

/// The uid and pid of the other end of `socket`.
fn peer(socket: &impl AsRawFd) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for the call and len is cred's size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.pid as u32))
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The listening end: a held job's supervisor.
pub struct Holder {
    listener: UnixListener,
    dir: JobDir,
    dir_fd: File,
    /// The socket's name in the async dir.
    pub name: String,
}

impl Holder {
    /// Makes the socket `.held-<pid>` in `dir` (a stale one of that name, left by a killed
    /// supervisor of an earlier boot, is replaced).
    pub fn bind(dir: &JobDir) -> io::Result<Holder> {
        let dir_fd = File::open(dir.path())?;
        let name = format!("{SOCKET_PREFIX}{}", std::process::id());
        let path = socket_path(dir.path(), &name, &dir_fd);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(Holder { listener, dir: dir.clone(), dir_fd, name })
    }

    /// Answers requests for `result` (the job file's text it stands for) until it is
    /// released, job `id`'s file is no longer the held file of this process, or `stop` (a
    /// signalfd of the signals that end the supervisor) is readable. The result's bytes are
    /// overwritten before they are freed, and the socket removed.
    pub fn serve(self, id: &JobId, mut result: Vec<u8>, stop: Option<BorrowedFd>) {
        lock(&result);
        loop {
            if !self.still_held(id) {
                break;
            }
            let mut fds = [
                libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: stop.map_or(-1, |fd| fd.as_raw_fd()), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two valid pollfds (a negative fd is ignored).
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, CHECK_EVERY.as_millis() as libc::c_int) };
            if ready <= 0 {
                continue;
            }
            if fds[1].revents != 0 {
                break;
            }
            let Ok((stream, _)) = self.listener.accept() else { continue };
            if !self.still_held(id) {
                break;
            }
            if self.answer(stream, &result) == Some(Request::Release) {
                break;
            }
        }
        let path = socket_path(self.dir.path(), &self.name, &self.dir_fd);
        let _ = std::fs::remove_file(path);
        for byte in result.iter_mut() {
            // SAFETY: a valid, aligned byte of the vector.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
        result.clear();
    }

    /// Whether job `id`'s file is still the held file of this process (its whole stamp).
    fn still_held(&self, id: &JobId) -> bool {
        match self.dir.read(id) {
            Ok(JobFile::Object(job)) => {
                Held::of(&job).is_some_and(|h| Some(h.supervisor) == ProcessStamp::current())
            }
            _ => false,
        }
    }

    fn answer(&self, mut stream: UnixStream, result: &[u8]) -> Option<Request> {
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let (uid, _) = peer(&stream).ok()?;
        if uid != euid() {
            return None;
        }
        let mut request = Vec::new();
        (&mut stream).take(MAX_REQUEST).read_to_end(&mut request).ok()?;
        match request.trim_ascii() {
            b"get" => {
                let _ = stream.write_all(result);
                Some(Request::Get)
            }
            b"release" => {
                let _ = stream.write_all(b"released\n");
                Some(Request::Release)
            }
            _ => None,
        }
    }
}

#[derive(PartialEq)]
enum Request {
    Get,
    Release,
}

/// Keeps `data` out of swap where the host lets us (best effort: a small memlock limit
/// refuses a large result, which then stays in ordinary memory).
fn lock(data: &[u8]) {
    if !data.is_empty() {
        // SAFETY: the range is the vector's own memory.
        unsafe { libc::mlock(data.as_ptr().cast(), data.len()) };
    }
}

/// Asks the supervisor of `held` in `dir` for `request`; its answer.
fn ask(dir: &JobDir, held: &HeldInfo, request: &str) -> io::Result<Vec<u8>> {
    let dir_fd = File::open(dir.path())?;
    let mut stream = UnixStream::connect(socket_path(dir.path(), &held.socket, &dir_fd))?;
    let (uid, pid) = peer(&stream)?;
    if uid != euid() || pid != held.supervisor.pid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the socket {} is not the job's supervisor's (uid {uid}, pid {pid})", held.socket),
        ));
    }
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// The held result of a job, from its supervisor.
pub fn fetch(dir: &JobDir, held: &HeldInfo) -> io::Result<Map<String, Value>> {
    let answer = ask(dir, held, "get")?;
    match crate::json::parse_slice(&answer) {
        Ok(Value::Object(result)) => Ok(result),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "the supervisor's answer is not a JSON object")),
    }
}

/// Tells the supervisor of `held` to let its result go and exit (best effort), and removes
/// its socket if it is left (a supervisor that was killed).
pub fn release(dir: &JobDir, held: &HeldInfo) {
    if held.supervisor.is_alive() {
        let _ = ask(dir, held, "release");
    }
    if let Ok(dir_fd) = File::open(dir.path()) {
        let path = socket_path(dir.path(), &held.socket, &dir_fd);
        let is_socket = std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        });
        if is_socket && !held.supervisor.is_alive() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The state a held job stands for: its result's, while its supervisor holds it; lost once
/// the supervisor is gone.
pub fn state(held: &HeldInfo) -> JobState {
    if !held.supervisor.is_alive() {
        return JobState::Lost;
    }
    JobState::from_name(&held.state).unwrap_or(JobState::Finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> (tempfile::TempDir, JobDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().to_path_buf());
        (tmp, dir)
    }

    #[test]
    fn secrets_are_the_tasks_no_log_or_a_listed_secret() {
        assert_eq!(secrets_reason(true, false, &json!({"rc": 0})), Some("no_log"));
        assert_eq!(secrets_reason(false, true, &json!({"rc": 0})), Some("secret_args"));
        assert_eq!(
            secrets_reason(false, false, &json!({"_ansible_new_secrets": ["pw"]})),
            Some("new_secrets")
        );
        assert_eq!(secrets_reason(false, false, &json!({"_ansible_new_secrets": []})), None);
        assert_eq!(secrets_reason(false, false, &json!({"rc": 0})), None);
    }

    #[test]
    fn a_held_file_is_read_only_with_a_socket_name_of_ours() {
        let me = ProcessStamp::current().unwrap();
        let info = HeldInfo {
            supervisor: me,
            socket: ".held-1".into(),
            state: "failed".into(),
            reason: "no_log".into(),
            since: 5.0,
        };
        let id = JobId::new("j1.1").unwrap();
        let value = Held::new(&id, info.clone()).to_value();
        assert_eq!(Held::of(value.as_object().unwrap()), Some(info));
        assert!(value.get("started").is_none(), "readers that do not know it see a finished job");
        let mut bad = value.clone();
        bad["held"]["socket"] = json!("../x");
        assert_eq!(Held::of(bad.as_object().unwrap()), None);
        let mut running = value;
        running["started"] = json!(true);
        assert_eq!(Held::of(running.as_object().unwrap()), None);
    }

    /// `tests/protocol/jobfiles/samples/held.json` is what [`Held`] writes.
    #[test]
    fn the_held_record_writes_its_sample_exactly() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/protocol/jobfiles/samples/held.json");
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(Value::Object(job)) = crate::json::parse(&text) else { panic!("held.json") };
        let info = Held::of(&job).unwrap();
        let id = JobId::new(job["ansible_job_id"].as_str().unwrap()).unwrap();
        assert_eq!(format!("{}\n", crate::json::to_string(&Held::new(&id, info).to_value())), text);
    }

    #[test]
    fn a_holder_answers_get_until_released_then_removes_its_socket() {
        let (_tmp, dir) = dir();
        let id = JobId::new("j2.2").unwrap();
        let holder = Holder::bind(&dir).unwrap();
        let info = HeldInfo {
            supervisor: ProcessStamp::current().unwrap(),
            socket: holder.name.clone(),
            state: "finished".into(),
            reason: "no_log".into(),
            since: 1.0,
        };
        dir.write(&id, &Held::new(&id, info.clone()).to_value()).unwrap();
        let socket = dir.path().join(&holder.name);
        let server =
            std::thread::spawn(move || holder.serve(&id, br#"{"rc": 0, "secret": "s3"}"#.to_vec(), None));
        let result = fetch(&dir, &info).unwrap();
        assert_eq!(result["secret"], "s3");
        assert_eq!(fetch(&dir, &info).unwrap()["rc"], 0, "asked again, it answers again");
        assert_eq!(ask(&dir, &info, "nonsense").unwrap(), b"");
        release(&dir, &info);
        server.join().unwrap();
        assert!(!socket.exists());
        assert!(fetch(&dir, &info).is_err());
    }

    #[test]
    fn a_holder_whose_job_file_is_gone_lets_go() {
        let (_tmp, dir) = dir();
        let id = JobId::new("j3.3").unwrap();
        let holder = Holder::bind(&dir).unwrap();
        // No held file of ours: it serves nothing and exits at once.
        holder.serve(&id, b"{}".to_vec(), None);
        assert!(!dir.path().join(format!("{SOCKET_PREFIX}{}", std::process::id())).exists());
    }

    #[test]
    fn a_long_dir_is_reached_through_proc() {
        let (tmp, _) = dir();
        let long = tmp.path().join("d".repeat(120));
        std::fs::create_dir(&long).unwrap();
        let dir = JobDir::at(long);
        let holder = Holder::bind(&dir).unwrap();
        assert!(dir.path().join(&holder.name).exists());
    }
}
