use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::rules::{self, fill};

/// What can go wrong with job ids and the job directory. The `Display` texts are the
/// `msg` a user sees, so they name the path and say what is wrong in plain words.
#[derive(Debug)]
pub enum Error {
    /// A job id that could escape the job directory or is not a plain name.
    InvalidJobId { id: String, why: String },
    /// The async dir could not be created (message text as ansible-core's).
    CreateDir { path: PathBuf, source: io::Error },
    /// The async dir exists but is not safe to keep job files in.
    UnsafeDir { path: PathBuf, why: String },
    /// Reading or writing a file in the async dir failed.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidJobId { id, why } => {
                f.write_str(&fill(rules::INVALID_JOB_ID, &[("id", &rules::quote(id)), ("why", why)]))
            }
            Error::CreateDir { path, source } => {
                f.write_str(&fill(rules::CREATE_DIR, &[("path", &path.display()), ("error", source)]))
            }
            Error::UnsafeDir { path, why } => {
                f.write_str(&fill(rules::UNSAFE_DIR, &[("path", &path.display()), ("why", why)]))
            }
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::CreateDir { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
