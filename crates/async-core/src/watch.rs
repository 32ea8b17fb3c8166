//! Waiting for a job's end without polling: an inotify watch on the async dir. A job's end
//! is the rename of its result over its job file (`IN_MOVED_TO` with the job's name), noticed
//! the moment it happens. A supervisor that dies without a result (a lost job) makes no event,
//! so a waiter also reads its jobs again every [`RECHECK`]; where inotify is not to be had (an
//! old or restricted kernel, no instances left) it reads them every [`SLEEP`]. `async_job`
//! `mode: wait` and `async_status`'s wait for a polled job use it.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::JobDir;

/// How often pending jobs are read again while inotify watches: for lost jobs only.
pub const RECHECK: Duration = Duration::from_secs(1);
/// How often pending jobs are read without inotify: well within 50 ms of a result.
pub const SLEEP: Duration = Duration::from_millis(25);

/// An inotify watch on the async dir.
pub struct Watcher {
    inotify: Inotify,
}

impl Watcher {
    /// `None` when the kernel gives no inotify instance or watch: the caller then sleeps.
    pub fn new(dir: &JobDir) -> Option<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        // A result is renamed over the job file; a stock wrapper's first (empty) file is
        // created; cleanup by someone else deletes it.
        let flags = AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        inotify.add_watch(dir.path(), flags).ok()?;
        Some(Watcher { inotify })
    }

    /// Returns when an event concerns one of the `pending` jobs (or the dir itself), or after
    /// `limit`.
    pub fn wait(&self, pending: &[&str], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let ms =
                PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => return,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                // Polling failed: look at the jobs again after a short sleep, never spin.
                Err(_) => return std::thread::sleep(left.min(SLEEP)),
            }
            match self.inotify.read_events() {
                Ok(events) => {
                    let relevant = events.iter().any(|e| match &e.name {
                        Some(name) => pending.iter().any(|p| OsStr::new(p) == name.as_os_str()),
                        // About the dir itself, or the queue overflowed.
                        None => true,
                    });
                    if relevant {
                        return;
                    }
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                Err(_) => return std::thread::sleep(left.min(SLEEP)),
            }
        }
    }
}
