//! Results that hold secrets (see `async_core::held`): a `no_log` task's result, or one that
//! lists `_ansible_new_secrets`, never reaches the disk; `async_status` gets it from the
//! job's supervisor, a cleanup releases it, and a supervisor that is gone leaves a lost job
//! that says why. `ASYNC_WRAPPER_SECRETS=disk` writes it as before.

use std::fs;
use std::time::Duration;

use async_core::{status, JobDir, JobId, JobState};
use serde_json::{json, Value};

use crate::host::{is_alive, results_file, s, wait_for, Host};

const SECRET: &str = "s3cr3t-hunter2";

/// Every byte of every file under the host's async dir (socket files have none to read).
fn nothing_on_disk_holds(host: &Host, text: &str) {
    for entry in fs::read_dir(host.async_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = fs::read(&path).unwrap();
            assert!(!data.windows(text.len()).any(|w| w == text.as_bytes()), "{} holds it", path.display());
        }
    }
}

/// Starts a module that prints `result` under `_ansible_no_log: no_log`; the reply and the
/// held (or written) job file once the module is over.
fn start(host: &Host, name: &str, no_log: bool, result: &Value, env: &[(&str, &str)]) -> (Value, Value) {
    let args = host.tmp_dir().join(format!("{name}.args"));
    fs::write(&args, json!({"_ansible_no_log": no_log, "password": SECRET}).to_string()).unwrap();
    let module = host.module(name, &format!("echo '{result}'"));
    let reply = host.start_with(&[name, "60", s(&module), s(&args), "-preserve_tmp"], env);
    let file = host.result(&reply);
    (reply, file)
}

fn job(host: &Host, reply: &Value) -> (JobDir, JobId) {
    (JobDir::at(host.async_dir()), JobId::new(reply["ansible_job_id"].as_str().unwrap()).unwrap())
}

#[test]
fn a_no_log_result_is_held_fetched_and_released_by_a_cleanup() {
    let host = Host::new();
    let (reply, file) = start(&host, "j1", true, &json!({"changed": true, "pw": SECRET}), &[]);
    assert_eq!(file["failed"], true);
    assert!(file["msg"].as_str().unwrap().contains("holds secrets (no_log)"), "{file}");
    assert_eq!((&file["held"]["state"], &file["held"]["reason"]), (&json!("finished"), &json!("no_log")));
    nothing_on_disk_holds(&host, SECRET);
    let pid = file["held"]["supervisor"]["pid"].as_u64().unwrap() as u32;
    assert!(is_alive(pid));
    let socket = host.async_dir().join(file["held"]["socket"].as_str().unwrap());
    assert!(socket.exists());

    let (dir, id) = job(&host, &reply);
    // async_status: the result as the job file would have held it, plus what it adds.
    let report = status::report(&dir, &id).into_value();
    assert_eq!(report["pw"], SECRET);
    assert_eq!((&report["changed"], &report["finished"]), (&json!(true), &json!(true)));
    assert_eq!(report["ansible_job_id"], id.as_str());
    assert_eq!(status::report(&dir, &id).into_value(), report, "asked again, the same");
    let info = dir.info(&id).unwrap().unwrap();
    assert_eq!((info.state, info.held), (JobState::Finished, true));
    let log = fs::read_to_string(dir.log_path(&id)).unwrap();
    assert!(log.lines().last().unwrap().contains(" result state=finished held=.held-"), "{log}");

    // A cleanup releases it: the supervisor exits and takes its socket with it.
    assert!(dir.remove(&id).unwrap());
    wait_for("the supervisor to exit", Duration::from_secs(10), || !is_alive(pid));
    assert!(!socket.exists());
    assert!(!results_file(&reply).exists() && !dir.log_path(&id).exists());
}

#[test]
fn a_result_that_lists_new_secrets_is_held_too() {
    let host = Host::new();
    let result = json!({"failed": true, "msg": "no", "pw": SECRET, "_ansible_new_secrets": [SECRET]});
    let (reply, file) = start(&host, "j2", false, &result, &[]);
    assert_eq!((&file["held"]["state"], &file["held"]["reason"]), (&json!("failed"), &json!("new_secrets")));
    nothing_on_disk_holds(&host, SECRET);
    let (dir, id) = job(&host, &reply);
    let report = status::report(&dir, &id).into_value();
    assert_eq!(report["_ansible_new_secrets"], json!([SECRET]));
    assert_eq!(report["msg"], "no");
    dir.remove(&id).unwrap();
}

#[test]
fn a_result_without_secrets_is_written_as_always() {
    let host = Host::new();
    let (_, file) = start(&host, "j3", false, &json!({"rc": 0, "pw": "plain"}), &[]);
    assert_eq!(file, json!({"rc": 0, "pw": "plain"}));
}

