//! `async_job` as a command for a person logged into the host.

use std::fmt::Write;

use async_core::rules::quote;
use async_core::{clock, status, JobDir, JobInfo, JobState, Reply};
use serde_json::{json, Value};

use crate::jobs::{self, Error, Selection};
use crate::wait::{self, Watch};

pub const HELP: &str = "\
async_job - list, inspect, terminate and clean up ansible async jobs on this host

usage:
  async_job [options] list                      every job with its state, running first
  async_job [options] show JID [--follow]       a job's result and log (--follow: its log and
                                                progress as it runs, until it ends)
  async_job [options] top                       the jobs and what the running ones are doing,
                                                every second (q or Ctrl-C leaves)
  async_job [options] terminate JID...          end running jobs (SIGTERM, grace, SIGKILL)
  async_job [options] terminate --all           end every running job, or only those
                         [--older-than AGE]     that started more than AGE ago
                         [--module NAME]        and run module NAME (e.g. command)
                         [--dry-run]            (say what would be ended)
  async_job [options] gc --older-than AGE       remove finished jobs older than AGE
                         [--dry-run]            (AGE: 3600, 90s, 15m, 2h, 1d, 1w)
  async_job [options] wait JID...               wait until every job has ended, print each
                         [--timeout SECONDS]    result; on timeout the jobs keep running
                         [--cleanup]            then remove the files of the jobs that ended
options:
  --async-dir DIR   the async dir (default: $ANSIBLE_ASYNC_DIR, else ~/.ansible_async)
  --json            print JSON instead of text
  -h, --help        this help

States: running, lost (its supervisor is gone: no result will come), finished, failed,
timed_out, terminated, expired (its lease ran out), damaged (the job file is not JSON).

exit codes: 0 done (also when there was nothing to do), 1 the operation failed
            (wait: a job failed, or the timeout came first), 2 bad usage or input,
            3 no such job
";

/// Exit codes a script can rely on.
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_FOUND: i32 = 3;

struct Options {
    dir: JobDir,
    json: bool,
    dry_run: bool,
    cleanup: bool,
    older_than: Option<String>,
    timeout: Option<String>,
    all: bool,
    module: Option<String>,
    follow: bool,
    words: Vec<String>,
}

