use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong with job ids and the job directory. The `Display` texts are the
/// `msg` a user sees, so they name the path and say what is wrong in plain words.
#[derive(Debug)]
pub enum Error {
    /// A job id that could escape the job directory or is not a plain name.
    InvalidJobId { id: String, why: &'static str },
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
            Error::InvalidJobId { id, why } => write!(f, "invalid job id {id:?}: {why}"),
            Error::CreateDir { path, source } => {
                write!(f, "could not create directory: {} - {}", path.display(), source)
            }
            Error::UnsafeDir { path, why } => {
                write!(f, "refusing to use async directory {}: {}", path.display(), why)
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
