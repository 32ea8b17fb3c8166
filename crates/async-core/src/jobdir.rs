use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{expand_user, Error, JobFile, JobId};

/// Where ansible keeps async job files when neither `ANSIBLE_ASYNC_DIR` nor
/// `ansible_async_dir` says otherwise.
pub const DEFAULT_ASYNC_DIR: &str = "~/.ansible_async";

/// The async directory of one user on one host: one job file per job, named by its id.
#[derive(Clone, Debug)]
pub struct JobDir {
    path: PathBuf,
}

impl JobDir {
    /// A job dir at `path`, with a leading `~` expanded.
    pub fn new(path: &str) -> JobDir {
        JobDir {
            path: expand_user(path),
        }
    }

    /// The job dir ansible asks for: `ANSIBLE_ASYNC_DIR`, else `~/.ansible_async`.
    pub fn from_env() -> JobDir {
        match std::env::var("ANSIBLE_ASYNC_DIR") {
            Ok(dir) if !dir.is_empty() => JobDir::new(&dir),
            _ => JobDir::new(DEFAULT_ASYNC_DIR),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn job_path(&self, id: &JobId) -> PathBuf {
        self.path.join(id.as_str())
    }

    /// Creates the directory (and its parents) when missing, private to the user (`0700`),
    /// then checks it is safe to use.
    pub fn create(&self) -> Result<(), Error> {
        if fs::symlink_metadata(&self.path).is_err() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.path)
                .map_err(|source| Error::CreateDir {
                    path: self.path.clone(),
                    source,
                })?;
        }
        self.check()
    }

    /// Whether the directory exists at all (a missing one holds no jobs).
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok()
    }

    /// Refuses a directory another user could tamper with: it must be a real directory
    /// (not a symlink), owned by the running user, and writable by nobody else.
    pub fn check(&self) -> Result<(), Error> {
        let unsafe_dir = |why: String| Error::UnsafeDir {
            path: self.path.clone(),
            why,
        };
        let meta = fs::symlink_metadata(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            return Err(unsafe_dir("it is a symbolic link".into()));
        }
        if !meta.is_dir() {
            return Err(unsafe_dir("it is not a directory".into()));
        }
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(unsafe_dir(format!(
                "it is owned by uid {}, not by the running user (uid {euid})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!(
                "other users can write to it (mode {:04o})",
                meta.mode() & 0o7777
            )));
        }
        Ok(())
    }

    /// Replaces the job file of `id` with `value`, atomically and durably: a reader sees the
    /// old file or the new one, never a part, and a crash right after leaves the new one.
    pub fn write(&self, id: &JobId, value: &Value) -> Result<(), Error> {
        let path = self.job_path(id);
        let io_err = |source| Error::Io {
            path: path.clone(),
            source,
        };
        // Temp files start with '.', which no job id does: they never pass for a job.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{id}."))
            .suffix(".tmp")
            .tempfile_in(&self.path)
            .map_err(io_err)?;
        let mut text = serde_json::to_vec(value).map_err(|e| io_err(io::Error::other(e)))?;
        text.push(b'\n');
        tmp.write_all(&text).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&path).map_err(|e| io_err(e.error))?;
        File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err)
    }

    /// Reads the job file of `id` without following a symlink in its place.
    pub fn read(&self, id: &JobId) -> Result<JobFile, Error> {
        let path = self.job_path(id);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let mut file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(JobFile::Missing),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .map_err(|source| Error::Io { path, source })?;
        Ok(JobFile::parse(&text))
    }

    /// Removes the job file of `id`; `Ok(false)` when there was none.
    pub fn remove(&self, id: &JobId) -> Result<bool, Error> {
        let path = self.job_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn id(s: &str) -> JobId {
        JobId::new(s).unwrap()
    }

    #[test]
    fn creates_a_private_directory_with_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::new(tmp.path().join("a/b/async").to_str().unwrap());
        dir.create().unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        dir.create().unwrap(); // existing is fine
    }

    #[test]
    fn create_failure_says_could_not_create_directory() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("file"), "").unwrap();
        let dir = JobDir::new(tmp.path().join("file/async").to_str().unwrap());
        let msg = dir.create().unwrap_err().to_string();
        assert!(msg.starts_with("could not create directory: "), "{msg}");
        assert!(msg.contains("file/async"), "{msg}");
    }

    #[test]
    fn refuses_symlinked_or_shared_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        symlink(&real, &link).unwrap();
        let msg = JobDir::new(link.to_str().unwrap())
            .create()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("symbolic link"), "{msg}");

        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let msg = JobDir::new(real.to_str().unwrap())
            .check()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("other users can write"), "{msg}");
    }

    #[test]
    fn writes_private_files_atomically_and_reads_them_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::new(tmp.path().to_str().unwrap());
        dir.write(&id("j1.2"), &json!({"started": true, "finished": false}))
            .unwrap();
        dir.write(&id("j1.2"), &json!({"rc": 0})).unwrap();
        let path = dir.job_path(&id("j1.2"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        match dir.read(&id("j1.2")).unwrap() {
            JobFile::Object(map) => assert_eq!(map["rc"], 0),
            other => panic!("{other:?}"),
        }
        // No temp file is left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert!(dir.remove(&id("j1.2")).unwrap());
        assert!(!dir.remove(&id("j1.2")).unwrap());
        assert!(matches!(dir.read(&id("j1.2")).unwrap(), JobFile::Missing));
    }

    #[test]
    fn does_not_follow_a_symlink_in_place_of_a_job_file() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        fs::write(&secret, "{\"secret\": 1}").unwrap();
        let dir_path = tmp.path().join("async");
        fs::create_dir(&dir_path).unwrap();
        symlink(&secret, dir_path.join("j1.1")).unwrap();
        let dir = JobDir::new(dir_path.to_str().unwrap());
        assert!(dir.read(&id("j1.1")).is_err());
        // Writing replaces the link, not its target.
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        assert_eq!(fs::read_to_string(&secret).unwrap(), "{\"secret\": 1}");
    }
}