/// The command's output and exit code.
pub fn run(args: &[String]) -> Reply {
    let options = match parse(args) {
        Ok(Some(options)) => options,
        Ok(None) => return Reply::text(HELP, 0),
        Err(msg) => return Reply::error(format!("async_job: {msg}\n(see async_job --help)\n"), EXIT_USAGE),
    };
    match execute(&options) {
        Ok((text, code)) => Reply::text(text, code),
        Err(e) => {
            let code = match e {
                Error::Invalid(_) => EXIT_USAGE,
                Error::NotFound(_) => EXIT_NOT_FOUND,
                Error::Failed(_) => EXIT_FAILED,
            };
            if options.json {
                Reply::json(&json!({"failed": true, "msg": e.to_string()}), code)
            } else {
                Reply::error(format!("async_job: {e}\n"), code)
            }
        }
    }
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        dir: JobDir::from_env(),
        json: false,
        dry_run: false,
        cleanup: false,
        older_than: None,
        timeout: None,
        all: false,
        module: None,
        follow: false,
        words: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        // `--name=value` is `--name value`.
        let (arg, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| match &inline {
            Some(value) => Ok(value.clone()),
            None => args.next().cloned().ok_or_else(|| format!("{name} needs a value")),
        };
        match arg {
            "-h" | "--help" | "help" if inline.is_none() => return Ok(None),
            "--json" if inline.is_none() => options.json = true,
            "--dry-run" if inline.is_none() => options.dry_run = true,
            "--cleanup" if inline.is_none() => options.cleanup = true,
            "--all" if inline.is_none() => options.all = true,
            "--follow" | "-f" if inline.is_none() => options.follow = true,
            "--module" => options.module = Some(value("--module")?),
            "--timeout" => options.timeout = Some(value("--timeout")?),
            "--async-dir" => options.dir = JobDir::new(&value("--async-dir")?),
            "--older-than" => options.older_than = Some(value("--older-than")?),
            "--help" | "--json" | "--dry-run" | "--cleanup" | "--all" | "--follow" => {
                return Err(format!("{arg} takes no value"))
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            word => options.words.push(word.to_string()),
        }
    }
    let expected = match options.words.first().map(String::as_str) {
        Some("list") | Some("top") => 1,
        Some("show") => 2,
        Some("terminate") if options.all => 1,
        Some("terminate") if options.words.len() >= 2 => options.words.len(),
        Some("terminate") => return Err("terminate needs job ids, or --all".into()),
        Some("gc") => {
            if options.older_than.is_none() {
                return Err("gc needs --older-than AGE".into());
            }
            1
        }
        Some("wait") if options.words.len() >= 2 => options.words.len(),
        Some("wait") => return Err("wait needs one or more job ids".into()),
        Some(other) => return Err(format!("unknown command {}", quote(other))),
        None => return Err("a command is needed: list, show, top, terminate, gc or wait".into()),
    };
    if options.words.len() != expected {
        return Err(format!("{} takes {} argument(s)", options.words[0], expected - 1));
    }
    Ok(Some(options))
}

/// What the command prints, and its exit code.
fn execute(options: &Options) -> Result<(String, i32), Error> {
    let mut out = Out::default();
    let code = match options.words[0].as_str() {
        "list" => list(options, &mut out)?,
        "top" => {
            crate::view::top(&options.dir)?;
            0
        }
        "show" if options.follow && !options.json => crate::view::follow(&options.dir, &options.words[1])?,
        "show" => show(options, &mut out)?,
        "terminate" if options.all || options.words.len() > 2 => terminate_many(options, &mut out)?,
        "terminate" => terminate(options, &mut out)?,
        "gc" => gc(options, &mut out)?,
        "wait" => wait_for(options, &mut out)?,
        _ => unreachable!("checked by parse"),
    };
    Ok((out.0, code))
}

/// What a command prints, line by line.
#[derive(Default)]
struct Out(String);

impl Out {
    fn line(&mut self, text: impl std::fmt::Display) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "{text}");
    }
}

fn list(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let dir = &options.dir;
    let jobs = jobs::list(dir)?;
    let old = jobs::finished_older_than_a_day(&jobs);
    if options.json {
        let list: Vec<Value> = jobs.iter().map(JobInfo::to_json).collect();
        let dir = dir.path().display().to_string();
        out.line(json!({"async_dir": dir, "jobs": list, "finished_older_than_1d": old}));
    } else {
        out.line(table(&jobs));
        if old > 0 {
            out.line(format!(
                "{old} finished job(s) older than a day (async_job gc --older-than 1d removes them)"
            ));
        }
        for job in &jobs {
            if let Some(progress) = job.progress() {
                out.line(format!("  {}: {}", job.id, crate::view::summary(&progress)));
            }
        }
    }
    Ok(0)
}

fn show(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let dir = &options.dir;
    let (info, lines) = jobs::show(dir, &options.words[1])?;
    let content = match &info.file {
        async_core::JobFile::Object(map) => Value::Object(map.clone()),
        async_core::JobFile::Garbage(text) => json!(text),
        _ => Value::Null,
    };
    if options.json {
        let mut value = info.to_json();
        value["file"] = content;
        value["log"] = json!(lines);
        out.line(async_core::json::to_string(&value));
    } else {
        out.line(table(std::slice::from_ref(&info)));
        out.line(format!("\njob file {}:", dir.job_path(&info.id).display()));
        out.line(async_core::json::to_string_pretty(&content));
        out.line(format!("\nlog {}:", dir.log_path(&info.id).display()));
        out.line(if lines.is_empty() { "(none)".to_string() } else { lines.join("\n") });
    }
    Ok(0)
}

/// `terminate --all`, or several job ids.
fn terminate_many(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let dir = &options.dir;
    let selection = if options.all {
        Selection::Running {
            older_than: options.older_than.as_deref().map(jobs::parse_duration).transpose()?,
            module: options.module.clone(),
        }
    } else {
        Selection::Ids(options.words[1..].to_vec())
    };
    let outcomes = jobs::terminate_many(dir, &selection, options.dry_run)?;
    let answer = crate::module::many_to_json(&dir.path().display().to_string(), &outcomes, options.dry_run);
    if options.json {
        out.line(&answer);
    } else {
        for job in answer["jobs"].as_array().into_iter().flatten() {
            out.line(job["msg"].as_str().unwrap_or_default());
        }
        out.line(answer["msg"].as_str().unwrap_or_default());
    }
    Ok(if answer["failed"] == true { EXIT_FAILED } else { 0 })
}

