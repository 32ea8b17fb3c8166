//! `async_status` as a native binary module: ansible runs `async_status ARGS_FILE`, where
//! the args file is one JSON object (`jid`, `mode`, `_async_dir` and ansible's own
//! `_ansible_*` keys), and reads one JSON object from stdout. `async_status --args-json JSON`
//! takes that object as text instead: `library/async_status`, a script into which ansible
//! writes the arguments, has no arguments file to pass.
//!
//! `mode: status` reports the job file (running, or the module's result once it ended);
//! `mode: cleanup` removes it. Results match ansible-core's own module key for key.

use std::ffi::OsString;
use std::path::Path;

use async_core::{jobfile, reply, JobDir, JobFile, JobId, ModuleArgs};
use serde_json::{json, Value};

const USAGE: &str = "async_status is an ansible module: ansible runs it as `async_status ARGS_FILE` \
                     (or `async_status --args-json JSON`)";

#[derive(Debug, PartialEq)]
enum Mode {
    Status,
    Cleanup,
}

#[derive(Debug)]
struct Args {
    jid: String,
    mode: Mode,
    async_dir: JobDir,
}

/// Runs `async_status ARGS_FILE` or `async_status --args-json JSON` with `args` (without the
/// program name) and exits.
pub fn run(args: Vec<OsString>) -> ! {
    let args = match args.as_slice() {
        [flag, json] if flag == "--args-json" => parse_json_args(&json.to_string_lossy()),
        [flag, ..] if flag == "--args-json" => Err(USAGE.to_string()),
        [args_file, ..] => read_args(Path::new(args_file)),
        [] => Err(USAGE.to_string()),
    };
    let args = match args {
        Ok(args) => args,
        Err(msg) => reply::exit(&reply::failure(msg), 1),
    };
    let (result, code) = run_module(&args);
    reply::exit(&result, code)
}

fn read_args(path: &Path) -> Result<Args, String> {
    parse_args(&ModuleArgs::read(path)?)
}

/// The arguments as JSON text (what ansible writes into a JSON-args module).
fn parse_json_args(text: &str) -> Result<Args, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => parse_args(&ModuleArgs::new(map)),
        Ok(_) => Err("the module arguments are not a JSON object".into()),
        Err(e) => Err(format!("the module arguments are not valid JSON: {e}")),
    }
}

fn parse_args(args: &ModuleArgs) -> Result<Args, String> {
    args.only("async_status", &["jid", "mode", "_async_dir"], &["jid", "mode"])?;
    let jid = args.string("jid")?.ok_or("missing required arguments: jid")?;
    let mode = match args.string("mode")?.as_deref() {
        None | Some("status") => Mode::Status,
        Some("cleanup") => Mode::Cleanup,
        Some(other) => return Err(format!("value of mode must be one of: cleanup, status, got: {other}")),
    };
    Ok(Args { jid, mode, async_dir: args.job_dir("_async_dir")? })
}

/// The answer for `args` and the exit code: 0 when the module itself succeeded (a finished
/// job's own failure is reported with 0, as ansible-core does), 1 when it failed.
fn run_module(args: &Args) -> (Value, i32) {
    let id = match JobId::new(&args.jid) {
        Ok(id) => id,
        Err(e) => return failed(json!({"ansible_job_id": args.jid}), e.to_string()),
    };
    let dir = &args.async_dir;
    if !dir.exists() {
        return not_found(&id);
    }
    if let Err(e) = dir.check() {
        return failed(json!({"ansible_job_id": id.as_str()}), e.to_string());
    }
    let path = dir.job_path(&id).display().to_string();
    match args.mode {
        Mode::Cleanup => match dir.remove(&id) {
            Ok(true) => (json!({"ansible_job_id": id.as_str(), "erased": path}), 0),
            Ok(false) => not_found(&id),
            Err(e) => {
                failed(json!({"ansible_job_id": id.as_str()}), format!("could not remove job file: {e}"))
            }
        },
        Mode::Status => report(dir, &id, path),
    }
}