#[test]
fn the_task_can_opt_out_and_the_log_says_so() {
    let host = Host::new();
    let env = [("ASYNC_WRAPPER_SECRETS", "disk")];
    let (reply, file) = start(&host, "j4", true, &json!({"pw": SECRET}), &env);
    assert_eq!(file["pw"], SECRET);
    let (dir, id) = job(&host, &reply);
    let log = fs::read_to_string(dir.log_path(&id)).unwrap();
    assert!(log.contains(" secrets_on_disk reason=no_log why=ASYNC_WRAPPER_SECRETS=disk\n"), "{log}");
}

#[test]
fn a_bad_secrets_setting_is_a_failed_reply_and_no_job() {
    let host = Host::new();
    let module = host.module("m", "true");
    let out = std::process::Command::new(crate::host::WRAPPER)
        .args(["j5", "60", s(&module), "_"])
        .env("ANSIBLE_ASYNC_DIR", host.async_dir())
        .env("ASYNC_WRAPPER_SECRETS", "keyring")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(reply["msg"].as_str().unwrap().starts_with("ASYNC_WRAPPER_SECRETS must be memory"), "{reply}");
}

#[test]
fn a_held_result_whose_supervisor_is_gone_is_lost_and_says_why() {
    let host = Host::new();
    let (reply, file) = start(&host, "j6", true, &json!({"pw": SECRET}), &[]);
    let (dir, id) = job(&host, &reply);
    let pid = file["held"]["supervisor"]["pid"].as_u64().unwrap() as u32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    wait_for("the supervisor to die", Duration::from_secs(10), || !is_alive(pid));
    let report = status::report(&dir, &id).into_value();
    assert_eq!((&report["failed"], &report["finished"]), (&json!(true), &json!(true)));
    let msg = report["msg"].as_str().unwrap();
    assert!(msg.contains("held secrets (no_log)") && msg.contains(&format!("pid {pid}")), "{msg}");
    assert!(msg.contains("no longer running"), "{msg}");
    assert_eq!(dir.info(&id).unwrap().unwrap().state, JobState::Lost);
    // The cleanup removes the socket the killed supervisor left.
    let socket = host.async_dir().join(file["held"]["socket"].as_str().unwrap());
    assert!(socket.exists());
    dir.remove(&id).unwrap();
    assert!(!socket.exists());
}

#[test]
fn a_held_file_from_another_boot_is_lost() {
    let host = Host::new();
    let (reply, mut file) = start(&host, "j7", true, &json!({"pw": SECRET}), &[]);
    let (dir, id) = job(&host, &reply);
    let pid = file["held"]["supervisor"]["pid"].as_u64().unwrap() as u32;
    // A reboot: the same file, a supervisor stamp of another boot.
    file["held"]["supervisor"]["boot_id"] = json!("00000000-0000-0000-0000-000000000000");
    dir.write(&id, &file).unwrap();
    // The real supervisor sees its file is no longer its own and lets go.
    let report = status::report(&dir, &id).into_value();
    assert!(
        report["msg"].as_str().unwrap().starts_with("the job's result was lost: it held secrets"),
        "{report}"
    );
    assert_eq!(report["failed"], true);
    // Its supervisor notices within its check interval; do not wait for it, end it here.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    wait_for("the supervisor to exit", Duration::from_secs(10), || !is_alive(pid));
}

#[test]
fn a_retention_setting_removes_old_finished_jobs_at_each_launch() {
    let host = Host::new();
    let (old_reply, _) = start(&host, "j8", false, &json!({"rc": 0}), &[]);
    let old = results_file(&old_reply);
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    fs::File::options().write(true).open(&old).unwrap().set_modified(long_ago).unwrap();
    let (young_reply, _) = start(&host, "j9", false, &json!({"rc": 0}), &[]);
    let (reply, _) = start(&host, "j10", false, &json!({"rc": 0}), &[("ASYNC_WRAPPER_RETAIN", "2d")]);
    assert!(!old.exists(), "older than 2 days: removed");
    assert!(results_file(&young_reply).exists() && results_file(&reply).exists());
    let (dir, id) = job(&host, &reply);
    let log = fs::read_to_string(dir.log_path(&id)).unwrap();
    assert!(log.contains(" retain older_than=172800 removed=1\n"), "{log}");
}

#[test]
fn a_held_supervisor_told_to_stop_removes_its_socket_and_the_job_is_lost() {
    let host = Host::new();
    let (reply, file) = start(&host, "j11", true, &json!({"pw": SECRET}), &[]);
    let (dir, id) = job(&host, &reply);
    let pid = file["held"]["supervisor"]["pid"].as_u64().unwrap() as u32;
    let socket = host.async_dir().join(file["held"]["socket"].as_str().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    wait_for("the supervisor to exit", Duration::from_secs(10), || !is_alive(pid));
    assert!(!socket.exists());
    let msg = status::report(&dir, &id).into_value()["msg"].as_str().unwrap().to_string();
    assert!(msg.starts_with("the job's result was lost: it held secrets"), "{msg}");
}
