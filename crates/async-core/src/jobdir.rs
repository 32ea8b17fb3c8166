use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rules::{self, fill, ASYNC_DIR_ENV, DEFAULT_ASYNC_DIR};
use crate::{expand_user, Error, JobFile, JobId};

/// The async directory of one user on one host: one job file per job, named by its id.
#[derive(Clone, Debug)]
pub struct JobDir {
    path: PathBuf,
}

impl JobDir {
    /// A job dir at `path`, with a leading `~`, `~user`, `$HOME` or `${HOME}` expanded
    /// (see [`crate::user::expand_user`]: the passwd home, not `$HOME`).
    pub fn new(path: &str) -> JobDir {
        JobDir { path: expand_user(path) }
    }

    /// A job dir at `path` exactly as given.
    pub fn at(path: PathBuf) -> JobDir {
        JobDir { path }
    }

    /// The job dir ansible asks for: `ANSIBLE_ASYNC_DIR`, else `~/.ansible_async`.
    pub fn from_env() -> JobDir {
        JobDir::new(&JobDir::env_setting().unwrap_or_else(|| DEFAULT_ASYNC_DIR.into()))
    }

    /// `ANSIBLE_ASYNC_DIR` as set, not expanded; `None` when unset or empty.
    pub fn env_setting() -> Option<String> {
        std::env::var(ASYNC_DIR_ENV).ok().filter(|dir| !dir.is_empty())
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
                .map_err(|source| Error::CreateDir { path: self.path.clone(), source })?;
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
        let unsafe_dir = |why: String| Error::UnsafeDir { path: self.path.clone(), why };
        let meta = fs::symlink_metadata(&self.path)
            .map_err(|source| Error::Io { path: self.path.clone(), source })?;
        if meta.file_type().is_symlink() {
            return Err(unsafe_dir(rules::DIR_SYMLINK.into()));
        }
        if !meta.is_dir() {
            return Err(unsafe_dir(rules::DIR_NOT_A_DIR.into()));
        }
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(unsafe_dir(fill(rules::DIR_NOT_OWNED, &[("uid", &meta.uid()), ("euid", &euid)])));
        }
        if meta.mode() & 0o022 != 0 {
            let mode = format!("{:04o}", meta.mode() & 0o7777);
            return Err(unsafe_dir(fill(rules::DIR_WRITABLE, &[("mode", &mode)])));
        }
        Ok(())
    }

    /// Replaces the job file of `id` with `value`, atomically and durably: a reader sees the
    /// old file or the new one, never a part, and a crash right after leaves the new one.
    pub fn write(&self, id: &JobId, value: &Value) -> Result<(), Error> {
        self.write_unsynced(id, value)?.sync()
    }

    /// Replaces the job file atomically now and durably when [`Written::sync`] is called:
    /// for the first write of a job, which ansible waits on.
    pub fn write_unsynced(&self, id: &JobId, value: &Value) -> Result<Written, Error> {
        let path = self.job_path(id);
        let io_err = |source| Error::Io { path: path.clone(), source };
        // Temp files start with '.', which no job id does: they never pass for a job.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{id}."))
            .suffix(".tmp")
            .tempfile_in(&self.path)
            .map_err(io_err)?;
        let mut text = crate::json::to_string(value).into_bytes();
        text.push(b'\n');
        tmp.write_all(&text).map_err(io_err)?;
        let file = tmp.persist(&path).map_err(|e| io_err(e.error))?;
        Ok(Written { file, path, dir: self.path.clone() })
    }

    /// Reads the job file of `id` without following a symlink in its place.
    pub fn read(&self, id: &JobId) -> Result<JobFile, Error> {
        let path = self.job_path(id);
        let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path);
        let mut file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(JobFile::Missing),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(|source| Error::Io { path, source })?;
        Ok(JobFile::parse(&text))
    }

    /// Removes the job file of `id` and its log; `Ok(false)` when there was no job file. A
    /// held result's supervisor is released first (see [`crate::held`]).
    pub fn remove(&self, id: &JobId) -> Result<bool, Error> {
        if let Ok(JobFile::Object(job)) = self.read(id) {
            if let Some(held) = crate::held::Held::of(&job) {
                crate::held::release(self, &held);
            }
        }
        let path = self.job_path(id);
        let removed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => return Err(Error::Io { path, source }),
        };
        let _ = fs::remove_file(self.log_path(id));
        Ok(removed)
    }

    /// The per-job log beside the job file (see [`crate::log`]).
    pub fn log_path(&self, id: &JobId) -> PathBuf {
        self.path.join(format!("{id}.log"))
    }

    /// Appends an event to the job's log. The log is for people: failing to write it must
    /// not fail the job, so errors are dropped.
    pub fn log(&self, id: &JobId, event: &str) {
        let _ = crate::log::append(&self.log_path(id), event);
    }

    /// The ids of the jobs in the directory, sorted: every regular file named like a job id
    /// (temp files start with '.', logs end with '.log').
    pub fn job_ids(&self) -> Result<Vec<JobId>, Error> {
        let entries =
            fs::read_dir(&self.path).map_err(|source| Error::Io { path: self.path.clone(), source })?;
        let mut ids: Vec<JobId> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.ends_with(".log"))
            .filter_map(|name| JobId::new(&name).ok())
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }
}

/// A job file in place but maybe not yet on disk.
#[must_use = "call sync() to make the write durable"]
pub struct Written {
    file: File,
    path: PathBuf,
    dir: PathBuf,
}

impl Written {
    /// Flushes the file and the directory entry that names it.
    pub fn sync(self) -> Result<(), Error> {
        self.file.sync_all().map_err(|source| Error::Io { path: self.path.clone(), source })?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| Error::Io { path: self.dir, source })
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
        let msg = JobDir::new(link.to_str().unwrap()).create().unwrap_err().to_string();
        assert!(msg.contains("symbolic link"), "{msg}");

        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let msg = JobDir::new(real.to_str().unwrap()).check().unwrap_err().to_string();
        assert!(msg.contains("other users can write"), "{msg}");
    }

    #[test]
    fn writes_private_files_atomically_and_reads_them_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::new(tmp.path().to_str().unwrap());
        dir.write(&id("j1.2"), &json!({"started": true, "finished": false})).unwrap();
        dir.write(&id("j1.2"), &json!({"rc": 0})).unwrap();
        let path = dir.job_path(&id("j1.2"));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        match dir.read(&id("j1.2")).unwrap() {
            JobFile::Object(map) => assert_eq!(map["rc"], 0),
            other => panic!("{other:?}"),
        }
        // No temp file is left behind.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        dir.log(&id("j1.2"), "invoked time_limit=5");
        assert_eq!(dir.job_ids().unwrap(), vec![id("j1.2")]);
        assert!(dir.remove(&id("j1.2")).unwrap());
        assert!(!dir.log_path(&id("j1.2")).exists(), "the log goes with the job file");
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
