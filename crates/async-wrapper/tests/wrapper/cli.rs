//! The wrapper as ansible runs it: real processes, real job files, both protocols.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::host::{is_zombie, s, Host, WRAPPER};
use serde_json::{json, Value};

#[test]
fn legacy_protocol_runs_module_with_args_file_and_reports_its_json() {
    let host = Host::new();
    let args = host.tmp_dir().join("args");
    fs::write(&args, r#"{"x": 1}"#).unwrap();
    let module = host.module(
        "m",
        r#"echo "{\"changed\": true, \"args\": \"$(cat "$1")\"}" | sed 's/"{"x": 1}"/{"x": 1}/'"#,
    );
    let reply = host.start(&["j1", "10", s(&module), s(&args), "-preserve_tmp"]);
    let id = reply["ansible_job_id"].as_str().unwrap();
    assert!(id.starts_with("j1."), "{id}");
    assert_eq!(reply["results_file"], s(&host.async_dir().join(id)));
    assert_eq!(reply["_ansible_suppress_tmpdir_delete"], false);
    assert_eq!(host.result(&reply), json!({"changed": true, "args": {"x": 1}}));
    assert!(host.tmp_dir().exists(), "-preserve_tmp must keep the tmp dir");
}

#[test]
fn command_protocol_runs_the_given_command() {
    let host = Host::new();
    let module = host.module("m", "echo \"{\\\"argv\\\": \\\"$*\\\"}\"");
    let reply = host.start(&["j2", "10", "true", s(&module), "/bin/sh", s(&module), "a b", "c"]);
    assert_eq!(host.result(&reply), json!({"argv": "a b c"}));
}

#[test]
fn running_job_file_then_result_and_private_modes() {
    let host = Host::new();
    let gate = host.root.path().join("gate");
    let module =
        host.module("m", &format!("while [ ! -e {} ]; do sleep 0.01; done; echo '{{\"rc\": 0}}'", s(&gate)));
    let reply = host.start(&["j3", "10", s(&module), "_", "-preserve_tmp"]);
    let path = PathBuf::from(reply["results_file"].as_str().unwrap());
    let running: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(running["started"], true);
    assert_eq!(running["finished"], false);
    assert_eq!(running["ansible_job_id"], reply["ansible_job_id"]);
    assert_eq!(running["time_limit"], 10);
    assert_eq!(running["module"], s(&module));
    assert!(running["started_at"].as_f64().unwrap() > 1.6e9);
    // The supervisor is recorded so that async_status can tell a lost job from a running one.
    let supervisor = running["supervisor"]["pid"].as_u64().unwrap();
    let cmdline = fs::read(format!("/proc/{supervisor}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("async_wrapper"));
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(host.async_dir()).unwrap().permissions().mode() & 0o777, 0o700);
    fs::write(&gate, "").unwrap();
    assert_eq!(host.result(&reply), json!({"rc": 0}));
}

#[test]
fn junk_and_stderr_are_handled_as_upstream() {
    let host = Host::new();
    let module = host.module("m", "echo motd; echo '{\"a\": 1}'; echo bye; echo oops >&2");
    let reply = host.start(&["j4", "10", s(&module), "_"]);
    assert_eq!(
        host.result(&reply),
        json!({"a": 1, "stderr": "oops\n", "warnings": ["Module invocation had junk after the JSON data: bye"]})
    );
}

/// ansible-core up to 2.20 (legacy protocol) warns about blank lines after the JSON too;
/// 2.21 (command protocol) only about lines that are not blank.
#[test]
fn blank_lines_after_the_json_are_junk_in_the_legacy_protocol_only() {
    let host = Host::new();
    let module = host.module("m", "echo '{\"a\": 1}'; echo; echo '  '");
    let legacy = host.start(&["j4", "10", s(&module), "_", "-preserve_tmp"]);
    assert_eq!(
        host.result(&legacy),
        json!({"a": 1, "warnings": ["Module invocation had junk after the JSON data: \n  "]})
    );
    let command = host.start(&["j4", "10", "true", s(&module), "/bin/sh", s(&module)]);
    assert_eq!(host.result(&command), json!({"a": 1}));
}

#[test]
fn module_without_json_is_a_failed_result_with_its_output() {
    let host = Host::new();
    let module = host.module("m", "echo 'Traceback: boom'; echo 'ValueError' >&2; exit 3");
    let reply = host.start(&["j5", "10", s(&module), "_"]);
    let result = host.result(&reply);
    assert_eq!(result["failed"], true);
    assert_eq!(result["data"], "Traceback: boom\n");
    assert_eq!(result["stderr"], "ValueError\n");
    assert_eq!(result["cmd"], s(&module));
    assert_eq!(result["ansible_job_id"], reply["ansible_job_id"]);
    let msg = result["msg"].as_str().unwrap();
    assert!(msg.contains("No start of json char found") && msg.contains("status 3"), "{msg}");
}

#[test]
fn module_that_cannot_start_is_a_failed_result() {
    let host = Host::new();
    let missing = host.tmp_dir().join("missing");
    let reply = host.start(&["j6", "10", "false", s(&missing), s(&missing)]);
    let result = host.result(&reply);
    assert_eq!(result["failed"], true);
    assert_eq!(result["msg"], format!("[Errno 2] No such file or directory: '{}'", s(&missing)));
}

#[test]
fn time_limit_kills_the_whole_process_group() {
    let host = Host::new();
    let pids = host.root.path().join("pids");
    // The module starts a grandchild and both would run for a minute.
    let module = host.module("m", &format!("sleep 60 & echo $! > {}; sleep 60", s(&pids)));
    let started = Instant::now();
    let reply = host.start_with(&["j7", "1", s(&module), "_"], &[("ASYNC_WRAPPER_EXACT_LIMIT", "1")]);
    let result = host.result(&reply);
    assert_eq!(result["msg"], "Timeout exceeded");
    assert_eq!(result["failed"], true);
    assert!(result["child_pid"].as_u64().is_some());
    assert!(started.elapsed() < Duration::from_secs(10));
    let grandchild: i32 = fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{grandchild}")).exists() && !is_zombie(grandchild) {
        assert!(Instant::now() < deadline, "grandchild {grandchild} survived the time limit");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Removed right after the result is written, when not preserved.
    crate::host::wait_for("the ansible tmp dir to go", Duration::from_secs(5), || !host.tmp_dir().exists());
}

#[test]
fn module_gets_an_empty_stdin_and_no_extra_descriptors() {
    let host = Host::new();
    let module = host.module(
        "m",
        "input=$(cat); fds=$(ls /proc/self/fd | tr '\\n' ' '); echo \"{\\\"stdin\\\": \\\"$input\\\", \\\"fds\\\": \\\"$fds\\\"}\"",
    );
    // The wrapper inherits descriptors 7 and 8 from its caller, as from an ssh session.
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "exec 7</dev/null 8>/dev/null; exec \"$0\" \"$@\"",
            WRAPPER,
            "j8",
            "10",
            s(&module),
            "_",
        ])
        .env("ANSIBLE_ASYNC_DIR", host.async_dir())
        .output()
        .unwrap();
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = host.result(&reply);
    assert_eq!(result["stdin"], "");
    // 0, 1, 2 and the one `ls` opens to list the directory.
    let fds: Vec<u32> =
        result["fds"].as_str().unwrap().split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert!(fds.iter().filter(|&&fd| fd > 3).count() == 0, "{fds:?}");
}

