//! Faults and hostile conditions: each ends in a clear failed result, and nothing that
//! was already written is lost.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::host::{is_alive, results_file, s, wait_for, Host, WRAPPER};
use serde_json::{json, Value};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn module_killed_by_a_signal() {
    let host = Host::new();
    let module = host.module("m", "echo partial; kill -9 $$");
    let reply = host.start(&["j1", "10", s(&module), "_"]);
    let result = host.result(&reply);
    assert_eq!(result["failed"], true);
    assert_eq!(result["data"], "partial\n");
    let msg = result["msg"].as_str().unwrap();
    assert!(msg.contains("killed by signal 9, SIGKILL"), "{msg}");
}

#[test]
fn output_of_a_hundred_megabytes() {
    let host = Host::new();
    let module =
        host.module("m", "printf '{\"big\": \"'; head -c 100000000 /dev/zero | tr '\\0' a; printf '\"}\\n'");
    let reply = host.start(&["j2", "120", s(&module), "_"]);
    let result = host.result_within(&reply, Duration::from_secs(120));
    assert_eq!(result["big"].as_str().unwrap().len(), 100_000_000);
}

#[test]
fn a_file_size_limit_while_writing_the_result_leaves_a_short_failure() {
    let host = Host::new();
    // 200 kB of JSON under a 100 kB limit: the module's output and the result both hit it.
    let module =
        host.module("m", "printf '{\"big\": \"'; head -c 200000 /dev/zero | tr '\\0' a; printf '\"}\\n'");
    let out = Command::new("prlimit")
        .args(["--fsize=100000", WRAPPER, "j3", "10", s(&module), "_"])
        .env("ANSIBLE_ASYNC_DIR", host.async_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = host.result(&reply);
    assert_eq!(result["failed"], true);
    let msg = result["msg"].as_str().unwrap();
    assert!(msg.starts_with("could not write the module's result: "), "{msg}");
    assert!(msg.contains("File too large"), "{msg}");
}

#[test]
fn a_read_only_async_dir_is_a_failed_reply() {
    if !is_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let host = Host::new();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let async_dir = host.async_dir();
    fs::create_dir(&async_dir).unwrap();
    fs::set_permissions(&async_dir, fs::Permissions::from_mode(0o500)).unwrap();
    nix::unistd::chown(&async_dir, Some(nobody.uid), Some(nobody.gid)).unwrap();
    fs::set_permissions(host.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let module = host.module("m", "echo '{}'");
    let out = Command::new("setpriv")
        .args([&format!("--reuid={}", nobody.uid), &format!("--regid={}", nobody.gid), "--clear-groups"])
        .args([WRAPPER, "j4", "10", s(&module), "_"])
        .env("ANSIBLE_ASYNC_DIR", &async_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["failed"], true);
    let msg = reply["msg"].as_str().unwrap();
    assert!(msg.starts_with("could not write the job file: "), "{msg}");
    assert!(msg.contains("Permission denied"), "{msg}");
}

#[test]
fn a_symlink_in_place_of_the_tmp_dir_is_not_followed() {
    let host = Host::new();
    let real = host.root.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("m"), "#!/bin/sh\necho '{}'\n").unwrap();
    let link = host.root.path().join("ansible-tmp-9-9-9");
    symlink(&real, &link).unwrap();
    let reply = host.start(&["j5", "10", s(&link.join("m")), "_"]);
    assert_eq!(reply["_ansible_suppress_tmpdir_delete"], true);
    assert_eq!(host.result(&reply), json!({}));
    assert!(real.join("m").exists(), "the link's target was emptied");
    assert!(link.exists());
}

#[test]
fn five_hundred_jobs_at_once_and_no_reader_sees_a_partial_file() {
    let host = Host::new();
    fs::create_dir(host.async_dir()).unwrap();
    fs::set_permissions(host.async_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, done) = (host.async_dir(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                for entry in fs::read_dir(&dir).unwrap() {
                    let name = entry.unwrap().file_name();
                    let name_text = name.to_string_lossy();
                    if name_text.starts_with('.') || name_text.ends_with(".log") {
                        continue;
                    }
                    if let Ok(text) = fs::read(dir.join(&name)) {
                        let parsed: Result<Value, _> = serde_json::from_slice(&text);
                        assert!(
                            parsed.is_ok(),
                            "partial job file {name:?}: {:?}",
                            String::from_utf8_lossy(&text)
                        );
                        reads += 1;
                    }
                }
            }
            reads
        })
    };
    let children: Vec<_> = (0..500)
        .map(|n| {
            Command::new(WRAPPER)
                .args(["j6", "60", "false", "/bin/echo", "/bin/echo", &format!("{{\"n\": {n}}}")])
                .env("ANSIBLE_ASYNC_DIR", host.async_dir())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let replies: Vec<Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    for (n, reply) in replies.iter().enumerate() {
        assert_eq!(host.result(reply), json!({"n": n}));
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let names: Vec<PathBuf> = fs::read_dir(host.async_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(names.len(), 1000, "a job file or log missing, or temp files left behind");
}

/// In a pid namespace whose PID 1 never reaps, a process the module leaves behind is
/// reaped by the supervisor instead of lingering as a zombie.
#[test]
fn orphans_of_the_module_do_not_become_zombies_under_a_pid_1_that_never_reaps() {
    if !is_root() {
        eprintln!("skipped: needs root for a pid namespace");
        return;
    }
    let host = Host::new();
    let module = host.module("m", "(sleep 0.1 &); sleep 0.5; echo '{\"ok\": true}'");
    let reply_file = host.root.path().join("reply");
    let script = format!("{WRAPPER} j7 10 {} _ > {}; exec sleep 30", s(&module), s(&reply_file));
    let mut unshare = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--kill-child", "sh", "-c", &script])
        .env("ANSIBLE_ASYNC_DIR", host.async_dir())
        .spawn()
        .unwrap();
    wait_for("the wrapper's reply", Duration::from_secs(10), || {
        fs::read(&reply_file).is_ok_and(|text| serde_json::from_slice::<Value>(&text).is_ok())
    });
    let reply: Value = serde_json::from_slice(&fs::read(&reply_file).unwrap()).unwrap();
    assert_eq!(host.result(&reply), json!({"ok": true}));
    assert!(results_file(&reply).exists());

    let pid1 = children_of(unshare.id())[0];
    // The supervisor writes the result just before it exits: wait until it has.
    wait_for("the supervisor to exit", Duration::from_secs(5), || {
        children_of(pid1).iter().all(|&pid| !is_alive(pid))
    });
    for pid in children_of(pid1) {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // The supervisor's own exit status belongs to whoever adopted it.
        assert!(comm.starts_with("async_wrapper"), "zombie {pid} ({}) left under PID 1", comm.trim());
    }
    unshare.kill().unwrap();
    unshare.wait().unwrap();
}

fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn a_module_that_is_not_executable_is_a_failed_result() {
    let host = Host::new();
    let module = host.tmp_dir().join("m");
    fs::write(&module, "#!/bin/sh\necho '{}'\n").unwrap();
    fs::set_permissions(&module, fs::Permissions::from_mode(0o644)).unwrap();
    // The 2.21 command line runs the given command as it is: no interpreter in front.
    let reply = host.start(&["j8", "10", "false", s(&module), s(&module)]);
    let result = host.result(&reply);
    assert_eq!(result["failed"], true);
    assert_eq!(result["msg"], format!("[Errno 13] Permission denied: '{}'", s(&module)));
    assert_eq!(result["cmd"], s(&module));
}
