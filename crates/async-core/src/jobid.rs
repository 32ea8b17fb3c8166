use std::fmt;

use crate::rules::{self, JOB_ID_MAX_LEN};
use crate::Error;

/// The name of one job: ansible's `JID` plus `.PID` of the wrapper, e.g. `j123456789.4242`.
///
/// It becomes a file name in the job directory, so only a plain name is accepted: ASCII
/// letters, digits, `.`, `_` and `-`, not starting with `.` (no hidden or temp files, no
/// `..`), at most 128 bytes. Anything else is refused before any file is touched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    pub fn new(id: &str) -> Result<JobId, Error> {
        let bad = |why: &str| Err(Error::InvalidJobId { id: id.to_string(), why: why.to_string() });
        if id.is_empty() {
            return bad(rules::JOB_ID_EMPTY);
        }
        if id.len() > JOB_ID_MAX_LEN {
            return bad(&rules::fill(rules::JOB_ID_TOO_LONG, &[("max", &rules::JOB_ID_MAX_LEN)]));
        }
        if id.starts_with('.') {
            return bad(rules::JOB_ID_HIDDEN);
        }
        if id.contains('/') {
            return bad(rules::JOB_ID_SLASH);
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return bad(rules::JOB_ID_CHARS);
        }
        Ok(JobId(id.to_string()))
    }

    /// The id of the job a wrapper with process id `pid` starts for ansible's `jid`.
    pub fn for_wrapper(jid: &str, pid: u32) -> Result<JobId, Error> {
        JobId::new(&format!("{jid}.{pid}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_ansible_makes() {
        for id in ["j123456789012.4242", "360874038559.4169", "a-b_c.1"] {
            assert_eq!(JobId::new(id).unwrap().as_str(), id);
        }
        assert_eq!(JobId::for_wrapper("j42", 7).unwrap().as_str(), "j42.7");
    }

    #[test]
    fn refuses_ids_that_leave_the_directory_or_hide() {
        for id in ["", "../x", "..", ".", "a/b", "/etc/passwd", ".hidden", "a b", "x\0y", "é"] {
            assert!(JobId::new(id).is_err(), "{id:?} was accepted");
        }
        assert!(JobId::new(&"x".repeat(129)).is_err());
        assert!(JobId::new(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn error_names_the_id() {
        let msg = JobId::new("../x").unwrap_err().to_string();
        assert!(msg.contains("\"../x\""), "{msg}");
    }
}