#[test]
fn tmp_dir_outside_ansible_tmp_is_never_removed() {
    let host = Host::new();
    let plain = host.root.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let module = plain.join("m");
    fs::write(&module, "#!/bin/sh\necho '{}'\n").unwrap();
    let reply = host.start(&["j9", "10", s(&module), "_"]);
    assert_eq!(reply["_ansible_suppress_tmpdir_delete"], false);
    host.result(&reply);
    assert!(plain.exists());
}

#[test]
fn legacy_protocol_runs_a_non_executable_script_through_its_interpreter() {
    let host = Host::new();
    let module = host.tmp_dir().join("m");
    fs::write(&module, "#!/bin/sh\necho '{\"ok\": true}'\n").unwrap(); // mode 0644
    let reply = host.start(&["j10", "10", s(&module), "_", "-preserve_tmp"]);
    assert_eq!(host.result(&reply), json!({"ok": true}));
}

#[test]
fn bad_command_lines_get_a_failed_reply_and_exit_1() {
    let host = Host::new();
    for (args, msg) in [
        (&["j1", "5", "/m"][..], "usage: async_wrapper"),
        (&["j1", "soon", "/m", "_"][..], "the time limit must be a whole number of seconds"),
        (&["j1", "-5", "/m", "_"][..], "the time limit must be a whole number of seconds"),
        (&["j1", "1e3", "/m", "_"][..], "the time limit must be a whole number of seconds"),
        (&["j1", "315576001", "/m", "_"][..], "the time limit must be a whole number of seconds"),
        (&["j1", "18446744073709551615", "false", "/m", "/m"][..], "the time limit must be a whole"),
        (&["j1", "-1", "true", "/m", "/m"][..], "the time limit must be a whole number of seconds"),
        (&["../x", "5", "/m", "_"][..], "invalid job id"),
    ] {
        let out = host.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reply["failed"], true);
        assert!(reply["msg"].as_str().unwrap().starts_with(msg), "{reply}");
    }
    assert!(!host.async_dir().exists(), "nothing is created for a bad command line");
}

