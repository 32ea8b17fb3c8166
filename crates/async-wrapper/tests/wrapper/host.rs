//! A sandboxed "host" for running the wrapper binary in tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WRAPPER: &str = env!("CARGO_BIN_EXE_async_wrapper");

/// A sandbox: an async dir and an ansible-like tmp dir holding test modules.
pub struct Host {
    pub root: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Host {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("ansible-tmp-1-2-3")).unwrap();
        Host { root }
    }

    pub fn async_dir(&self) -> PathBuf {
        self.root.path().join("async")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.path().join("ansible-tmp-1-2-3")
    }

    /// Writes an executable `#!/bin/sh` module into the tmp dir.
    pub fn module(&self, name: &str, body: &str) -> PathBuf {
        let path = self.tmp_dir().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(WRAPPER).args(args).env("ANSIBLE_ASYNC_DIR", self.async_dir()).output().unwrap()
    }

    /// Runs the wrapper, expects ansible's "started" reply, returns it.
    pub fn start(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "wrapper failed: {out:?}");
        assert!(out.stderr.is_empty(), "wrapper wrote to stderr: {out:?}");
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reply["started"], true);
        assert_eq!(reply["finished"], false);
        assert_eq!(reply["failed"], false);
        reply
    }

    /// Waits (with a deadline) until the job file no longer says "started", returns it.
    pub fn result(&self, reply: &Value) -> Value {
        self.result_within(reply, Duration::from_secs(30))
    }

    pub fn result_within(&self, reply: &Value, limit: Duration) -> Value {
        let path = Path::new(reply["results_file"].as_str().unwrap());
        let deadline = Instant::now() + limit;
        loop {
            let value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
            if value.get("started").is_none() {
                return value;
            }
            assert!(Instant::now() < deadline, "job never finished: {value}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'))
}

impl Host {
    /// Runs the wrapper with extra environment variables and expects it to start a job.
    pub fn start_with(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let out = Command::new(WRAPPER)
            .args(args)
            .env("ANSIBLE_ASYNC_DIR", self.async_dir())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "wrapper failed: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Whether the job file still says "running".
    pub fn marker_if_running(&self, reply: &Value) -> bool {
        let value: Value =
            serde_json::from_slice(&fs::read(results_file(reply)).unwrap()).unwrap_or_default();
        value["started"] == true
    }

    /// The job file while it still says "running".
    pub fn marker(&self, reply: &Value) -> Value {
        let value: Value = serde_json::from_slice(&fs::read(results_file(reply)).unwrap()).unwrap();
        assert_eq!(value["started"], true, "the job is already over: {value}");
        value
    }
}

pub fn results_file(reply: &Value) -> PathBuf {
    PathBuf::from(reply["results_file"].as_str().unwrap())
}

/// Waits for `condition`, failing the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid as i32)
}

/// Seconds since the epoch at which `path` was last written.
pub fn mtime(path: &Path) -> f64 {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}
