//! `async_status` as a native binary module: ansible runs `async_status ARGS_FILE`, where
//! the args file is one JSON object (`jid`, `mode`, `_async_dir` and ansible's own
//! `_ansible_*` keys), and reads one JSON object from stdout. `async_status --args-json JSON`
//! takes that object as text instead: `library/async_status`, a script into which ansible
//! writes the arguments, has no arguments file to pass.
//!
//! `mode: status` reports the job file (running, or the module's result once it ended);
//! `mode: cleanup` removes it. Results match ansible-core's own module key for key.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_core::rules::MAX_TIME_LIMIT;
use async_core::rules::{self, fill};
use async_core::status::{self, failed, Report};
use async_core::watch::{Watcher, RECHECK};
use async_core::{user, JobDir, JobId, ModuleArgs, Reply};
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
    /// How long to wait for a running job's end (`_wait`), and the seconds to leave before its
    /// deadline (`_wait_reserve`): see [`wait_bound`].
    wait: (f64, f64),
    /// `invocation` for the results built here, when ansible asks for it.
    invocation: Option<Value>,
}

/// Runs `async_status ARGS_FILE` or `async_status --args-json JSON` with `args` (without the
/// program name): the module's answer.
pub fn run(args: Vec<OsString>) -> Reply {
    let args = match args.as_slice() {
        [flag, json] if flag == "--args-json" => parse_json_args(&json.to_string_lossy()),
        [flag, ..] if flag == "--args-json" => Err(USAGE.to_string()),
        [args_file, ..] => read_args(Path::new(args_file)),
        [] => Err(USAGE.to_string()),
    };
    match args {
        Ok(args) => {
            let (result, code) = run_module(&args);
            Reply::json(&result, code)
        }
        Err(msg) => Reply::failure(msg),
    }
}

fn read_args(path: &Path) -> Result<Args, String> {
    parse_args(&ModuleArgs::read(path)?)
}

/// The arguments as JSON text (what ansible writes into a JSON-args module).
fn parse_json_args(text: &str) -> Result<Args, String> {
    match async_core::json::parse(text) {
        Ok(Value::Object(map)) => parse_args(&ModuleArgs::new(map)),
        Ok(_) => Err(rules::ARGS_NOT_OBJECT.into()),
        Err(_) => Err(rules::ARGS_NOT_JSON.into()),
    }
}

fn parse_args(args: &ModuleArgs) -> Result<Args, String> {
    args.only("async_status", &rules::STATUS_ARGS, &rules::status_args_shown())?;
    let jid = args.string("jid")?.ok_or_else(|| fill(rules::MISSING, &[("keys", &"jid")]))?;
    let mode = match args.string("mode")?.as_deref() {
        None | Some("status") => Mode::Status,
        Some("cleanup") => Mode::Cleanup,
        Some(other) => {
            let choices = rules::STATUS_MODES.join(", ");
            return Err(fill(
                rules::NOT_A_CHOICE,
                &[("key", &"mode"), ("choices", &choices), ("value", &other)],
            ));
        }
    };
    let async_dir = args.job_dir("_async_dir")?;
    let [wait, reserve] = rules::WAIT_ARGS.map(|key| args.seconds(key));
    let wait = (wait?.unwrap_or(0.0), reserve?.unwrap_or(0.0));
    // What ansible-core's module reports as its arguments once validated: all three, the
    // mode's default filled in.
    let invocation = args.inject_invocation().then(|| {
        let mode = if mode == Mode::Cleanup { "cleanup" } else { "status" };
        json!({"module_args": {"_async_dir": args.string("_async_dir").ok().flatten(), "jid": jid, "mode": mode}})
    });
    Ok(Args { jid, mode, async_dir, wait, invocation })
}

/// The answer for `args` and the exit code: 0 when the module itself succeeded (a finished
/// job's own failure is reported with 0, as ansible-core does), 1 when it failed.
fn run_module(args: &Args) -> (Value, i32) {
    run_with(args, Homes::current)
}

/// An answer: the report of a job (a job file's own content, printed as it is, or one built
/// here), or one of this module's own.
type Answer = Report;

