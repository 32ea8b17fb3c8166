//! Telling whether a process recorded in a job file is still the same process.
//!
//! A pid alone is not enough: pids are reused, and after a reboot every pid is new. A
//! [`ProcessStamp`] is a pid plus the process's start time (clock ticks since boot, from
//! `/proc/PID/stat`) plus the boot id of the kernel it ran under.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Recorded in job files as `{"pid", "start_time", "boot_id"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStamp {
    pub pid: u32,
    pub start_time: u64,
    pub boot_id: String,
}

impl ProcessStamp {
    /// The stamp of process `pid` now, if it exists.
    pub fn of(pid: u32) -> Option<ProcessStamp> {
        let (start_time, _) = start_and_state(pid)?;
        Some(ProcessStamp { pid, start_time, boot_id: boot_id()? })
    }

    /// The stamp of the calling process.
    pub fn current() -> Option<ProcessStamp> {
        ProcessStamp::of(std::process::id())
    }

    /// Whether the process this stamp was taken of still runs (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        // One read of its `stat` gives both its start time and whether it is a zombie.
        match start_and_state(self.pid) {
            Some((start_time, state)) => {
                start_time == self.start_time
                    && !matches!(state, b'Z' | b'X')
                    && boot_id().is_some_and(|boot_id| boot_id == self.boot_id)
            }
            None => false,
        }
    }

    /// A stamp as a job file records it; `None` when `value` is not one.
    pub fn from_value(value: &Value) -> Option<ProcessStamp> {
        Some(ProcessStamp {
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
            start_time: value.get("start_time")?.as_u64()?,
            boot_id: value.get("boot_id")?.as_str()?.to_string(),
        })
    }
}

/// The start time (field 22 of proc(5)) and the state letter (field 3) of process `pid`, from
/// its `/proc/PID/stat`, whose command name may itself hold spaces and parentheses.
fn start_and_state(pid: u32) -> Option<(u64, u8)> {
    // `/proc/./PID`: qemu-user (an aarch64 host emulated on x86_64, a container of another
    // architecture) answers reads of `/proc/self/stat` and `/proc/<own pid>/stat` itself, with
    // a start time a tick off the kernel's; a stamp taken of ourselves would then never match
    // the one another process reads. The kernel's own file is the same on real hardware.
    let mut data = [0u8; 2048];
    let stat = read_small(&format!("/proc/./{pid}/stat"), &mut data)?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    Some((fields.nth(22 - 4)?.parse().ok()?, state))
}

fn boot_id() -> Option<String> {
    let mut data = [0u8; 128];
    Some(read_small("/proc/sys/kernel/random/boot_id", &mut data)?.trim().to_string())
}

/// The text of a small file of `/proc` (one that fits in `data`): an `open`, one `read` and a
/// `close` (std's `read_to_string` spends an `fcntl`, an `fstat` and reads of growing sizes,
/// as `/proc` gives its files no size). The kernel gives such a file whole in one read; a
/// text that does not end its line yet is read on.
fn read_small<'a>(path: &str, data: &'a mut [u8]) -> Option<&'a str> {
    let path = std::ffi::CString::new(path).ok()?;
    // SAFETY: `path` ends with a NUL (`openat`: musl's `open` spends a `fcntl` on O_CLOEXEC).
    let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a descriptor `openat` just returned is ours alone; dropping it closes it.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut len = 0;
    // Until the end: a file longer than `data` is refused, not cut.
    while len < data.len() {
        // SAFETY: `data[len..]` is ours and as long as the length given.
        let n = unsafe { libc::read(file.as_raw_fd(), data[len..].as_mut_ptr().cast(), data.len() - len) };
        match usize::try_from(n) {
            Ok(0) => return std::str::from_utf8(&data[..len]).ok(),
            Ok(n) => len += n,
            Err(_) => return None,
        }
        if data[len - 1] == b'\n' {
            return std::str::from_utf8(&data[..len]).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_current_process_is_alive() {
        let me = ProcessStamp::current().unwrap();
        assert!(me.is_alive());
        let json = serde_json::to_value(&me).unwrap();
        assert_eq!(json["pid"], std::process::id());
        assert_eq!(serde_json::from_value::<ProcessStamp>(json.clone()).unwrap(), me);
        assert_eq!(ProcessStamp::from_value(&json), Some(me));
    }

    #[test]
    fn a_reused_pid_or_another_boot_is_not_the_same_process() {
        let me = ProcessStamp::current().unwrap();
        let earlier = ProcessStamp { start_time: me.start_time.saturating_sub(1), ..me.clone() };
        assert!(!earlier.is_alive());
        let other_boot = ProcessStamp { boot_id: "another-boot".into(), ..me };
        assert!(!other_boot.is_alive());
    }

    #[test]
    fn a_zombie_is_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let stamp = ProcessStamp::of(child.id());
        // Not waited for: once it has exited, it is a zombie until `wait`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while start_and_state(child.id()).is_some_and(|(_, state)| state != b'Z') {
            assert!(std::time::Instant::now() < deadline, "never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if let Some(stamp) = stamp {
            assert!(!stamp.is_alive());
        }
        child.wait().unwrap();
    }

    #[test]
    fn an_exited_process_is_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let stamp = ProcessStamp::of(child.id());
        child.wait().unwrap();
        if let Some(stamp) = stamp {
            assert!(!stamp.is_alive());
        }
    }
}
