//! `async_job`: job control for ansible async jobs on one host, which ansible-core lacks.
//!
//! The same program is an ansible module (`async_job: mode=list|terminate|gc|wait`, run by
//! `library/async_job` as `async_job --args-json JSON`, or as `async_job ARGS_FILE`) and a
//! command for a person on the host (`async_job list`, `show JID`, `terminate JID`,
//! `gc --older-than 1d`, `wait JID...`). It reads the job files and logs `async_wrapper`
//! writes; to terminate a job it asks the job's supervisor.

mod cli;
mod jobs;
mod module;
mod view;
mod wait;

use std::ffi::OsString;
use std::path::Path;

use async_core::Reply;

/// Runs `async_job` with `args` (without the program name): as a module when they are
/// `--args-json JSON` or the one argument is an args file, else as a command.
pub fn run(args: Vec<OsString>) -> Reply {
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if let [flag, json] = args.as_slice() {
        if flag == "--args-json" {
            let (result, code) = module::run_json(json);
            return Reply::json(&result, code);
        }
    }
    // ansible passes one argument, the path of its args file; a person passes a command.
    if let [only] = args.as_slice() {
        let is_command =
            matches!(only.as_str(), "list" | "show" | "top" | "terminate" | "gc" | "wait" | "help")
                || only.starts_with('-');
        if !is_command && Path::new(only).is_file() {
            let (result, code) = module::run(Path::new(only));
            return Reply::json(&result, code);
        }
    }
    cli::run(&args)
}