/// How long to wait for a running job's end: for one past its time limit, up to
/// [`OVERTIME_WAIT`], ending [`END_MARGIN`] before its deadline; else none.
fn overtime_wait(answer: &Answer) -> Duration {
    let Report::File(job) = answer else { return Duration::ZERO };
    let number = |key| job.get(key).and_then(Value::as_f64);
    let (Some(limit), Some(deadline), Some(elapsed)) =
        (number("time_limit"), number("deadline"), number("elapsed"))
    else {
        return Duration::ZERO;
    };
    if !answer.is_running() || limit <= 0.0 || elapsed < limit {
        return Duration::ZERO;
    }
    Duration::from_secs_f64((deadline - elapsed - END_MARGIN).clamp(0.0, OVERTIME_WAIT))
}

/// The answer printed: a job file as it is; one built here with `invocation` when ansible
/// asks for it (as ansible-core's AnsibleModule adds it).
fn finish(answer: Answer, invocation: Option<&Value>) -> (Value, i32) {
    match answer {
        Report::File(value) => (value, 0),
        Report::Built(mut value, code) => {
            if let Some(invocation) = invocation {
                value["invocation"] = invocation.clone();
            }
            (value, code)
        }
    }
}

/// `homes` is called only when the job is not where ansible said: a poll of a job in
/// `_async_dir` reads no passwd file.
fn run_with(args: &Args, homes: impl FnOnce() -> Homes) -> (Value, i32) {
    let (mut value, code) = finish(answer(args, homes), args.invocation.as_ref());
    name_job_file(&mut value, args);
    (value, code)
}

/// Adds the job file's path, when the answer has none, under the key ansible-core's own
/// action puts it (`results_file`, or `erased` for a cleanup): that action sets it from the
/// async dir it expanded with an `echo ~` of its own; this project's action plugin hands the
/// dir over unexpanded and takes the path, expanded here, from the answer.
fn name_job_file(value: &mut Value, args: &Args) {
    let key = if args.mode == Mode::Cleanup { "erased" } else { "results_file" };
    if let Value::Object(map) = value {
        let path = args.async_dir.path().join(&args.jid);
        map.entry(key).or_insert_with(|| json!(path.display().to_string()));
    }
}

fn answer(args: &Args, homes: impl FnOnce() -> Homes) -> Answer {
    let id = match JobId::new(&args.jid) {
        Ok(id) => id,
        Err(e) => return failed(json!({"ansible_job_id": args.jid}), e.to_string()).into(),
    };
    // Cleanup looks everywhere, to leave no trace; status stops at the first dir with the job.
    let lookup = Lookup::new(&args.async_dir, &id, homes, args.mode == Mode::Cleanup);
    match args.mode {
        Mode::Cleanup => {
            let mut erased = None;
            for dir in &lookup.holding {
                match dir.remove(&id) {
                    Ok(true) => {
                        erased.get_or_insert_with(|| dir.job_path(&id).display().to_string());
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return failed(
                            json!({"ansible_job_id": id.as_str()}),
                            fill(rules::UNREMOVABLE, &[("error", &e)]),
                        )
                        .into()
                    }
                }
            }
            match erased {
                Some(path) => (json!({"ansible_job_id": id.as_str(), "erased": path}), 0).into(),
                None => lookup.not_found(&id).into(),
            }
        }
        Mode::Status => match lookup.holding.first() {
            Some(dir) => report_waiting(dir, &id, args.wait),
            None => lookup.not_found(&id).into(),
        },
    }
}

/// Where a job's file is. ansible expands the `~` of `_async_dir` on its own, with
/// `echo ~<become user or remote user>`: the passwd home of the user it *means* to run as,
/// which is not always the one the wrapper ran as (`ansible_user` set for a host reached by a
/// local connection, a `delegate_to: localhost`), and a job started by a wrapper that went by
/// `$HOME` (stock's) is under `$HOME`. So when the job is not in `_async_dir`, the same dir is
/// tried re-anchored on the running user's own homes (passwd and `$HOME`), and
/// `ANSIBLE_ASYNC_DIR`. Only private dirs of the running user are read (checked as the wrapper
/// checks its own); other users' homes are never searched.
struct Lookup {
    /// The safe dirs that hold the job file, `_async_dir` first.
    holding: Vec<JobDir>,
    /// Every dir looked at, `_async_dir` first.
    searched: Vec<PathBuf>,
    /// Why `_async_dir` itself was refused (another user's, a symlink, world-writable...).
    refused: Option<String>,
}

