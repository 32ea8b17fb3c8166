//! Ending jobs: at the time limit, on a stop signal, with a grace period; and not ending
//! them late because a background child holds the module's output open.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::host::{is_alive, mtime, results_file, s, wait_for, Host};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const EXACT: (&str, &str) = ("ASYNC_WRAPPER_EXACT_LIMIT", "1");

#[test]
fn the_exact_time_limit_ends_the_job_when_it_is_due_not_seconds_later() {
    let host = Host::new();
    let module = host.module("m", "exec sleep 60");
    let reply = host.start_with(&["j1", "1", s(&module), "_"], &[EXACT]);
    let marker = host.marker(&reply);
    assert_eq!((&marker["time_limit"], &marker["deadline"]), (&json!(1), &json!(1)));
    let started_at = marker["started_at"].as_f64().unwrap();
    let result = host.result(&reply);
    assert_eq!(result["msg"], "Timeout exceeded");
    // A module that goes on SIGTERM is gone at once; the stock wrapper polls every 5 s.
    let late = mtime(&results_file(&reply)) - started_at - 1.0;
    // Generous for a loaded machine; a polling watchdog would be seconds late.
    assert!(late < 1.5, "the job ended {late:.3} s after its limit");
    assert_eq!(result["time_limit"], 1);
    assert!((1.0..2.5).contains(&result["elapsed"].as_f64().unwrap()), "{result}");
}

/// By default a job ends when ansible-core's own wrapper would have said `Timeout exceeded`
/// (its watchdog's steps): for 2.19.14, a limit of 1 s is 2 s.
#[test]
fn by_default_the_job_ends_when_stock_s_job_file_would_say_so() {
    let host = Host::new();
    let module =
        host.module("m", "# ANSIBALLZ_PARAMS = '{\"_ansible_version\": \"2.19.14\"}'\nexec sleep 60");
    let reply = host.start(&["j1", "1", s(&module), "_"]);
    let marker = host.marker(&reply);
    assert_eq!((&marker["time_limit"], &marker["deadline"]), (&json!(1), &json!(2)));
    let started_at = marker["started_at"].as_f64().unwrap();
    let result = host.result(&reply);
    assert_eq!(result["msg"], "Timeout exceeded");
    let ended = mtime(&results_file(&reply)) - started_at;
    assert!((2.0..3.5).contains(&ended), "the job ended {ended:.3} s after its start, not 2 s");
    assert_eq!(result["time_limit"], 1);
    assert!((2.0..3.5).contains(&result["elapsed"].as_f64().unwrap()), "{result}");
    let log = fs::read_to_string(
        host.async_dir().join(format!("{}.log", reply["ansible_job_id"].as_str().unwrap())),
    )
    .unwrap();
    assert!(log.contains(" deadline=2 limit_rule=stock-halving module="), "{log}");
    assert!(log.contains(" timeout time_limit=1 limit_rule=stock-halving\n"), "{log}");
}