fn terminate(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let done = jobs::terminate(&options.dir, &options.words[1], options.dry_run)?;
    if options.json {
        out.line(json!({"changed": done.changed, "state_before": done.before.as_str(),
                        "msg": done.msg, "result": done.result}));
    } else {
        out.line(done.msg);
    }
    Ok(0)
}

fn gc(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let older_than = jobs::parse_duration(options.older_than.as_deref().unwrap_or_default())?;
    let done = jobs::gc(&options.dir, older_than, options.dry_run)?;
    if options.json {
        out.line(json!({"changed": !done.removed.is_empty() && !options.dry_run,
                        "removed": done.removed, "kept_running": done.kept_running,
                        "dry_run": options.dry_run}));
    } else {
        let verb = if options.dry_run { "would remove" } else { "removed" };
        for id in &done.removed {
            out.line(format!("{verb} {id}"));
        }
        out.line(format!("{verb} {} job(s); {} running job(s) kept", done.removed.len(), done.kept_running));
    }
    Ok(0)
}

fn wait_for(options: &Options, out: &mut Out) -> Result<i32, Error> {
    let dir = &options.dir;
    let request = wait::Request {
        jids: options.words[1..].to_vec(),
        timeout: wait::parse_timeout(options.timeout.as_ref().map(|t| json!(t)).as_ref())?,
        cleanup: options.cleanup,
        check_mode: false,
        watch: Watch::Inotify,
    };
    let waited = wait::wait(dir, &request)?;
    if options.json {
        out.line(waited.to_json(dir, options.cleanup));
    } else {
        for (jid, result) in request.jids.iter().zip(&waited.results) {
            out.line(result_line(jid, result));
        }
        out.line(waited.msg());
        if options.cleanup {
            out.line(format!("removed {} job(s)", waited.removed.len()));
        }
    }
    Ok(if waited.is_failed() { EXIT_FAILED } else { 0 })
}

/// One job of a wait, for a person: its id, its state, and its rc and msg when it has them.
fn result_line(jid: &str, result: &Value) -> String {
    let state = match result {
        _ if !status::is_over(result) => "running",
        Value::Object(map)
            if map.get("msg").and_then(Value::as_str).is_some_and(|m| m.starts_with("the job was lost")) =>
        {
            "lost"
        }
        Value::Object(map) => JobState::of_result(map).as_str(),
        _ => "damaged",
    };
    let mut line = format!("{jid}  {state}");
    if let Some(rc) = result.get("rc") {
        line += &format!("  rc={rc}");
    }
    if let Some(msg) = result.get("msg").and_then(Value::as_str) {
        line += &format!("  {}", msg.lines().next().unwrap_or_default());
    }
    line
}

