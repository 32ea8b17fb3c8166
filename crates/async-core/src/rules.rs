//! The job protocol's texts and bounds that the Python parts of `library/` (the portable
//! fallback and `async_status`'s own answer) need too. They are defined here once and used by
//! the programs; `protocol-rules` (crates/protocol-rules) prints them as Python when
//! `assemble.sh` builds `library/`, so no script carries a copy typed by hand.
//!
//! A message is a template: `{name}` marks a value, filled by [`fill`] here and by Python's
//! `str.format` there. A value shown quoted is written by [`quote`]: JSON's string syntax,
//! which Python's `json.dumps(value, ensure_ascii=False)` writes byte for byte the same.

use std::fmt::Display;

/// Where ansible keeps async job files when neither `ANSIBLE_ASYNC_DIR` nor
/// `ansible_async_dir` says otherwise.
pub const DEFAULT_ASYNC_DIR: &str = "~/.ansible_async";
/// The environment variable that names the async dir; ansible sets it from
/// `ansible_async_dir` for async_wrapper.
pub const ASYNC_DIR_ENV: &str = "ANSIBLE_ASYNC_DIR";

// Job ids (see `JobId`).
pub const JOB_ID_MAX_LEN: usize = 128;
pub const INVALID_JOB_ID: &str = "invalid job id {id}: {why}";
pub const JOB_ID_EMPTY: &str = "it is empty";
pub const JOB_ID_TOO_LONG: &str = "it is longer than {max} characters";
pub const JOB_ID_HIDDEN: &str = "it starts with '.'";
pub const JOB_ID_SLASH: &str = "it contains '/'";
pub const JOB_ID_CHARS: &str = "only letters, digits, '.', '_' and '-' are allowed";

// The async dir (see `JobDir`).
pub const CREATE_DIR: &str = "could not create directory: {path} - {error}";
pub const UNSAFE_DIR: &str = "refusing to use async directory {path}: {why}";
pub const DIR_SYMLINK: &str = "it is a symbolic link";
pub const DIR_NOT_A_DIR: &str = "it is not a directory";
pub const DIR_NOT_OWNED: &str = "it is owned by uid {uid}, not by the running user (uid {euid})";
pub const DIR_WRITABLE: &str = "other users can write to it (mode {mode})";

// The settings a task's environment gives async_wrapper.
pub const GRACE_ENV: &str = "ASYNC_WRAPPER_KILL_GRACE";
pub const DEFAULT_GRACE_SECS: u64 = 2;
pub const MAX_GRACE_SECS: u64 = 3600;
pub const BAD_GRACE: &str = "{env} must be a number of seconds from 0 to {max}, got: {value}";
pub const LEASE_ENV: &str = "ASYNC_WRAPPER_LEASE";
/// The longest lease taken, as the longest time limit: 10 years.
pub const MAX_LEASE: u64 = MAX_TIME_LIMIT;
/// The value of [`LEASE_ENV`] (any case; `0` too) that takes no lease: a task that must outlive
/// a play whose `environment:` gives every task one.
pub const LEASE_OFF: &str = "off";
pub const BAD_LEASE: &str =
    "{env} must be a whole number of seconds from 1 to {max}, or 0 or off for no lease, got: {value}";
pub const EXACT_ENV: &str = "ASYNC_WRAPPER_EXACT_LIMIT";
pub const BAD_EXACT: &str = "{env} must be 1 (end the job at its time limit exactly) or 0, got: {value}";
/// The words a yes-or-no setting takes, lower-cased and trimmed (YAML's `true` reaches the
/// environment as `True`).
pub const SETTING_YES: [&str; 4] = ["1", "true", "yes", "on"];
pub const SETTING_NO: [&str; 5] = ["", "0", "false", "no", "off"];
/// The file whose last lines a running job's progress shows (see `progress`).
pub const TAIL_ENV: &str = "ASYNC_WRAPPER_TAIL";
/// Where a result that holds secrets goes (see `held`): `memory` (the default: its
/// supervisor's memory until it is collected) or `disk` (the job file, as before).
pub const SECRETS_ENV: &str = "ASYNC_WRAPPER_SECRETS";
pub const SECRETS_MEMORY: &str = "memory";
pub const SECRETS_DISK: &str = "disk";
pub const BAD_SECRETS: &str =
    "{env} must be memory (a result that holds secrets stays in its supervisor's memory \
until it is collected) or disk (it is written to the job file), got: {value}";
/// The units of a duration (`async_job gc --older-than`, [`RETAIN_ENV`]): seconds each; a
/// number without one is seconds.
pub const DURATION_UNITS: [(&str, u64); 5] =
    [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)];
