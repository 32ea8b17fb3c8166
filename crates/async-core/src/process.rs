//! Telling whether a process recorded in a job file is still the same process.
//!
//! A pid alone is not enough: pids are reused, and after a reboot every pid is new. A
//! [`ProcessStamp`] is a pid plus the process's start time (clock ticks since boot, from
//! `/proc/PID/stat`) plus the boot id of the kernel it ran under.

use std::fs;

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
        Some(ProcessStamp { pid, start_time: start_time(pid)?, boot_id: boot_id()? })
    }

    /// The stamp of the calling process.
    pub fn current() -> Option<ProcessStamp> {
        ProcessStamp::of(std::process::id())
    }

    /// Whether the process this stamp was taken of still runs (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        match ProcessStamp::of(self.pid) {
            Some(now) => now == *self && !is_zombie(self.pid),
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

/// The fields of `/proc/PID/stat` after the command name, which may itself hold spaces
/// and parentheses; the first returned field is the state (field 3 in proc(5)).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    // `/proc/./PID`: qemu-user (an aarch64 host emulated on x86_64, a container of another
    // architecture) answers reads of `/proc/self/stat` and `/proc/<own pid>/stat` itself, with
    // a start time a tick off the kernel's; a stamp taken of ourselves would then never match
    // the one another process reads. The kernel's own file is the same on real hardware.
    let stat = fs::read_to_string(format!("/proc/./{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

fn start_time(pid: u32) -> Option<u64> {
    // Field 22 of proc(5), counted from field 3.
    stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).and_then(|f| f.first().cloned()).is_some_and(|state| state == "Z" || state == "X")
}

fn boot_id() -> Option<String> {
    Some(fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?.trim().to_string())
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
    fn an_exited_process_is_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let stamp = ProcessStamp::of(child.id());
        child.wait().unwrap();
        if let Some(stamp) = stamp {
            assert!(!stamp.is_alive());
        }
    }
}