pub(crate) fn table(jobs: &[JobInfo]) -> String {
    if jobs.is_empty() {
        return "no jobs".into();
    }
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|job| {
            [
                job.id.to_string(),
                if job.held { format!("{} (held)", job.state) } else { job.state.to_string() },
                job.started_at.map(clock::utc_timestamp).unwrap_or_else(|| "-".into()),
                job.elapsed().map(|e| format!("{e:.1}s")).unwrap_or_else(|| "-".into()),
                match job.time_limit {
                    // The wrapper was given 0: it imposes no limit.
                    Some(0) => "none".into(),
                    Some(limit) => format!("{limit}s"),
                    None => "-".into(),
                },
                job.module_name().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["JID", "STATE", "STARTED", "ELAPSED", "LIMIT", "MODULE"].map(String::from);
    // Every column but the last, the module (of any length), is padded to its width.
    let last = header.len() - 1;
    let widths: Vec<usize> =
        (0..last).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|r| {
            let cells: Vec<String> =
                r[..last].iter().zip(&widths).map(|(cell, &w)| format!("{cell:<w$}")).collect();
            format!("{}  {}", cells.join("  "), r[last])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Result<Option<Options>, String> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_take_their_value_after_a_space_or_an_equals_sign() {
        for args in [
            &["gc", "--older-than", "1d", "--async-dir", "/a=b"][..],
            &["gc", "--older-than=1d", "--async-dir=/a=b"][..],
        ] {
            let options = words(args).unwrap().unwrap();
            assert_eq!(options.older_than.as_deref(), Some("1d"));
            assert_eq!(options.dir.path(), std::path::Path::new("/a=b"));
        }
        assert!(words(&["--help"]).unwrap().is_none());
        assert_eq!(words(&["list", "--json=yes"]).err().unwrap(), "--json takes no value");
        assert_eq!(words(&["list", "--async-dir"]).err().unwrap(), "--async-dir needs a value");
        assert_eq!(words(&["list", "--bogus=1"]).err().unwrap(), "unknown option --bogus");
    }

    #[test]
    fn usage_errors_go_to_stderr_with_exit_code_2() {
        let reply = run(&["frobnicate".to_string()]);
        assert_eq!((reply.code(), reply.stdout()), (EXIT_USAGE, ""));
        assert_eq!(reply.stderr(), "async_job: unknown command \"frobnicate\"\n(see async_job --help)\n");
        assert_eq!(run(&["--help".to_string()]), Reply::text(HELP, 0));
    }

    #[test]
    fn wait_takes_job_ids_a_timeout_and_cleanup() {
        let options = words(&["wait", "j1.1", "j2.2", "--timeout", "30", "--cleanup"]).unwrap().unwrap();
        assert_eq!(options.words, ["wait", "j1.1", "j2.2"]);
        assert_eq!((options.timeout.as_deref(), options.cleanup), (Some("30"), true));
        assert_eq!(words(&["wait"]).err().unwrap(), "wait needs one or more job ids");
        assert_eq!(words(&["wait", "j1", "--cleanup=1"]).err().unwrap(), "--cleanup takes no value");
    }

    #[test]
    fn wait_prints_a_line_per_job_in_order_and_fails_when_one_failed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().join("async"));
        dir.create().unwrap();
        let id = |j: &str| async_core::JobId::new(j).unwrap();
        dir.write(&id("j1.1"), &json!({"rc": 0})).unwrap();
        dir.write(&id("j2.2"), &json!({"rc": 2, "failed": true, "msg": "non-zero return code"})).unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let args = |extra: &[&str]| {
            let mut a: Vec<String> = ["--async-dir", &d, "wait", "j2.2", "j1.1"].map(String::from).to_vec();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let reply = run(&args(&["--timeout", "5"]));
        assert_eq!(reply.code(), EXIT_FAILED, "{reply:?}");
        assert_eq!(
            reply.stdout(),
            "j2.2  failed  rc=2  non-zero return code\nj1.1  finished  rc=0\n1 of 2 job(s) failed: j2.2\n"
        );
        let reply = run(&args(&["--timeout", "1.5"]));
        assert_eq!(reply.code(), EXIT_USAGE, "{reply:?}");
        let reply = run(&args(&["--json", "--cleanup"]));
        let value: Value = serde_json::from_str(reply.stdout()).unwrap();
        assert_eq!(value["removed"], json!(["j2.2", "j1.1"]));
        assert_eq!(value["results"][1]["ansible_job_id"], "j1.1");
        let reply = run(&args(&[]));
        assert_eq!(reply.code(), EXIT_NOT_FOUND, "{reply:?}");
    }

    #[test]
    fn the_table_pads_every_column_but_the_module() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::at(tmp.path().to_path_buf());
        let id = async_core::JobId::new("j1.2").unwrap();
        dir.write(&id, &json!({"rc": 0})).unwrap();
        dir.log(&id, "invoked protocol=legacy time_limit=0 grace=2 module=/t/m y.py");
        let text = table(&jobs::list(&dir).unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("JID   STATE     STARTED  "), "{text}");
        assert!(lines[0].ends_with("LIMIT  MODULE"), "{text}");
        assert!(lines[1].starts_with("j1.2  finished  20"), "{text}");
        assert!(lines[1].ends_with("none   m y"), "the module's name: {text}");
    }
}