impl Lookup {
    fn new(async_dir: &JobDir, id: &JobId, homes: impl FnOnce() -> Homes, everywhere: bool) -> Lookup {
        let mut lookup = Lookup { holding: Vec::new(), searched: Vec::new(), refused: None };
        if async_dir.exists() {
            match async_dir.check() {
                Ok(()) if holds(async_dir, id) => lookup.holding.push(async_dir.clone()),
                Ok(()) => {}
                Err(e) => lookup.refused = Some(e.to_string()),
            }
        }
        lookup.searched.push(async_dir.path().to_path_buf());
        if !everywhere && !lookup.holding.is_empty() {
            return lookup;
        }
        for path in homes().own_candidates(async_dir.path()) {
            let dir = JobDir::at(path.clone());
            if dir.exists() && dir.check().is_ok() && holds(&dir, id) {
                lookup.holding.push(dir);
            }
            lookup.searched.push(path);
        }
        lookup
    }

    /// No job: the refusal of `_async_dir` when there was one, else "could not find job" (the
    /// text users and tools match, kept verbatim) and the folders searched in `searched`.
    fn not_found(&self, id: &JobId) -> (Value, i32) {
        let searched: Vec<String> = self.searched.iter().map(|p| p.display().to_string()).collect();
        let extra = json!({"ansible_job_id": id.as_str(), "started": true, "finished": true,
                           "searched": searched});
        match &self.refused {
            Some(why) => failed(extra, why.clone()),
            None => failed(extra, rules::NOT_FOUND.into()),
        }
    }
}

/// Whether `dir` has a file (of any kind: a symlink is reported as an error later) named `id`.
fn holds(dir: &JobDir, id: &JobId) -> bool {
    std::fs::symlink_metadata(dir.job_path(id)).is_ok()
}

/// What the running user's homes are (read once; given by hand in tests).
#[derive(Clone)]
struct Homes {
    passwd: Vec<user::PasswdEntry>,
    /// The effective user's passwd home (`$HOME` when it has no entry).
    own: Option<String>,
    env_home: Option<String>,
    ansible_async_dir: Option<String>,
}

impl Homes {
    fn current() -> Homes {
        Homes {
            passwd: user::passwd_entries(),
            own: user::effective_home(),
            env_home: user::env_home(),
            ansible_async_dir: JobDir::env_setting(),
        }
    }

    /// The running user's own dirs that may hold a job ansible looks for in `async_dir`,
    /// without `async_dir` itself: `async_dir` re-anchored from the home ansible expanded `~`
    /// to (`$HOME`, or a passwd home that is a path prefix of it) onto the user's passwd home
    /// and `$HOME`, then `ANSIBLE_ASYNC_DIR`.
    fn own_candidates(&self, async_dir: &Path) -> Vec<PathBuf> {
        let mut tails: Vec<&Path> = Vec::new();
        for home in self.env_home.iter().chain(self.passwd.iter().map(|e| &e.home)) {
            if let Some(tail) = user::below_home(async_dir, home) {
                if !tails.contains(&tail) {
                    tails.push(tail);
                }
            }
        }
        let mut found: Vec<PathBuf> = Vec::new();
        let mut add = |path: PathBuf| {
            if path != async_dir && !found.contains(&path) {
                found.push(path);
            }
        };
        for home in self.own.iter().chain(self.env_home.iter()) {
            for tail in &tails {
                add(Path::new(home).join(tail));
            }
        }
        if let Some(dir) = &self.ansible_async_dir {
            add(JobDir::new(dir).path().to_path_buf());
        }
        found
    }
}

/// How long a status call waits for a job that has outrun its `async:` seconds (and so is
/// in the time stock's watchdog would still give it) to end, rather than answer "running".
///
/// ansible counts a poll loop's budget in polls, not seconds: `async: 6` with `poll: 1` is six
/// polls, and the task fails when the last one finds the job running. ansible-core's own
/// `async_status` spends ~0.3 s starting its Python on each poll, so with stock that last
/// poll comes seconds after the limit; ours come at once. Playbooks (ansible-core's own
/// `async` test among them: `sleep 5` under `async: 6`) are written against stock's slack,
/// so a poll in that overtime waits for the job's end, up to this long.
const OVERTIME_WAIT: f64 = 2.0;
/// The wait stops this long before the job is to be ended, so that a poll that finds it
/// running still says so, as stock's does (its job file says "running" until then).
const END_MARGIN: f64 = 0.5;
/// How often the job file is read while waiting.
const RUNNING_CHECK: Duration = Duration::from_millis(10);