/// Finished jobs older than this are removed from the async dir at each launch.
pub const RETAIN_ENV: &str = "ASYNC_WRAPPER_RETAIN";
pub const BAD_RETAIN: &str =
    "{env} must be a duration like 3600, 90s, 15m, 2h, 7d or 1w (finished jobs older than that are removed), got: {value}";

// async_wrapper's command line.
pub const WRAPPER_USAGE: &str =
    "usage: async_wrapper <jid> <time_limit> <modulescript> <argsfile> [-preserve_tmp]  \
or: async_wrapper <jid> <time_limit> <preserve_tmp> <module_path> <command>...  \
Humans, do not call directly!";
/// The longest time limit taken: 10 years. Anything longer is a mistake, not a plan.
pub const MAX_TIME_LIMIT: u64 = 10 * 36525 * 864;
pub const BAD_TIME_LIMIT: &str =
    "the time limit must be a whole number of seconds from 0 (no limit) to {max} (10 years), got: {value}";

/// The first ansible-core (major, minor) that calls async_wrapper with the whole command
/// (`JID LIMIT true|false MODULE CMD...`); earlier ones give the module and its arguments file.
pub const COMMAND_PROTOCOL_SINCE: (u32, u32) = (2, 21);
/// The first patch of each ansible-core minor whose own wrapper has the halving watchdog;
/// every minor after the last one listed has it from its start, every one before the first
/// has the trailing one (see the wrapper's `deadline` module).
pub const HALVING_SINCE: [(u32, u32, u32); 4] = [(2, 18, 19), (2, 19, 12), (2, 20, 8), (2, 21, 2)];

/// How the job log names the rule that ends a job at its time limit: the limit itself, or
/// when ansible-core's own wrapper would, with its halving or its trailing watchdog.
pub const LIMIT_RULE_EXACT: &str = "exact";
pub const LIMIT_RULE_HALVING: &str = "stock-halving";
pub const LIMIT_RULE_TRAILING: &str = "stock-trailing";
/// The step of ansible-core's watchdog loop, in seconds.
pub const WATCHDOG_STEP: u64 = 5;

/// The `msg` ansible-core writes when the time limit ends a job; users match on it.
pub const TIMEOUT_MSG: &str = "Timeout exceeded";

// The results the supervisor writes (see `record`), ansible-core's where it has one.
pub const TERMINATED_ON_REQUEST: &str =
    "the job was terminated on request (async_job terminate) before its module finished";
pub const STOPPED_BY_SIGNAL: &str =
    "the job was ended before its module finished: async_wrapper received {signal}";
pub const LEASE_EXPIRED: &str =
    "the job was ended: nothing asked for it for {lease} s, its lease ({env}), so the \
play that started it is taken to be gone; {when}";
pub const LAST_CALL_AT: &str = "the last status call on it was at {at}";
pub const NO_CALL_SINCE_START: &str = "no status call on it came since it started";
pub const NOT_WRITTEN: &str = "could not write the module's result: {error}";
pub const NO_JSON_RESULT: &str = "The module did not return a JSON result: {why}";
pub const NO_JSON_KILLED: &str = " (it was killed by signal {number}, {signal})";
pub const NO_JSON_EXITED: &str = " (it exited with status {code})";
pub const NO_JSON_START: &str = "No start of json char found";
pub const NO_JSON_END: &str = "No end of json char found";
pub const NOT_VALID_JSON: &str = "module output is not valid JSON: {error}";
pub const NOT_AN_OBJECT: &str = "module output is not a JSON object";
pub const NOT_CAPTURED: &str = "could not capture the module's output: {error}";
pub const NOT_READ: &str = "could not read the module's output: {error}";
pub const EMPTY_COMMAND: &str = "the module command is empty";
/// An OS error as Python words an `OSError`, which is what ansible-core's wrapper reports
/// when the module cannot run; with the program it could not start.
pub const OS_ERROR: &str = "[Errno {errno}] {error}";
pub const NOT_RUN: &str = "[Errno {errno}] {error}: '{program}'";

