//! `async_job` as a command for a person logged into the host.

use std::io::Write;

use async_core::{log, JobDir, JobInfo};
use serde_json::{json, Value};

use crate::jobs::{self, Error};

pub const HELP: &str = "\
async_job - list, inspect, terminate and clean up ansible async jobs on this host

usage:
  async_job [options] list                      every job with its state
  async_job [options] show JID                  a job's result and log
  async_job [options] terminate JID             end a running job (SIGTERM, grace, SIGKILL)
  async_job [options] gc --older-than AGE       remove finished jobs older than AGE
                         [--dry-run]            (AGE: 3600, 90s, 15m, 2h, 1d, 1w)
options:
  --async-dir DIR   the async dir (default: $ANSIBLE_ASYNC_DIR, else ~/.ansible_async)
  --json            print JSON instead of text
  -h, --help        this help

States: running, lost (its supervisor is gone: no result will come), finished, failed,
timed_out, terminated, damaged (the job file is not JSON).

exit codes: 0 done (also when there was nothing to do), 1 the operation failed,
            2 bad usage or input, 3 no such job
";

/// Exit codes a script can rely on.
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_FOUND: i32 = 3;

struct Options {
    dir: JobDir,
    json: bool,
    dry_run: bool,
    older_than: Option<String>,
    words: Vec<String>,
}

pub fn run(args: &[String]) -> i32 {
    let options = match parse(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(msg) => {
            eprintln!("async_job: {msg}\n(see async_job --help)");
            return EXIT_USAGE;
        }
    };
    match execute(&options) {
        Ok(()) => 0,
        Err(e) => {
            if options.json {
                println!("{}", json!({"failed": true, "msg": e.to_string()}));
            } else {
                eprintln!("async_job: {e}");
            }
            match e {
                Error::Invalid(_) => EXIT_USAGE,
                Error::NotFound(_) => EXIT_NOT_FOUND,
                Error::Failed(_) => EXIT_FAILED,
            }
        }
    }
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options =
        Options { dir: JobDir::from_env(), json: false, dry_run: false, older_than: None, words: Vec::new() };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(None),
            "--json" => options.json = true,
            "--dry-run" => options.dry_run = true,
            "--async-dir" => options.dir = JobDir::new(&value("--async-dir")?),
            "--older-than" => options.older_than = Some(value("--older-than")?),
            other if other.starts_with("--async-dir=") => options.dir = JobDir::new(&other[12..]),
            other if other.starts_with("--older-than=") => options.older_than = Some(other[13..].to_string()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            word => options.words.push(word.to_string()),
        }
    }
    let expected = match options.words.first().map(String::as_str) {
        Some("list") => 1,
        Some("show" | "terminate") => 2,
        Some("gc") => {
            if options.older_than.is_none() {
                return Err("gc needs --older-than AGE".into());
            }
            1
        }
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("a command is needed: list, show, terminate or gc".into()),
    };
    if options.words.len() != expected {
        return Err(format!("{} takes {} argument(s)", options.words[0], expected - 1));
    }
    Ok(Some(options))
}

fn execute(options: &Options) -> Result<(), Error> {
    let dir = &options.dir;
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock, text: String| {
        let _ = writeln!(out, "{text}");
    };
    match options.words[0].as_str() {
        "list" => {
            let jobs = jobs::list(dir)?;
            if options.json {
                let list: Vec<Value> = jobs.iter().map(JobInfo::to_json).collect();
                print(
                    &mut out,
                    json!({"async_dir": dir.path().display().to_string(), "jobs": list}).to_string(),
                );
            } else {
                print(&mut out, table(&jobs));
            }
        }
        "show" => {
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
                print(&mut out, value.to_string());
            } else {
                print(&mut out, table(std::slice::from_ref(&info)));
                print(&mut out, format!("\njob file {}:", dir.job_path(&info.id).display()));
                print(&mut out, serde_json::to_string_pretty(&content).unwrap_or_default());
                print(&mut out, format!("\nlog {}:", dir.log_path(&info.id).display()));
                print(&mut out, if lines.is_empty() { "(none)".to_string() } else { lines.join("\n") });
            }
        }
        "terminate" => {
            let done = jobs::terminate(dir, &options.words[1], false)?;
            if options.json {
                let value = json!({"changed": done.changed, "state_before": done.before.as_str(),
                                   "msg": done.msg, "result": done.result});
                print(&mut out, value.to_string());
            } else {
                print(&mut out, done.msg);
            }
        }
        "gc" => {
            let older_than = jobs::parse_duration(options.older_than.as_deref().unwrap_or_default())?;
            let done = jobs::gc(dir, older_than, options.dry_run)?;
            if options.json {
                let value = json!({"changed": !done.removed.is_empty() && !options.dry_run,
                                   "removed": done.removed, "kept_running": done.kept_running,
                                   "dry_run": options.dry_run});
                print(&mut out, value.to_string());
            } else {
                let verb = if options.dry_run { "would remove" } else { "removed" };
                for id in &done.removed {
                    print(&mut out, format!("{verb} {id}"));
                }
                print(
                    &mut out,
                    format!(
                        "{verb} {} job(s); {} running job(s) kept",
                        done.removed.len(),
                        done.kept_running
                    ),
                );
            }
        }
        _ => unreachable!("checked by parse"),
    }
    Ok(())
}

fn table(jobs: &[JobInfo]) -> String {
    if jobs.is_empty() {
        return "no jobs".into();
    }
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|job| {
            [
                job.id.to_string(),
                job.state.to_string(),
                job.started_at.map(log::utc_timestamp).unwrap_or_else(|| "-".into()),
                job.elapsed().map(|e| format!("{e:.1}s")).unwrap_or_else(|| "-".into()),
                match job.time_limit {
                    // The wrapper was given 0: it imposes no limit.
                    Some(0) => "none".into(),
                    Some(limit) => format!("{limit}s"),
                    None => "-".into(),
                },
                job.module.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["JID", "STATE", "STARTED", "ELAPSED", "LIMIT", "MODULE"].map(String::from);
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|r| {
            let cells: Vec<String> = (0..5).map(|i| format!("{:<w$}", r[i], w = widths[i])).collect();
            format!("{}  {}", cells.join("  "), r[5])
        })
        .collect::<Vec<_>>()
        .join("\n")
}
