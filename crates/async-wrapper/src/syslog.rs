//! Notices to syslog, as the stock wrapper sends them, so `journalctl` shows async jobs.
//!
//! Sent by hand rather than with the C library's `syslog()`, which blocks when the syslog
//! daemon does not keep up: a supervisor must never wait on logging to enforce a time
//! limit. A notice that cannot go at once is dropped; the job's own log has it anyway.

use std::os::unix::net::UnixDatagram;

/// `<user.notice>ansible-async_wrapper[PID]: msg` to `/dev/log`, without waiting.
pub fn notice(msg: &str) {
    const USER_NOTICE: u8 = 8 | 5;
    let Ok(socket) = UnixDatagram::unbound() else { return };
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let line = format!("<{USER_NOTICE}>ansible-async_wrapper[{}]: {msg}", std::process::id());
    let _ = socket.send_to(line.as_bytes(), "/dev/log");
}