// Why no job started, in the wrapper's failed reply.
pub const FORK_FAILED: &str = "fork #{n} failed: {error}";
pub const NO_DEV_NULL: &str = "could not redirect stdio to /dev/null: {error}";
pub const JOB_FILE_NOT_WRITTEN: &str = "could not write the job file: {error}";
pub const NOT_STARTED: &str = "the job's supervisor exited before the job started";
/// The warning ansible-core adds for text after a module's JSON; users match on it.
pub const JUNK_WARNING: &str = "Module invocation had junk after the JSON data: ";

/// How a finished job's result tells its state, in this order: the first of these keys that
/// is `true` names it; then `failed` (`true` or `1`) with [`TIMEOUT_MSG`] is
/// [`STATE_TIMED_OUT`], `failed` alone [`STATE_FAILED`], and anything else [`STATE_FINISHED`].
pub const STATE_FLAGS: [(&str, &str); 2] =
    [("lease_expired", STATE_EXPIRED), ("terminated", STATE_TERMINATED)];
pub const STATE_EXPIRED: &str = "expired";
pub const STATE_TERMINATED: &str = "terminated";
pub const STATE_TIMED_OUT: &str = "timed_out";
pub const STATE_FAILED: &str = "failed";
pub const STATE_FINISHED: &str = "finished";

// The job log's events (see `log`): a template each, the event's word first.
pub const LOG_INVOKED: &str =
    "invoked protocol={protocol} time_limit={time_limit} grace={grace}{limits} module={module}";
pub const LOG_INVOKED_DEADLINE: &str = " deadline={deadline} limit_rule={rule}";
pub const LOG_INVOKED_LEASE: &str = " lease={lease}";
pub const LOG_STARTED: &str = "started pid={pid}";
pub const LOG_EXITED: &str = "exited status={code}";
pub const LOG_KILLED: &str = "killed signal={signal}";
/// A wait status that is neither (stopped or continued: waitpid without WUNTRACED or WCONTINUED
/// never says so).
pub const LOG_ENDED_OTHERWISE: &str = "ended without an exit status or a signal";
pub const LOG_TIMEOUT: &str = "timeout time_limit={time_limit} limit_rule={rule}";
pub const LOG_LEASE_EXPIRED: &str = "lease_expired lease={lease} last_call={last}";
pub const LOG_TERMINATE: &str = "terminate requested";
pub const LOG_STOPPED: &str = "stopped signal={signal}";
pub const LOG_ENDED: &str = "ended signal={signal}";
pub const LOG_TMP_REMOVED: &str = "tmp_removed dir={dir}";
pub const LOG_RESULT: &str = "result state={state}";
pub const LOG_NOT_WRITTEN: &str = "result not written error={error}";
/// The result line of a job whose result is held in its supervisor's memory (see `held`).
pub const LOG_RESULT_HELD: &str = "result state={state} held={socket} reason={reason}";
/// A result that holds secrets written to disk all the same, and why.
pub const LOG_SECRETS_ON_DISK: &str = "secrets_on_disk reason={reason} why={why}";
pub const SECRETS_ON_DISK_FALLBACK: &str = "the portable fallback holds no result in memory";
/// `ASYNC_WRAPPER_RETAIN` at a launch: what it removed (or why it could not look).
pub const LOG_RETAIN: &str = "retain older_than={age} removed={removed}";
pub const LOG_RETAIN_FAILED: &str = "retain older_than={age} error={error}";
/// The notice sent to syslog as the job starts, as ansible-core's wrapper sends it.
pub const SYSLOG_INVOKED: &str = "{id} Invoked with {args}";

