//! `ansible-async`: the one native program shipped to managed hosts.
//!
//! A statically linked binary costs its C library and Rust's std once, so the three programs
//! are one, chosen by the name it was run as (`async_job`, or `AnsiballZ_async_job` as
//! ansible names a binary module it copies) or by its first argument
//! (`ansible-async async_wrapper ...`, which is how the launchers in `library/` run it).
//! `library/` (see `library/assemble.sh` here) carries it gzipped inside `async_wrapper`
//! and unpacked as `async_job`; `async_status` is a small script that runs the copy
//! `async_wrapper` left on the host, as `ansible-async async_status --args-json JSON` (ansible
//! writes the arguments into that script; it has no arguments file).

use std::ffi::OsString;
use std::path::Path;

const PROGRAMS: [&str; 3] = ["async_wrapper", "async_status", "async_job"];

fn main() {
    let mut args = std::env::args_os();
    let invoked_as = args.next().unwrap_or_default();
    let mut rest: Vec<OsString> = args.collect();
    let name =
        Path::new(&invoked_as).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_prefix("AnsiballZ_").unwrap_or(&name);
    let program = match PROGRAMS.iter().find(|p| name.starts_with(*p)) {
        Some(program) => program.to_string(),
        None if !rest.is_empty() => rest.remove(0).to_string_lossy().into_owned(),
        None => String::new(),
    };
    match program.as_str() {
        "async_wrapper" => async_wrapper::run(rest),
        "async_status" => async_status::run(rest),
        "async_job" => async_job::run(rest),
        other => {
            eprintln!(
                "ansible-async: unknown program {other:?}\n\
                 usage: ansible-async async_wrapper|async_status|async_job ARGS..."
            );
            std::process::exit(2)
        }
    }
}
