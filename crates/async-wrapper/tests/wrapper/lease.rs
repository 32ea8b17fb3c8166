//! The lease: a job started with `ASYNC_WRAPPER_LEASE` ends when nothing asks for it for
//! that long, and lives on while something does. Asking is what `async_status` does: it moves
//! the job file's modification time to now (`JobDir::renew`), done here the same way.

use std::fs;
use std::time::{Duration, Instant, SystemTime};

use crate::host::{is_alive, mtime, results_file, s, Host};
use serde_json::json;

const GRACE: (&str, &str) = ("ASYNC_WRAPPER_KILL_GRACE", "0.5");

fn renew(reply: &serde_json::Value) {
    let file = fs::File::open(results_file(reply)).unwrap();
    file.set_modified(SystemTime::now()).unwrap();
}

#[test]
fn a_job_nothing_asks_for_ends_when_its_lease_runs_out() {
    let host = Host::new();
    let module = host.module("m", "exec sleep 60");
    let reply = host.start_with(&["j1", "600", s(&module), "_"], &[("ASYNC_WRAPPER_LEASE", "1"), GRACE]);
    let marker = host.marker(&reply);
    assert_eq!(marker["lease"], 1);
    let started_at = marker["started_at"].as_f64().unwrap();
    let result = host.result(&reply);
    let ended = mtime(&results_file(&reply)) - started_at;
    assert!((1.0..3.0).contains(&ended), "ended {ended:.3} s after its start, lease 1 s");
    assert_eq!(
        (&result["failed"], &result["terminated"], &result["lease_expired"], &result["lease"]),
        (&json!(true), &json!(true), &json!(true), &json!(1))
    );
    assert_eq!(result["last_call"], json!(null));
    assert!(result["msg"].as_str().unwrap().contains("nothing asked for it for 1 s"), "{result}");
    assert!(!is_alive(result["child_pid"].as_u64().unwrap() as u32));
    let log = fs::read_to_string(
        host.async_dir().join(format!("{}.log", reply["ansible_job_id"].as_str().unwrap())),
    )
    .unwrap();
    assert!(
        log.contains(" lease=1 module=") && log.contains(" lease_expired lease=1 last_call=none\n"),
        "{log}"
    );
    assert!(log.contains(" result state=expired\n"), "{log}");
}

#[test]
fn each_call_renews_the_lease_and_the_job_runs_on() {
    let host = Host::new();
    let module = host.module("m", "sleep 3; echo '{\"done\": true}'");
    let reply = host.start_with(&["j2", "600", s(&module), "_"], &[("ASYNC_WRAPPER_LEASE", "1"), GRACE]);
    // Calls every 0.3 s keep a 1 s lease for the module's 3 s.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if !host.marker_if_running(&reply) {
            break;
        }
        renew(&reply);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(host.result(&reply)["done"], true);
}

#[test]
fn after_the_last_call_the_lease_runs_out_and_the_result_says_when_it_came() {
    let host = Host::new();
    let module = host.module("m", "exec sleep 60");
    let reply = host.start_with(&["j3", "600", s(&module), "_"], &[("ASYNC_WRAPPER_LEASE", "2"), GRACE]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        renew(&reply);
        std::thread::sleep(Duration::from_millis(200));
    }
    renew(&reply);
    let last_call = SystemTime::now();
    let result = host.result(&reply);
    let after = mtime(&results_file(&reply))
        - last_call.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((2.0..4.0).contains(&after), "ended {after:.3} s after the last call, lease 2 s");
    assert_eq!(result["lease_expired"], true);
    assert!(result["last_call"].as_str().unwrap().ends_with('Z'), "{result}");
}