// async_status's arguments, every one it takes besides ansible's own `_ansible_*` (its messages
// name those without a leading `_`, as ansible-core's module, which keeps `_async_dir` to
// itself), and `mode`'s values.
pub const STATUS_ARGS: [&str; 5] = ["jid", "mode", "_async_dir", "_wait", "_wait_reserve"];
pub const STATUS_MODES: [&str; 2] = ["cleanup", "status"];
/// `_wait`: how long (seconds) a status call on a running job waits for its end before it
/// answers "running" (this project's action plugin passes it in the `poll:` loop; 0 or absent:
/// answer at once). `_wait_reserve`: seconds the caller still needs before the job's deadline
/// (its remaining polls), so that a wait never pushes its last poll past the job's end by its
/// time limit. Both JSON numbers, 0 or more.
pub const WAIT_ARGS: [&str; 2] = ["_wait", "_wait_reserve"];
pub const BAD_WAIT: &str = "argument '{key}' must be a number of seconds (0 or more), got: {value}";

/// The arguments async_status's messages name: [`STATUS_ARGS`] but ansible's own.
pub fn status_args_shown() -> Vec<&'static str> {
    STATUS_ARGS.into_iter().filter(|arg| !arg.starts_with('_')).collect()
}

// async_status's answers.
/// The key whose presence at the top level of a job file means the job has not ended, as
/// in ansible-core's async_status (a module result's own nested `started` does not count).
pub const RUNNING_KEY: &str = "started";
pub const NOT_FOUND: &str = "could not find job";
pub const UNPARSABLE: &str = "Could not parse job output: {data}";
pub const UNREADABLE: &str = "could not read job file: {error}";
pub const UNREMOVABLE: &str = "could not remove job file: {error}";
/// The `msg` of a held job file (see `held`): what a reader that does not know it reports.
pub const HELD_MSG: &str = "the result holds secrets (no_log): only this project's async_status reads it, \
from the job's supervisor, which keeps it in memory until the job is cleaned up";
/// A held job whose supervisor is gone.
pub const HELD_LOST: &str =
    "the job's result was lost: it held secrets (no_log), so it was kept only in the \
memory of its supervisor (async_wrapper, pid {pid}), which is no longer running; the host may have rebooted \
or the process was killed";
/// A held job whose supervisor runs but did not answer.
pub const HELD_UNREACHABLE: &str =
    "could not fetch the job's result, which holds secrets, from its supervisor (pid {pid}): {error}";

/// The prefix of the arguments ansible adds to every module's own (`_ansible_check_mode`...):
/// never refused as unknown.
pub const ANSIBLE_ARG_PREFIX: &str = "_ansible_";

// A module's arguments, refused as ansible-core's AnsibleModule words it.
pub const ARGS_NOT_OBJECT: &str = "the module arguments are not a JSON object";
/// Without the parser's own words: no two JSON parsers word an error alike, and ansible always
/// writes valid JSON (only a person running a module by hand sees this).
pub const ARGS_NOT_JSON: &str = "the module arguments are not valid JSON";
pub const UNSUPPORTED: &str =
    "Unsupported parameters for ({module}) module: {keys}. Supported parameters include: {known}.";
pub const NOT_A_STRING: &str = "argument '{key}' must be a string, not {value}";
pub const MISSING: &str = "missing required arguments: {keys}";
pub const NOT_A_CHOICE: &str = "value of {key} must be one of: {choices}, got: {value}";

/// `template` with each `{name}` of `values` replaced by its value, in one pass (a value
/// that holds `{name}` is not filled again); a `{...}` without a value stays as it is.
pub fn fill(template: &str, values: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| (close, v))
        });
        match value {
            Some((close, value)) => {
                out.push_str(&value.to_string());
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as a quoted JSON string: how messages show a value the user gave.
pub fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_each_name_once() {
        let msg = fill(INVALID_JOB_ID, &[("id", &quote("{why}")), ("why", &JOB_ID_CHARS)]);
        assert_eq!(msg, "invalid job id \"{why}\": only letters, digits, '.', '_' and '-' are allowed");
        assert_eq!(fill("{a} {b} {", &[("a", &1)]), "1 {b} {");
    }

    #[test]
    fn quotes_as_python_json_dumps_without_ensure_ascii() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
