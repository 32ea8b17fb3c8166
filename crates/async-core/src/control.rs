//! The supervisor's control contract: how a running job is asked to end, and how its
//! module's process group is ended. async_wrapper's supervisor follows it when a time
//! limit is reached or it is told to stop; `async_job terminate` follows it to ask a
//! supervisor, or to end a lost job's module itself. Keeping it here means the two can
//! never disagree on a signal, a grace period or the shape of the result (a
//! [`crate::record::Terminated`]). The grace period a job starts with is recorded in its
//! running file ([`crate::record::Running::kill_grace`]).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::rules::{self, fill, quote};

/// The signal `async_job terminate` sends a supervisor to ask it to end its job.
pub const TERMINATE: Signal = Signal::SIGUSR1;

/// How long a module's group gets between SIGTERM and SIGKILL, unless [`GRACE_ENV`] says
/// otherwise when the job starts.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(rules::DEFAULT_GRACE_SECS);

/// The environment variable (seconds, decimals allowed, 0 to 3600) that sets a job's grace
/// period when async_wrapper starts it, e.g. through a task's `environment:`.
pub use crate::rules::GRACE_ENV;

/// How often a group is checked for survivors during a grace period.
pub const GRACE_CHECK: Duration = Duration::from_millis(10);

/// The grace period from [`GRACE_ENV`], or the default; `Err` names a bad value.
pub fn grace_from_env() -> Result<Duration, String> {
    match std::env::var(GRACE_ENV) {
        Err(_) => Ok(DEFAULT_GRACE),
        Ok(text) => crate::decimal::parse_f64(text.trim()).and_then(grace_from_secs).ok_or_else(|| {
            fill(
                rules::BAD_GRACE,
                &[("env", &GRACE_ENV), ("max", &rules::MAX_GRACE_SECS), ("value", &quote(&text))],
            )
        }),
    }
}

/// A grace period of `secs` seconds, when that is one: a number from 0 to 3600.
pub fn grace_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..=rules::MAX_GRACE_SECS as f64).contains(&secs))
        .then(|| Duration::from_secs_f64(secs))
}

/// Ends the process group led by `leader`: SIGTERM, up to `grace` for `gone` to say it
/// went, then SIGKILL. `gone` is how the caller knows (a parent reaps; others look).
/// Returns `true` when SIGKILL was needed.
pub fn end_group(leader: Pid, grace: Duration, mut gone: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + grace;
    let _ = killpg(leader, Signal::SIGTERM);
    loop {
        if gone() {
            return false;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(GRACE_CHECK);
    }
    let _ = killpg(leader, Signal::SIGKILL);
    true
}

/// Whether no process is left in the group led by `leader`.
pub fn group_gone(leader: Pid) -> bool {
    matches!(killpg(leader, None), Err(Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_values() {
        let parse = |text: &str| crate::decimal::parse_f64(text.trim()).and_then(grace_from_secs);
        assert_eq!(parse(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse("3600"), Some(Duration::from_secs(3600)));
        for bad in ["", "-1", "3601", "nan", "inf", "soon"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
