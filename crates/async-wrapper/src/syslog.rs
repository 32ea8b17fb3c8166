//! Notices to syslog, as the stock wrapper sends them, so `journalctl` shows async jobs.

use std::ffi::CString;

/// Sends `msg` to syslog as `ansible-async_wrapper[PID]: msg`. The connection is opened and
/// closed around each message: the supervisor closes inherited descriptors, and a syslog
/// socket kept open across that could end up writing into an unrelated file.
pub fn notice(msg: &str) {
    let Ok(msg) = CString::new(msg.replace('\0', " ")) else { return };
    // SAFETY: the ident is a static C string, the format a literal taking one C string.
    unsafe {
        libc::openlog(c"ansible-async_wrapper".as_ptr(), libc::LOG_PID, libc::LOG_USER);
        libc::syslog(libc::LOG_NOTICE, c"%s".as_ptr(), msg.as_ptr());
        libc::closelog();
    }
}