/// Which deadline each command line gets, as the table every wrapper is held to
/// (`tests/protocol/deadlines.json`) says: read from the running job file, the job then
/// ended on request.
#[test]
fn the_deadline_follows_the_version_that_started_the_job() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/deadlines.json");
    let table: Value = serde_json::from_str(&fs::read_to_string(table).unwrap()).unwrap();
    let host = Host::new();
    for (n, case) in table["cases"].as_array().unwrap().iter().enumerate() {
        let version = case["version"].as_str().map(|v| format!("\"_ansible_version\": \"{v}\""));
        let in_args = case["version_in"] == "args" || case["version_in"] == "args-words";
        let module = host.module(
            &format!("m{n}"),
            &match (&version, in_args) {
                (Some(v), false) => format!("# ANSIBALLZ_PARAMS = '{{{v}}}'\nexec sleep 60"),
                _ => "exec sleep 60".to_string(),
            },
        );
        let args_file = host.tmp_dir().join(format!("args{n}"));
        let args_text = match (case["version_in"].as_str(), case["version"].as_str()) {
            // As ansible writes an old-style module's arguments.
            (Some("args-words"), Some(v)) => format!("_ansible_check_mode=False _ansible_version={v} "),
            _ => format!("{{{}}}", version.as_deref().filter(|_| in_args).unwrap_or("")),
        };
        fs::write(&args_file, args_text).unwrap();
        let (jid, limit) = (format!("j{n}"), case["limit"].to_string());
        let args_file = if in_args { s(&args_file) } else { "_" };
        // The tmp dir is kept (-preserve_tmp, `true`): every job here runs a module from it.
        let args: Vec<&str> = match case["protocol"].as_str().unwrap() {
            "legacy" => vec![&jid, &limit, s(&module), args_file, "-preserve_tmp"],
            _ if in_args => vec![&jid, &limit, "true", s(&module), "/bin/sh", s(&module), args_file],
            _ => vec![&jid, &limit, "true", s(&module), "/bin/sh", s(&module)],
        };
        let env: Vec<(&str, &str)> =
            case["exact"].as_str().map(|v| ("ASYNC_WRAPPER_EXACT_LIMIT", v)).into_iter().collect();
        if let Some(msg) = case.get("msg") {
            let out = Command::new(crate::host::WRAPPER)
                .args(&args)
                .env("ANSIBLE_ASYNC_DIR", host.async_dir())
                .envs(env.iter().copied())
                .output()
                .unwrap();
            let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                (out.status.code(), &reply["failed"], &reply["msg"]),
                (Some(1), &json!(true), msg),
                "{case}"
            );
            continue;
        }
        let reply = host.start_with(&args, &env);
        let marker = host.marker(&reply);
        assert_eq!(marker.get("deadline").unwrap_or(&Value::Null), &case["deadline"], "{case}: {marker}");
        let supervisor = marker["supervisor"]["pid"].as_i64().unwrap() as i32;
        kill(Pid::from_raw(supervisor), Signal::SIGUSR1).unwrap();
        host.result(&reply);
    }
}

/// ansible's gather_facts passes a time limit of 0 for facts modules that keep their own
/// `gather_timeout`: the wrapper imposes no limit then, in both protocols. The modules here
/// outlive a job with a 1 s limit started beside them, and the stock watchdog's first 5 s
/// step, and end when the test lets them.
#[test]
fn a_time_limit_of_0_is_no_limit_in_both_protocols() {
    let host = Host::new();
    let gate = host.root.path().join("gate");
    let body = format!("while [ ! -e {} ]; do sleep 0.05; done; echo '{{\"facts\": 1}}'", s(&gate));
    let legacy = host.module("legacy", &body);
    let command = host.module("command", &body);
    let legacy = host.start(&["j5", "0", s(&legacy), "_", "-preserve_tmp"]);
    let command = host.start(&["j6", "0", "true", s(&command), "/bin/sh", s(&command)]);
    let limited = host.start(&["j7", "1", "true", "/bin/sh", "/bin/sh", "-c", "exec sleep 60"]);
    for reply in [&legacy, &command] {
        assert_eq!(host.marker(reply)["time_limit"], 0);
    }
    assert_eq!(host.result(&limited)["msg"], "Timeout exceeded");
    let started_at = host.marker(&legacy)["started_at"].as_f64().unwrap();
    // Past the stock watchdog's first check, 5 s after the start.
    wait_for("6 s since the start", Duration::from_secs(30), || async_core::clock::now() - started_at > 6.0);
    for reply in [&legacy, &command] {
        let marker = host.marker(reply);
        assert!(is_alive(marker["module_process"]["pid"].as_u64().unwrap() as u32), "{marker}");
    }
    fs::write(&gate, "").unwrap();
    for reply in [&legacy, &command] {
        assert_eq!(host.result(reply), serde_json::json!({"facts": 1}));
        let log = fs::read_to_string(format!("{}.log", results_file(reply).display())).unwrap();
        assert!(log.contains(" time_limit=0 ") && !log.contains(" timeout "), "{log}");
    }
}

#[test]
fn module_gets_sigterm_and_time_to_clean_up_before_sigkill() {
    let host = Host::new();
    let cleaned = host.root.path().join("cleaned");
    let module = host.module(
        "m",
        &format!("trap 'echo cleaned > {}; exit 0' TERM\nwhile :; do sleep 0.05; done", s(&cleaned)),
    );
    let reply = host.start(&["j2", "1", s(&module), "_"]);
    let result = host.result(&reply);
    assert_eq!(result["msg"], "Timeout exceeded");
    assert_eq!(fs::read_to_string(&cleaned).unwrap(), "cleaned\n");
}

