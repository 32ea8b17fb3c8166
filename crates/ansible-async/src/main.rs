//! `ansible-async`: the one native program shipped to managed hosts.
//!
//! A statically linked binary costs its C library and Rust's std once, so the three programs
//! are one, chosen by the name it was run as (`async_job`, or `AnsiballZ_async_job` as
//! ansible names a binary module it copies) or by its first argument
//! (`ansible-async async_wrapper ...`, which is how the launchers in `library/` run it).
//! `library/` (see `library/assemble.sh` here) carries it gzipped inside `async_wrapper`;
//! `async_status` and `async_job` are JSON-args scripts that run the copy `async_wrapper` left
//! on the host, as `ansible-async async_status --args-json JSON` and
//! `ansible-async async_job --args-json JSON` (ansible writes the arguments into those scripts;
//! they have no arguments file).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;

use async_core::Reply;

const PROGRAMS: [&str; 3] = ["async_wrapper", "async_status", "async_job"];

fn main() {
    run(std::env::args_os().collect()).exit()
}

/// The reply of the program `args` names; printed once, by `main`.
fn run(mut args: Vec<OsString>) -> Reply {
    let invoked_as = if args.is_empty() { OsString::new() } else { args.remove(0) };
    let name =
        Path::new(&invoked_as).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_prefix("AnsiballZ_").unwrap_or(&name);
    let program = match PROGRAMS.iter().find(|p| name.starts_with(*p)) {
        Some(program) => program.to_string(),
        None if !args.is_empty() => args.remove(0).to_string_lossy().into_owned(),
        None => String::new(),
    };
    match program.as_str() {
        "async_wrapper" => async_wrapper::run(args),
        "async_status" => async_status::run(args),
        "async_job" => async_job::run(args),
        other => Reply::error(
            format!(
                "ansible-async: unknown program {}\n\
                 usage: ansible-async async_wrapper|async_status|async_job ARGS...\n",
                async_core::rules::quote(other)
            ),
            2,
        ),
    }
}
