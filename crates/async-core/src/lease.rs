//! A job's lease: a job started with `ASYNC_WRAPPER_LEASE=L` is ended when nothing asked for
//! it for L seconds, so that a play that was cancelled, killed or cut off does not leave its
//! work running on the host until the time limit.
//!
//! Asking is any `async_status` call on the job (the `poll:` loop, an until-loop) and
//! `async_job` calls on it: each sets the running job file's modification time to now
//! ([`JobDir::renew`]), which costs the caller one `futimens` and no SSH operation. The
//! supervisor does not poll for it: it sleeps until the lease would run out, then looks at
//! that time, and either sleeps again until the renewed lease would, or ends the job.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, SystemTime};

use crate::rules::{self, fill, quote};
use crate::{JobDir, JobId};

/// The environment variable (whole seconds) that gives a job a lease when async_wrapper
/// starts it, e.g. through a play's `environment:`.
pub use crate::rules::{LEASE_ENV, MAX_LEASE};

/// The lease [`LEASE_ENV`] asks for; `None` without the variable, or with `0` or
/// [`rules::LEASE_OFF`] (no lease for this task, whatever the play gives); `Err` names a bad value.
pub fn lease_from_env() -> Result<Option<Duration>, String> {
    match std::env::var(LEASE_ENV) {
        Err(_) => Ok(None),
        Ok(text) => lease_from_text(&text),
    }
}

fn lease_from_text(text: &str) -> Result<Option<Duration>, String> {
    if text.trim().eq_ignore_ascii_case(rules::LEASE_OFF) {
        return Ok(None);
    }
    match text.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(secs) if secs <= MAX_LEASE => Ok(Some(Duration::from_secs(secs))),
        _ => {
            Err(fill(rules::BAD_LEASE, &[("env", &LEASE_ENV), ("max", &MAX_LEASE), ("value", &quote(text))]))
        }
    }
}

impl JobDir {
    /// Renews the lease of running job `id`: its job file's modification time becomes now.
    pub fn renew(&self, id: &JobId) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.job_path(id))?;
        file.set_modified(SystemTime::now())
    }

    /// When job `id`'s file was last written or renewed.
    pub fn last_renewal(&self, id: &JobId) -> Option<SystemTime> {
        std::fs::symlink_metadata(self.job_path(id)).and_then(|m| m.modified()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_a_whole_number_of_seconds_from_one_or_off() {
        assert_eq!(lease_from_text("30"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(lease_from_text(" 5 "), Ok(Some(Duration::from_secs(5))));
        for off in ["0", " 0", "off", "OFF", " Off "] {
            assert_eq!(lease_from_text(off), Ok(None), "{off}");
        }
        for bad in ["-1", "1.5", "", "soon", "no", "315576001"] {
            let e = lease_from_text(bad).unwrap_err();
            assert!(
                e.starts_with(
                    "ASYNC_WRAPPER_LEASE must be a whole number of seconds from 1 to 315576000, or 0 or off for \
                     no lease, got: "
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn renewing_moves_the_job_file_s_time_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().to_path_buf());
        let id = JobId::new("j1.2").unwrap();
        std::fs::write(dir.job_path(&id), "{\"started\": true}").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(dir.job_path(&id)).unwrap().set_modified(old).unwrap();
        assert!(dir.last_renewal(&id).unwrap() <= old);
        dir.renew(&id).unwrap();
        assert!(dir.last_renewal(&id).unwrap() > old + Duration::from_secs(30));
        assert_eq!(std::fs::read_to_string(dir.job_path(&id)).unwrap(), "{\"started\": true}");
        // Never through a symlink.
        std::os::unix::fs::symlink(dir.job_path(&id), tmp.path().join("j1.3")).unwrap();
        assert!(dir.renew(&JobId::new("j1.3").unwrap()).is_err());
    }
}