/// The status of a job from its file. A running job whose supervisor is gone is lost:
/// its result will never come, so it is reported finished and failed.
fn report(dir: &JobDir, id: &JobId, path: String) -> (Value, i32) {
    let over =
        json!({"ansible_job_id": id.as_str(), "results_file": path, "started": true, "finished": true});
    let mut lost = None;
    // Read again when the supervisor is gone: it writes the result just before exiting.
    for _ in 0..2 {
        let mut job = match dir.read(id) {
            Ok(JobFile::Missing) => return not_found(id),
            Ok(JobFile::Empty) => {
                let running = json!({"results_file": path, "ansible_job_id": id.as_str(),
                                     "started": true, "finished": false});
                return (running, 0);
            }
            Ok(JobFile::Garbage(data)) => return failed(over, format!("Could not parse job output: {data}")),
            Ok(JobFile::Object(job)) => job,
            Err(e) => return failed(over, format!("could not read job file: {e}")),
        };
        if !jobfile::is_running(&job) {
            job.insert("finished".into(), json!(true));
            job.insert("ansible_job_id".into(), json!(id.as_str()));
            return (Value::Object(job), 0);
        }
        match jobfile::supervisor(&job) {
            Some(supervisor) if !supervisor.is_alive() => lost = Some(supervisor.pid),
            _ => {
                job.entry("finished").or_insert(json!(false));
                if let Some(elapsed) = jobfile::elapsed(&job) {
                    job.insert("elapsed".into(), json!(elapsed));
                }
                return (Value::Object(job), 0);
            }
        }
    }
    let pid = lost.unwrap_or_default();
    failed(
        over,
        format!(
            "the job was lost: its supervisor (async_wrapper, pid {pid}) is no longer running and \
             left no result; the host may have rebooted or the process was killed"
        ),
    )
}

/// `extra` with `failed` and `msg`, and exit code 1.
fn failed(mut extra: Value, msg: String) -> (Value, i32) {
    extra["failed"] = json!(true);
    extra["msg"] = json!(msg);
    (extra, 1)
}