#[test]
fn a_module_ignoring_sigterm_is_killed_after_the_grace_period() {
    let host = Host::new();
    let module = host.module("m", "trap '' TERM\nwhile :; do sleep 0.05; done");
    let reply = host.start_with(&["j3", "1", s(&module), "_"], &[("ASYNC_WRAPPER_KILL_GRACE", "0.3"), EXACT]);
    let started_at = host.marker(&reply)["started_at"].as_f64().unwrap();
    let result = host.result(&reply);
    assert_eq!(result["msg"], "Timeout exceeded");
    let pid = result["child_pid"].as_u64().unwrap() as u32;
    assert!(!is_alive(pid), "the module survived SIGKILL");
    let after_limit = mtime(&results_file(&reply)) - started_at - 1.0;
    assert!((0.3..2.0).contains(&after_limit), "ended {after_limit:.3} s after the limit, grace 0.3 s");
}

/// The settings of a task's environment, as the table every wrapper is held to
/// (`tests/protocol/settings.json`) says: a bad value is a failed reply and no job, a good
/// one is recorded in the running job file.
#[test]
fn every_setting_is_taken_or_refused_as_the_table_says() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/settings.json");
    let table: Value = serde_json::from_str(&fs::read_to_string(table).unwrap()).unwrap();
    for case in table["cases"].as_array().unwrap() {
        let host = Host::new();
        let module = host.module("m", "exec sleep 60");
        let env: Vec<(&str, &str)> =
            case["env"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
        let args = ["j1", "600", s(&module), "_"];
        if let Some(msg) = case.get("msg") {
            let out = Command::new(crate::host::WRAPPER)
                .args(args)
                .env("ANSIBLE_ASYNC_DIR", host.async_dir())
                .envs(env.iter().copied())
                .output()
                .unwrap();
            let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!((out.status.code(), reply), (Some(1), json!({"failed": true, "msg": msg})), "{case}");
            assert!(!host.async_dir().exists(), "nothing is created for a bad setting: {case}");
            continue;
        }
        let reply = host.start_with(&args, &env);
        let marker = host.marker(&reply);
        for (key, value) in case["marker"].as_object().unwrap() {
            assert_eq!(&marker[key], value, "{case}: {marker}");
        }
        kill(Pid::from_raw(marker["supervisor"]["pid"].as_i64().unwrap() as i32), Signal::SIGUSR1).unwrap();
        host.result(&reply);
    }
}

#[test]
fn stopping_the_supervisor_ends_the_job_and_says_so() {
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let host = Host::new();
        let module = host.module("m", "exec sleep 60");
        let reply = host.start(&["j5", "60", s(&module), "_"]);
        let supervisor = host.marker(&reply)["supervisor"]["pid"].as_u64().unwrap();
        kill(Pid::from_raw(supervisor as i32), signal).unwrap();
        let result = host.result(&reply);
        assert_eq!(result["failed"], true);
        let msg = result["msg"].as_str().unwrap();
        assert!(msg.contains(&format!("async_wrapper received {signal}")), "{msg}");
        assert!(!is_alive(result["child_pid"].as_u64().unwrap() as u32));
    }
}

#[test]
fn job_finishes_when_the_module_exits_though_a_child_keeps_its_output_open() {
    let host = Host::new();
    let pid_file = host.root.path().join("pid");
    let module =
        host.module("m", &format!("sleep 30 & echo $! > {}; echo '{{\"done\": true}}'", s(&pid_file)));
    let reply = host.start(&["j6", "60", s(&module), "_"]);
    let result = host.result(&reply);
    assert_eq!(result, serde_json::json!({"done": true}));
    // The background child is left alone, as it would be without async.
    let child: u32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(is_alive(child));
    kill(Pid::from_raw(child as i32), Signal::SIGKILL).unwrap();
    wait_for("the background child to go", Duration::from_secs(5), || !is_alive(child));
}