/// How long a call that asks to wait (`_wait`: the `poll:` loop's interval, passed by this
/// project's action plugin) waits for a running job's end: up to `wait`, and only while
/// `reserve` seconds (the caller's remaining polls) and [`END_MARGIN`] are left before the
/// job's deadline, so that the loop's last poll still finds running a job stock's would have
/// found running. A job without a recorded deadline (a stock wrapper's) is not waited for; one
/// without a time limit for all of `wait`.
fn wait_bound(answer: &Answer, (wait, reserve): (f64, f64)) -> Duration {
    let Report::File(job) = answer else { return Duration::ZERO };
    if wait <= 0.0 || !answer.is_running() {
        return Duration::ZERO;
    }
    let number = |key| job.get(key).and_then(Value::as_f64);
    let left = match (number("time_limit"), number("deadline"), number("elapsed")) {
        (Some(limit), _, Some(_)) if limit <= 0.0 => f64::MAX,
        (Some(_), Some(deadline), Some(elapsed)) => deadline - elapsed - reserve - END_MARGIN,
        _ => 0.0,
    };
    Duration::from_secs_f64(wait.min(left).clamp(0.0, MAX_TIME_LIMIT as f64))
}

/// [`status::report`], waiting while a job in its overtime runs (see [`OVERTIME_WAIT`]) or,
/// when the caller asks, for a running job's end (see [`wait_bound`]): the moment its result
/// replaces its job file (inotify; short sleeps where the kernel has none).
fn report_waiting(dir: &JobDir, id: &JobId, wait: (f64, f64)) -> Answer {
    // Watch before the first look: a result written in between is then an event.
    let watcher = if wait.0 > 0.0 { Watcher::new(dir) } else { None };
    let mut answer = status::report(dir, id);
    let deadline = Instant::now() + overtime_wait(&answer).max(wait_bound(&answer, wait));
    while answer.is_running() {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
        else {
            break;
        };
        match &watcher {
            Some(watcher) => watcher.wait(&[id.as_str()], left.min(RECHECK)),
            None => std::thread::sleep(left.min(RUNNING_CHECK)),
        }
        answer = status::report(dir, id);
    }
    // What a running job of our supervisor's is doing (`progress`); nothing else changes.
    if let Report::File(job) = &mut answer {
        async_core::progress::attach(job);
    }
    answer
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

    /// Homes as they would be for a user whose passwd home is `own` and whose $HOME is
    /// `env_home`, with `other` another user's home.
    fn homes(own: &Path, env_home: &Path, other: &Path) -> Homes {
        let entry = |name: &str, uid, home: &Path| user::PasswdEntry {
            name: name.into(),
            uid,
            home: home.display().to_string(),
        };
        Homes {
            passwd: vec![entry("me", 1, own), entry("other", 2, other)],
            own: Some(own.display().to_string()),
            env_home: Some(env_home.display().to_string()),
            ansible_async_dir: None,
        }
    }

    /// Every sample of `tests/protocol/jobfiles/` is reported as `expected.json` says (the async_status
    /// script's own answers are tested against the same files in tests/protocol/jobfiles).
    #[test]
    fn every_sample_job_file_is_reported_as_expected() {
        let jobfiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/protocol/jobfiles");
        let text = fs::read_to_string(jobfiles.join("expected.json")).unwrap();
        let Ok(Value::Object(expected)) = async_core::json::parse(&text) else { panic!("expected.json") };
        let dir = private_dir();
        for (name, expect) in expected {
            fs::copy(jobfiles.join("samples").join(&name), dir.path().join("j123456789012.4242")).unwrap();
            let (r, code) = run_module(&args(dir.path(), json!({"jid": "j123456789012.4242"})));
            assert_eq!(json!(code), expect["code"], "{name}: {r}");
            for (key, value) in expect["status"].as_object().unwrap() {
                assert_eq!(&r[key], value, "{name}: {key} in {r}");
            }
        }
    }

    #[test]
    fn results_built_here_carry_invocation_when_ansible_asks() {
        let dir = private_dir();
        let asked = |more: Value| {
            let mut value = json!({"jid": "j1.1", "_ansible_inject_invocation": true});
            value.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
            args(dir.path(), value)
        };
        let module_args = |mode| json!({"module_args": {"_async_dir": dir.path().to_str().unwrap(), "jid": "j1.1", "mode": mode}});
        // Not found, in either mode.
        let (r, _) = run_module(&asked(json!({})));
        assert_eq!((&r["msg"], &r["invocation"]), (&json!("could not find job"), &module_args("status")));
        let (r, _) = run_module(&asked(json!({"mode": "cleanup"})));
        assert_eq!(r["invocation"], module_args("cleanup"));
        // A job file's own content is printed as it is; a cleanup is built here.
        fs::write(dir.path().join("j1.1"), r#"{"rc": 0, "invocation": {"module_args": {"x": 1}}}"#).unwrap();
        let (r, _) = run_module(&asked(json!({})));
        assert_eq!(r["invocation"], json!({"module_args": {"x": 1}}));
        let (r, _) = run_module(&asked(json!({"mode": "cleanup"})));
        assert_eq!(r["invocation"], module_args("cleanup"));
        // Not asked (ansible-core's default, and every version before 2.21): none.
        fs::write(dir.path().join("j1.1"), "").unwrap();
        let (r, _) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert!(r.get("invocation").is_none(), "{r}");
        let (r, _) = run_module(&asked(json!({})));
        assert_eq!(r["invocation"], module_args("status"));
    }

    #[test]
    fn a_poll_of_a_job_past_its_limit_waits_for_its_end_but_not_up_to_its_deadline() {
        let dir = private_dir();
        let job = dir.path().join("j1.1");
        let me = ProcessStamp::current().unwrap();
        let running = |started_ago: f64, limit: u64, deadline: u64| {
            let started_at = async_core::clock::now() - started_ago;
            let marker = json!({"started": true, "finished": false, "ansible_job_id": "j1.1", "supervisor": me,
                                "started_at": started_at, "time_limit": limit, "deadline": deadline});
            fs::write(&job, marker.to_string()).unwrap();
        };
        let poll = || run_module(&args(dir.path(), json!({"jid": "j1.1"}))).0;
        // Within its limit: "running".
        running(1.0, 6, 11);
        let r = poll();
        assert_eq!(r["finished"], false, "{r}");
        // Past it, ending just before its deadline: `async: 1` (deadline 2 s), polled at 1.2 s,
        // still says "running" (how long each case waits: the test below).
        running(1.2, 1, 2);
        assert_eq!(poll()["finished"], false);
        // Past it, and the job ends while the poll waits: reported at once, finished.
        running(6.2, 6, 11);
        let writer = std::thread::spawn({
            let job = job.clone();
            move || {
                std::thread::sleep(Duration::from_millis(300));
                fs::write(&job, r#"{"rc": 0}"#).unwrap();
            }
        });
        let r = poll();
        writer.join().unwrap();
        assert_eq!((&r["finished"], &r["rc"]), (&json!(true), &json!(0)));
        // A job ansible's own wrapper started records no limit: "running".
        fs::write(&job, r#"{"started": 1, "finished": 0, "ansible_job_id": "j1.1"}"#).unwrap();
        assert_eq!(poll()["finished"], 0);
    }

    #[test]
    fn how_long_a_poll_waits_for_a_job_past_its_limit() {
        let running = |limit: u64, deadline: u64, elapsed: f64| {
            Report::File(json!({"started": true, "finished": false, "time_limit": limit,
                                "deadline": deadline, "elapsed": elapsed}))
        };
        let wait = |report| overtime_wait(&report).as_secs_f64();
        // Within its limit, or no limit: none.
        assert_eq!(wait(running(6, 11, 1.0)), 0.0);
        assert_eq!(wait(running(0, 0, 100.0)), 0.0);
        // Past it: until END_MARGIN before its deadline, at most OVERTIME_WAIT.
        assert!((wait(running(1, 2, 1.2)) - (2.0 - 1.2 - END_MARGIN)).abs() < 1e-9);
        assert_eq!(wait(running(6, 11, 6.2)), OVERTIME_WAIT);
        assert_eq!(wait(running(1, 2, 1.9)), 0.0);
        // A finished job, or a stock wrapper's file without the figures: none.
        assert_eq!(wait(Report::File(json!({"rc": 0, "time_limit": 1, "deadline": 2, "elapsed": 1.5}))), 0.0);
        assert_eq!(wait(Report::File(json!({"started": 1, "finished": 0}))), 0.0);
    }

    #[test]
    fn a_call_that_asks_to_wait_answers_when_the_job_ends_within_its_bounds() {
        let dir = private_dir();
        let job = dir.path().join("j1.1");
        let me = ProcessStamp::current().unwrap();
        let running = |limit: u64, deadline: u64| {
            let started_at = async_core::clock::now() - 1.0;
            let marker = json!({"started": true, "finished": false, "ansible_job_id": "j1.1", "supervisor": me,
                                "started_at": started_at, "time_limit": limit, "deadline": deadline});
            fs::write(&job, marker.to_string()).unwrap();
        };
        let poll = |wait: Value| {
            let started = Instant::now();
            let (r, _) =
                run_module(&args(dir.path(), json!({"jid": "j1.1", "_wait": wait, "_wait_reserve": 30})));
            (r, started.elapsed())
        };
        // The job ends 300 ms into a wait of up to 20 s: answered then, finished (the result is
        // renamed over the job file, as the supervisor writes it).
        running(600, 605);
        let writer = std::thread::spawn({
            let (job, tmp) = (job.clone(), dir.path().join(".j1.1.tmp"));
            move || {
                std::thread::sleep(Duration::from_millis(300));
                fs::write(&tmp, r#"{"rc": 0}"#).unwrap();
                fs::rename(&tmp, &job).unwrap();
            }
        });
        let (r, took) = poll(json!(20));
        writer.join().unwrap();
        assert_eq!((&r["finished"], &r["rc"]), (&json!(true), &json!(0)), "{r}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        // Less than the reserve and the margin left before the deadline: no wait.
        running(30, 31);
        let (r, took) = poll(json!(20));
        assert!(r["finished"] == false && took < Duration::from_secs(2), "{r} {took:?}");
        // A wait bounded by `_wait` itself: answered "running" after it.
        running(600, 605);
        let (r, took) = poll(json!(0.3));
        assert!(r["finished"] == false && took >= Duration::from_millis(300), "{r} {took:?}");
        // Not asked, or a job ansible's own wrapper started (no deadline): answered at once.
        let (_, took) = poll(json!(0));
        assert!(took < Duration::from_secs(2), "{took:?}");
        fs::write(&job, r#"{"started": 1, "finished": 0, "ansible_job_id": "j1.1"}"#).unwrap();
        let (r, took) = poll(json!(20));
        assert!(r["finished"] == 0 && took < Duration::from_secs(2), "{r} {took:?}");
    }

    #[test]
    fn wait_arguments_are_numbers_of_seconds() {
        let err = |v: Value| {
            let Value::Object(map) = v else { panic!() };
            parse_args(&ModuleArgs::new(map)).unwrap_err()
        };
        assert_eq!(
            err(json!({"jid": "j1", "_wait": "5"})),
            "argument '_wait' must be a number of seconds (0 or more), got: \"5\""
        );
        assert!(err(json!({"jid": "j1", "_wait_reserve": -1})).ends_with("got: -1"));
        assert!(err(json!({"jid": "j1", "_wait": true})).ends_with("got: true"));
        let ok =
            parse_args(&ModuleArgs::new(json!({"jid": "j1", "_wait": 2.5}).as_object().unwrap().clone()));
        assert_eq!(ok.unwrap().wait, (2.5, 0.0));
    }

    #[test]
    fn a_status_call_renews_a_running_job_s_lease_and_touches_nothing_else() {
        let dir = private_dir();
        let job = dir.path().join("j1.1");
        let me = ProcessStamp::current().unwrap();
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(600);
        let set_old = || fs::File::options().write(true).open(&job).unwrap().set_modified(long_ago).unwrap();
        let age = || job.metadata().unwrap().modified().unwrap().elapsed().unwrap_or_default();
        let marker = |lease: Value| json!({"started": true, "finished": false, "ansible_job_id": "j1.1", "supervisor": me, "lease": lease});
        fs::write(&job, marker(json!(30)).to_string()).unwrap();
        set_old();
        run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert!(age() < Duration::from_secs(60), "the lease was not renewed");
        // No lease, or a finished job: the file's time stays.
        for content in [marker(json!(null)).to_string(), r#"{"rc": 0}"#.to_string()] {
            fs::write(&job, content).unwrap();
            set_old();
            run_module(&args(dir.path(), json!({"jid": "j1.1"})));
            assert!(age() > Duration::from_secs(500));
        }
    }

    #[test]
    fn every_answer_names_the_job_file_with_the_async_dir_expanded() {
        // ansible-async-rs's action plugin passes `~/...` as it is: the answers name the file
        // under the passwd home, as ansible's own action names it after its `echo ~`.
        let home = user::effective_home().unwrap();
        let name = format!(".ansible_async-unit-{}", std::process::id());
        let expected = Path::new(&home).join(&name).join("j1.1").display().to_string();
        for (mode, key) in [("status", "results_file"), ("cleanup", "erased")] {
            let Value::Object(map) = json!({"jid": "j1.1", "mode": mode, "_async_dir": format!("~/{name}")})
            else {
                panic!()
            };
            let (r, code) = run_module(&parse_args(&ModuleArgs::new(map)).unwrap());
            assert_eq!(
                (code, &r["msg"], &r[key]),
                (1, &json!("could not find job"), &json!(expected)),
                "{r}"
            );
        }
        assert!(!Path::new(&home).join(&name).exists(), "nothing is made in the home");
        // A finished job's answer names its file too.
        let dir = private_dir();
        fs::write(dir.path().join("j1.1"), r#"{"rc": 0}"#).unwrap();
        let (r, _) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(r["results_file"], json!(dir.path().join("j1.1").display().to_string()));
    }

    #[test]
    fn unknown_job_is_failed_and_finished_and_names_the_folders_searched() {
        let dir = private_dir();
        let (r, code) = run_module(&args(dir.path(), json!({"jid": "j1.1"})));
        assert_eq!(code, 1);
        assert_eq!((&r["failed"], &r["started"], &r["finished"]), (&json!(true), &json!(true), &json!(true)));
        assert_eq!(r["ansible_job_id"], "j1.1");
        assert_eq!(r["msg"], "could not find job");
        assert_eq!(r["searched"], json!([dir.path().to_str().unwrap()]));
        // A missing async dir is an unknown job too, and is not created.
        let gone = dir.path().join("nope");
        let (r, _) = run_module(&args(&gone, json!({"jid": "j1.1"})));
        assert!(r["msg"].as_str().unwrap().starts_with("could not find job"), "{r}");
        assert!(!gone.exists());
    }

    #[test]
    fn a_job_the_wrapper_wrote_under_the_passwd_home_is_found_from_the_env_home() {
        // Local connection, controller HOME=/h/env: ansible passes /h/env/.ansible_async; the
        // wrapper wrote under the passwd home.
        let tmp = private_dir();
        let (own, env, other) = (tmp.path().join("own"), tmp.path().join("env"), tmp.path().join("other"));
        let homes = homes(&own, &env, &other);
        fs::create_dir_all(own.join(".ansible_async")).unwrap();
        fs::write(own.join(".ansible_async/j1.1"), r#"{"rc": 0}"#).unwrap();
        fs::write(own.join(".ansible_async/j1.1.log"), "t invoked\n").unwrap();
        let passed = env.join(".ansible_async");
        let (r, code) = run_with(&args(&passed, json!({"jid": "j1.1"})), || homes.clone());
        assert_eq!((code, &r["rc"], &r["finished"]), (0, &json!(0), &json!(true)), "{r}");
        // And the other way round: the job under $HOME (a stock wrapper), ansible passing the
        // passwd home; and from another user's home (become on a local connection).
        fs::create_dir_all(env.join(".ansible_async")).unwrap();
        fs::write(env.join(".ansible_async/j2.2"), r#"{"rc": 2}"#).unwrap();
        for passed in [own.join(".ansible_async"), other.join(".ansible_async")] {
            let (r, _) = run_with(&args(&passed, json!({"jid": "j2.2"})), || homes.clone());
            assert_eq!(r["rc"], 2, "{r}");
        }
        // Cleanup removes every trace, wherever it is.
        fs::write(env.join(".ansible_async/j1.1"), r#"{"rc": 0}"#).unwrap();
        let (r, code) = run_with(&args(&passed, json!({"jid": "j1.1", "mode": "cleanup"})), || homes.clone());
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["erased"], passed.join("j1.1").to_str().unwrap(), "the one ansible asked for first");
        assert!(!own.join(".ansible_async/j1.1").exists() && !env.join(".ansible_async/j1.1").exists());
        assert!(!own.join(".ansible_async/j1.1.log").exists());
        let (r, code) = run_with(&args(&passed, json!({"jid": "j1.1"})), || homes.clone());
        assert_eq!(code, 1);
        assert_eq!(r["msg"], "could not find job");
        let searched: Vec<&str> =
            r["searched"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for dir in [&passed, &own.join(".ansible_async"), &env.join(".ansible_async")] {
            assert!(searched.contains(&dir.to_str().unwrap()), "{r}");
        }
    }

    #[test]
    fn a_refused_async_dir_is_reported_when_the_job_is_nowhere_else() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let tmp = private_dir();
        let (own, env, other) = (tmp.path().join("own"), tmp.path().join("env"), tmp.path().join("other"));
        let homes = homes(&own, &env, &other);
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("j1.1"), r#"{"rc": 0}"#).unwrap();
        let link = tmp.path().join("link");
        symlink(&real, &link).unwrap();
        let (r, code) = run_with(&args(&link, json!({"jid": "j1.1"})), || homes.clone());
        assert_eq!(code, 1);
        assert!(r["msg"].as_str().unwrap().contains("symbolic link"), "{r}");
        let (r, _) = run_with(&args(&link, json!({"jid": "j1.1", "mode": "cleanup"})), || homes.clone());
        assert!(r["msg"].as_str().unwrap().contains("symbolic link"), "{r}");
        assert!(real.join("j1.1").exists());
        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let (r, _) = run_with(&args(&real, json!({"jid": "j1.1"})), || homes.clone());
        assert!(r["msg"].as_str().unwrap().contains("other users can write"), "{r}");
        // A file in place of the dir.
        let (r, _) = run_with(&args(&real.join("j1.1"), json!({"jid": "j1.1"})), || homes.clone());
        assert!(r["msg"].as_str().unwrap().contains("not a directory"), "{r}");
        // Another user's dir (only root can make one here).
        if user::euid() == 0 {
            fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
            let (r, code) =
                run_with(&args(&real, json!({"jid": "j1.1", "mode": "cleanup"})), || homes.clone());
            assert_eq!(code, 1);
            assert!(r["msg"].as_str().unwrap().contains("owned by uid 65534"), "{r}");
            assert!(real.join("j1.1").exists());
        }
    }

    #[test]
    fn candidates_stay_in_the_users_own_homes() {
        let homes = homes(Path::new("/h/own"), Path::new("/h/env"), Path::new("/h/other"));
        let c = homes.own_candidates(Path::new("/h/other/.ansible_async"));
        assert_eq!(c, vec![PathBuf::from("/h/own/.ansible_async"), PathBuf::from("/h/env/.ansible_async")]);
        // A dir under no home has no re-anchored candidate; ANSIBLE_ASYNC_DIR is one.
        assert!(homes.own_candidates(Path::new("/var/tmp/async")).is_empty());
        let with_env = Homes { ansible_async_dir: Some("/var/tmp/a2".into()), ..homes };
        assert_eq!(with_env.own_candidates(Path::new("/var/tmp/async")), vec![PathBuf::from("/var/tmp/a2")]);
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
                            "started_at": 1.0, "time_limit": 30, "supervisor": me});
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
                            "supervisor": gone});
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
        let path = dir.path().join("j1.1").display().to_string();
        assert_eq!(
            r,
            json!({"rc": 3, "failed": true, "msg": "boom", "finished": true, "ansible_job_id": "j1.1",
                   "results_file": path})
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