fn not_found(id: &JobId) -> (Value, i32) {
    failed(
        json!({"ansible_job_id": id.as_str(), "started": true, "finished": true}),
        "could not find job".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_core::ProcessStamp;
    use std::fs;

    fn args(dir: &Path, value: Value) -> Args {
        let Value::Object(mut map) = value else { panic!() };
        map.insert("_async_dir".into(), json!(dir.to_str().unwrap()));
        parse_args(&ModuleArgs::new(map)).unwrap()
    }

    fn private_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn unknown_job_is_failed_and_finished() {
        let dir = private_dir();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 1);
        assert_eq!(
            r,
            json!({"failed": true, "msg": "could not find job", "ansible_job_id": "j1.1",
                   "started": true, "finished": true})
        );
        // A missing async dir is an unknown job too, and is not created.
        let gone = dir.path().join("nope");
        let (r, _) = run_module(&args(&gone, json!({"jid": "j1.1"})));
        assert_eq!(r["msg"], "could not find job");
        assert!(!gone.exists());
    }

    #[test]
    fn running_job_gets_finished_false() {
        let dir = private_dir();
        fs::write(
            dir.path().join("j1.1"),
            r#"{"started": true, "finished": false, "ansible_job_id": "j1.1"}"#,
        )
        .unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!((code, &r["started"], &r["finished"]), (0, &json!(true), &json!(false)));
        fs::write(dir.path().join("j1.1"), r#"{"started": true}"#).unwrap();
        let (r, _) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(r["finished"], false);
    }

    #[test]
    fn running_job_with_a_live_supervisor_reports_elapsed_time() {
        let dir = private_dir();
        let me = ProcessStamp::current().unwrap();
        let marker = json!({"started": true, "finished": false, "ansible_job_id": "j1.1",
                            "started_at": 1.0, "time_limit": 30, "supervisor": me.to_json()});
        fs::write(dir.path().join("j1.1"), marker.to_string()).unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 0);
        assert_eq!(r["finished"], false);
        assert_eq!(r["time_limit"], 30);
        assert!(r["elapsed"].as_f64().unwrap() > 1e9, "{r}");
    }

    #[test]
    fn running_job_whose_supervisor_is_gone_is_lost() {
        let dir = private_dir();
        let me = ProcessStamp::current().unwrap();
        // The same pid, started at another time: the supervisor died and the pid was reused.
        let gone = ProcessStamp { start_time: me.start_time + 1, ..me };
        let marker = json!({"started": true, "finished": false, "ansible_job_id": "j1.1",
                            "supervisor": gone.to_json()});
        fs::write(dir.path().join("j1.1"), marker.to_string()).unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 1);
        assert_eq!((&r["failed"], &r["started"], &r["finished"]), (&json!(true), &json!(true), &json!(true)));
        let msg = r["msg"].as_str().unwrap();
        assert!(msg.starts_with("the job was lost: its supervisor (async_wrapper, pid "), "{msg}");
        // Reporting changes nothing on disk.
        assert_eq!(fs::read_to_string(dir.path().join("j1.1")).unwrap(), marker.to_string());
    }

    #[test]
    fn empty_file_is_still_running() {
        let dir = private_dir();
        fs::write(dir.path().join("j1.1"), "").unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 0);
        assert_eq!(r["started"], true);
        assert_eq!(r["finished"], false);
        assert_eq!(r["results_file"], dir.path().join("j1.1").to_str().unwrap());
    }

    #[test]
    fn finished_result_is_the_module_result_plus_finished() {
        let dir = private_dir();
        fs::write(dir.path().join("j1.1"), r#"{"rc": 3, "failed": true, "msg": "boom"}"#).unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1", "_ansible_check_mode": true})));
        assert_eq!(code, 0);
        assert_eq!(
            r,
            json!({"rc": 3, "failed": true, "msg": "boom", "finished": true, "ansible_job_id": "j1.1"})
        );
    }

    #[test]
    fn garbage_is_failed_not_running() {
        let dir = private_dir();
        fs::write(dir.path().join("j1.1"), "{\"started\": tr").unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 1);
        assert_eq!(r["finished"], true);
        assert_eq!(r["msg"], "Could not parse job output: {\"started\": tr");
    }

    #[test]
    fn cleanup_erases_the_file() {
        let dir = private_dir();
        let file = dir.path().join("j1.1");
        fs::write(&file, "{}").unwrap();
        fs::write(dir.path().join("j1.1.log"), "t invoked\n").unwrap();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1", "mode": "cleanup"})));
        assert_eq!(code, 0);
        assert_eq!(r, json!({"ansible_job_id": "j1.1", "erased": file.to_str().unwrap()}));
        assert!(!file.exists());
        assert!(!dir.path().join("j1.1.log").exists(), "the job's log goes too");
    }

    #[test]
    fn a_job_id_outside_the_dir_touches_nothing() {
        let dir = private_dir();
        let async_dir = dir.path().join("async");
        fs::create_dir(&async_dir).unwrap();
        let victim = dir.path().join("x");
        fs::write(&victim, "{}").unwrap();
        let (r, code) = run_module(&args(&async_dir, json!({"jid": "../x", "mode": "cleanup"})));
        assert_eq!(code, 1);
        assert!(r["msg"].as_str().unwrap().starts_with("invalid job id"), "{r}");
        assert!(victim.exists());
    }

    #[test]
    fn bad_arguments_are_refused_clearly() {
        let err = |v: Value| {
            let Value::Object(map) = v else { panic!() };
            parse_args(&ModuleArgs::new(map)).unwrap_err()
        };
        assert_eq!(err(json!({})), "missing required arguments: jid");
        assert_eq!(
            err(json!({"jid": "j1", "mode": "kill"})),
            "value of mode must be one of: cleanup, status, got: kill"
        );
        assert!(err(json!({"jid": "j1", "bogus": 1})).contains("Unsupported parameters"));
        assert!(err(json!({"jid": ["j1"]})).contains("must be a string"));
        let ok = parse_args(&ModuleArgs::new(json!({"jid": 17}).as_object().unwrap().clone())).unwrap();
        assert_eq!(ok.jid, "17");
    }

    #[test]
    fn arguments_as_json_text() {
        let args = parse_json_args(
            r#"{"jid": "j1.1", "mode": "cleanup", "_async_dir": "/x y", "_ansible_no_log": false}"#,
        )
        .unwrap();
        assert_eq!((args.jid.as_str(), &args.mode), ("j1.1", &Mode::Cleanup));
        assert!(parse_json_args("[1]").unwrap_err().contains("not a JSON object"));
        assert!(parse_json_args("{\"jid\": ").unwrap_err().contains("not valid JSON"));
        assert!(parse_json_args("<<not substituted>>").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn unreadable_args_file_is_a_clear_failure() {
        let dir = private_dir();
        let missing = dir.path().join("args");
        assert!(read_args(&missing).unwrap_err().contains("could not read the module arguments file"));
        fs::write(&missing, "jid=1 mode=status").unwrap();
        assert!(read_args(&missing).unwrap_err().contains("is not valid JSON"));
    }
}