#[test]
fn async_dir_that_cannot_be_created_is_reported() {
    let host = Host::new();
    let file = host.root.path().join("file");
    fs::write(&file, "keep me").unwrap();
    let out = Command::new(WRAPPER)
        .args(["j1", "5", "/m", "_"])
        .env("ANSIBLE_ASYNC_DIR", file.join("async"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = reply["msg"].as_str().unwrap();
    assert!(msg.starts_with(&format!("could not create directory: {}", s(&file.join("async")))), "{msg}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn other_jobs_files_are_left_alone() {
    let host = Host::new();
    fs::create_dir(host.async_dir()).unwrap();
    fs::set_permissions(host.async_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let other = host.async_dir().join("j0.1");
    fs::write(&other, r#"{"rc": 0}"#).unwrap();
    let module = host.module("m", "echo '{}'");
    let reply = host.start(&["j11", "10", s(&module), "_"]);
    host.result(&reply);
    assert_eq!(fs::read_to_string(&other).unwrap(), r#"{"rc": 0}"#);
    // No temp or capture files are left in the async dir: the job file and its log only.
    let mut names: Vec<_> = fs::read_dir(host.async_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let id = reply["ansible_job_id"].as_str().unwrap();
    assert_eq!(names, ["j0.1".to_string(), id.to_string(), format!("{id}.log")]);
}

#[test]
fn module_starts_with_no_blocked_or_ignored_signals() {
    let host = Host::new();
    // Not JSON: the lines come back in the failed result's `data`.
    let module = host.module("m", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status");
    // Started as from `nohup` or a CI runner's background shell: SIGHUP, SIGINT and SIGQUIT
    // ignored, which a child inherits through exec unless someone resets them.
    let mut wrapper = std::process::Command::new(crate::host::WRAPPER);
    wrapper.args(["j12", "10", s(&module), "_"]).env("ANSIBLE_ASYNC_DIR", host.async_dir());
    // SAFETY: only signal(2), async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut wrapper, || {
            for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
                libc::signal(signal, libc::SIG_IGN);
            }
            Ok(())
        })
    };
    let out = wrapper.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = host.result(&reply);
    let masks: Vec<u64> = result["data"]
        .as_str()
        .unwrap()
        .lines()
        .map(|line| u64::from_str_radix(line.split('\t').nth(1).unwrap(), 16).unwrap())
        .collect();
    assert_eq!(masks[0], 0, "blocked signals: {result}");
    // Signals 1 to 31 only: 32 and 33 belong to the C library.
    assert_eq!(masks[1] & 0x7fff_ffff, 0, "ignored signals: {result}");
}

#[test]
fn the_job_log_tells_what_happened() {
    let host = Host::new();
    let module = host.module("m", "echo '{}'; exit 3");
    let reply = host.start(&["j13", "10", s(&module), "_"]);
    host.result(&reply);
    let log = host.async_dir().join(format!("{}.log", reply["ansible_job_id"].as_str().unwrap()));
    // Every line comes before the result: ansible may remove the log once the result is there.
    let text = fs::read_to_string(&log).unwrap();
    let events: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(events, ["invoked", "started", "exited", "tmp_removed", "result"], "{text}");
    assert!(text.ends_with(" result state=finished\n"), "{text}");
    assert!(text.contains(&format!(
        " invoked protocol=legacy time_limit=10 grace=2 deadline=11 limit_rule=stock-halving module={}\n",
        s(&module)
    )));
    assert!(text.contains(" exited status=3\n"), "{text}");
    assert_eq!(fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
}
