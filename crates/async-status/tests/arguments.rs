//! The async_status cases of the table every implementation is held to
//! (`tests/protocol/arguments.json`): `async_status --args-json JSON` answers each as the
//! table says. tests/protocol/test_arguments.py holds library/async_status (with and
//! without the program) to the same table.
//!
//! One test, so that it alone sets the process's HOME and ANSIBLE_ASYNC_DIR, as the Python
//! test sets them for each case: tmp paths, never the real home's async dir.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use async_core::user;
use serde_json::{json, Map, Value};

/// What `kind` (the table's `async_dir`) makes at `path`: the dir that holds the job files,
/// if any.
fn make_async_dir(tmp: &Path, path: &Path, kind: &str) -> Option<PathBuf> {
    let private = |dir: &Path| {
        fs::create_dir(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    };
    match kind {
        "missing" => None,
        "file" => {
            fs::write(path, "x").unwrap();
            None
        }
        "symlink" => {
            let real = tmp.join("real");
            private(&real);
            symlink(&real, path).unwrap();
            Some(real)
        }
        "private" | "other-user" => {
            private(path);
            Some(path.to_path_buf())
        }
        "world-writable" => {
            private(path);
            fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
            Some(path.to_path_buf())
        }
        other => panic!("unknown async_dir kind {other}"),
    }
}

/// `value` with the table's placeholders replaced.
fn subst(value: &Value, values: &[(&str, String)]) -> Value {
    match value {
        Value::String(text) => {
            Value::String(values.iter().fold(text.clone(), |text, (name, by)| text.replace(name, by)))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| subst(v, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (subst(&json!(k), values).as_str().unwrap().into(), subst(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `value` without the system's text of an OS error (`...: <text> (os error 40)`): the table
/// holds the static programs' (musl's), this test runs with the build host's libc.
fn strerror_free(value: &Value) -> Value {
    let Some(text) = value.as_str() else { return value.clone() };
    match (text.rfind(": "), text.rfind(" (os error ")) {
        (Some(start), Some(end)) if start < end => json!(format!("{}: …{}", &text[..start], &text[end..])),
        _ => value.clone(),
    }
}

/// The arguments as ansible writes them: the task's, and ansible's own `_ansible_*` keys.
fn ansible_args(args: &Value) -> String {
    let mut map: Map<String, Value> = args.as_object().unwrap().clone();
    let own = json!({"_ansible_check_mode": false, "_ansible_no_log": false, "_ansible_verbosity": 0,
                     "_ansible_version": "2.19.14", "_ansible_selinux_special_fs": ["fuse", "nfs", "9p"],
                     "_ansible_socket": null, "_ansible_tmpdir": null, "_ansible_tracebacks_for": []});
    map.extend(own.as_object().unwrap().clone());
    Value::Object(map).to_string()
}

#[test]
fn every_async_status_case_of_the_arguments_table_is_answered_as_it_says() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/arguments.json");
    let table: Value = serde_json::from_str(&fs::read_to_string(table).unwrap()).unwrap();
    let nobody = user::passwd_entries().into_iter().find(|e| e.name == "nobody").map(|e| e.uid);
    for case in table["async_status"].as_array().unwrap() {
        if case["root"] == true && (user::euid() != 0 || nobody.is_none()) {
            continue;
        }
        let root = tempfile::tempdir().unwrap();
        let tmp = root.path();
        let home = tmp.join("home");
        fs::create_dir(&home).unwrap();
        let async_dir = tmp.join("async");
        for (name, content) in case["files"].as_object().into_iter().flatten() {
            fs::write(tmp.join(name), content.as_str().unwrap()).unwrap();
        }
        let job_dir = make_async_dir(tmp, &async_dir, case["async_dir"].as_str().unwrap_or("private"));
        if let Some(dir) = &job_dir {
            let job = dir.join(case["job_name"].as_str().unwrap_or("j1.1"));
            if let Some(content) = case["job"].as_str() {
                fs::write(&job, content).unwrap();
            } else if let Some(content) = case["job_symlink"].as_str() {
                fs::write(tmp.join("elsewhere"), content).unwrap();
                symlink(tmp.join("elsewhere"), &job).unwrap();
            }
        }
        let mut values = vec![
            ("{async_dir}", async_dir.display().to_string()),
            ("{tmp}", tmp.display().to_string()),
            ("{uid}", user::euid().to_string()),
        ];
        if case["async_dir"] == "other-user" {
            let nobody = nobody.unwrap();
            std::os::unix::fs::chown(&async_dir, Some(nobody), None).unwrap();
            values.push(("{nobody}", nobody.to_string()));
        }
        let text = match case["text"].as_str() {
            Some(text) => text.to_string(),
            None => ansible_args(&subst(&case["args"], &values)),
        };
        // As the Python test runs every implementation: a HOME and an async dir of the case's own.
        std::env::set_var("HOME", &home);
        std::env::set_var("ANSIBLE_ASYNC_DIR", &async_dir);
        let reply = async_status::run(vec![OsString::from("--args-json"), OsString::from(text)]);
        let answer: Value = serde_json::from_str(reply.stdout()).unwrap();
        let expect = subst(&case["expect"], &values);
        let id = &case["id"];
        assert_eq!(json!(reply.code()), expect["code"], "{id}: {answer}");
        for key in ["failed", "started", "finished", "msg"] {
            let (got, want) = (answer.get(key).map(strerror_free), expect.get(key).map(strerror_free));
            assert_eq!(got, want, "{id}: {key} in {answer}");
        }
    }
}
