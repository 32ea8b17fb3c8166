//! The async_wrapper command lines of the table every implementation is held to
//! (`tests/protocol/arguments.json`): the wrapper answers each as the table says; an
//! accepted one starts a job, which is then ended. tests/protocol/test_arguments.py holds
//! library/async_wrapper and the portable fallback to the same table.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::host::{is_alive, wait_for, Host, WRAPPER};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{Pid, Uid, User};
use serde_json::{json, Value};

/// `text` with the table's placeholders replaced.
fn subst(text: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(text.to_string(), |text, (name, by)| text.replace(name, by))
}

/// Whether `got` is `want` with its placeholders replaced, `{pid}` standing for any process id;
/// an OS error's text is not compared (the table holds the static program's, musl's).
fn same(got: Option<&Value>, want: Option<&Value>, values: &[(&str, String)]) -> bool {
    let (Some(Value::String(got)), Some(Value::String(want))) = (got, want) else {
        return got == want;
    };
    let want = subst(want, values);
    let (got, want) = (strerror_free(got), strerror_free(&want));
    match want.split_once("{pid}") {
        None => got == want,
        Some((before, after)) => got
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())),
    }
}

fn strerror_free(text: &str) -> String {
    match text.rfind(" (os error ") {
        Some(end) => {
            let start = text[..end].rfind(" - ").or_else(|| text[..end].rfind(": ")).unwrap_or(end);
            format!("{}…{}", &text[..start], &text[end..])
        }
        None => text.to_string(),
    }
}

/// What `kind` (the table's `async_dir`) makes at `path`: the dir that holds the job files.
fn make_async_dir(root: &Path, path: &Path, kind: &str) -> Option<PathBuf> {
    let private = |dir: &Path| {
        fs::create_dir(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    };
    match kind {
        "missing" => Some(root.join(path)),
        "file" => {
            fs::write(path, "x").unwrap();
            None
        }
        "symlink" => {
            private(&root.join("real"));
            symlink(root.join("real"), path).unwrap();
            Some(root.join("real"))
        }
        "private" | "other-user" | "world-writable" => {
            private(path);
            if kind == "world-writable" {
                fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
            }
            Some(path.to_path_buf())
        }
        other => panic!("unknown async_dir kind {other}"),
    }
}

/// Ends the job `reply` started, as async_job terminate does, or kills what is left of it.
fn end_job(job_dir: &Path, reply: &Value) {
    let file = job_dir.join(reply["ansible_job_id"].as_str().unwrap());
    let read =
        || -> Value { serde_json::from_slice(&fs::read(&file).unwrap()).unwrap_or(json!({"started": true})) };
    wait_for("the job to run its module or end", Duration::from_secs(30), || {
        let job = read();
        job.get("module_process").is_some() || job.get("started").is_none()
    });
    let job = read();
    if job.get("started").is_none() {
        return;
    }
    let supervisor = job["supervisor"]["pid"].as_u64().unwrap() as u32;
    if is_alive(supervisor) {
        kill(Pid::from_raw(supervisor as i32), Signal::SIGUSR1).unwrap();
        wait_for("the job to end", Duration::from_secs(30), || {
            read().get("started").is_none() || !is_alive(supervisor)
        });
    }
    let _ = killpg(Pid::from_raw(job["module_process"]["pid"].as_i64().unwrap() as i32), Signal::SIGKILL);
}

#[test]
fn every_async_wrapper_case_of_the_arguments_table_is_answered_as_it_says() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/arguments.json");
    let table: Value = serde_json::from_str(&fs::read_to_string(table).unwrap()).unwrap();
    let nobody = User::from_name("nobody").ok().flatten().map(|u| u.uid);
    for case in table["async_wrapper"].as_array().unwrap() {
        if case["root"] == true && (!Uid::effective().is_root() || nobody.is_none()) {
            continue;
        }
        let host = Host::new();
        let root = host.root.path();
        let home = root.join("home");
        fs::create_dir(&home).unwrap();
        let module = host.module("module", "exec sleep 60");
        let args_file = host.tmp_dir().join("args");
        fs::write(&args_file, "{}").unwrap();
        for (name, content) in case["files"].as_object().into_iter().flatten() {
            fs::write(root.join(name), content.as_str().unwrap()).unwrap();
        }
        let mut values = vec![
            ("{tmp}", root.display().to_string()),
            ("{module}", module.display().to_string()),
            ("{args_file}", args_file.display().to_string()),
            ("{uid}", Uid::effective().to_string()),
        ];
        let async_dir = match case["async_dir_setting"].as_str() {
            Some(setting) => PathBuf::from(subst(setting, &values)),
            None => root.join("async"),
        };
        let job_dir = make_async_dir(root, &async_dir, case["async_dir"].as_str().unwrap_or("missing"));
        values.push(("{async_dir}", async_dir.display().to_string()));
        if case["async_dir"] == "other-user" {
            std::os::unix::fs::chown(&async_dir, Some(nobody.unwrap().as_raw()), None).unwrap();
            values.push(("{nobody}", nobody.unwrap().to_string()));
        }
        let args: Vec<String> =
            case["args"].as_array().unwrap().iter().map(|a| subst(a.as_str().unwrap(), &values)).collect();
        let out = Command::new(WRAPPER)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("ANSIBLE_ASYNC_DIR", &async_dir)
            .current_dir(root)
            .output()
            .unwrap();
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        if out.status.success() {
            end_job(job_dir.as_deref().unwrap(), &reply);
        }
        let (id, expect) = (&case["id"], &case["expect"]);
        assert_eq!(json!(out.status.code()), expect["code"], "{id}: {reply}");
        let keys = ["failed", "started", "finished", "msg"];
        for key in keys.into_iter().chain(expect.as_object().unwrap().keys().map(String::as_str)) {
            if key != "code" {
                assert!(
                    same(reply.get(key), expect.get(key), &values),
                    "{id}: {key} in {reply}, expected {expect}"
                );
            }
        }
    }
}
