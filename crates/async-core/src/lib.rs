//! The shared model of ansible async jobs on one managed host.
//!
//! `async_wrapper` starts a job, `async_status` reports it and `async_job` lists and ends
//! jobs; they share nothing but the job directory, so everything they must agree on lives
//! here:
//!
//! - [`JobId`]: the validated name of a job (`JID.PID`), safe to use as a file name;
//! - [`JobDir`]: the async directory (`ANSIBLE_ASYNC_DIR`, default `~/.ansible_async`) and
//!   the atomic, private writes of job files into it;
//! - [`JobFile`]: what a job file says when read back, and [`record`]: the records our
//!   programs write into it, each described once as a type;
//! - [`json`]: JSON as Python reads and writes it (lone surrogates, bytes that are not UTF-8);
//! - [`output`]: turning a module's raw stdout into its result, as ansible-core does;
//! - [`ModuleArgs`]: the JSON arguments file ansible gives a module;
//! - [`reply`]: printing one JSON object as a module's answer;
//! - [`control`]: how a running job is asked to end and how its module's group is ended;
//! - [`lease`]: a job that ends when nothing asks for it any more;
//! - [`clock`]: "now", elapsed times and the timestamps of the logs;
//! - [`held`]: results that hold secrets, kept in their supervisor's memory, not on disk;
//! - [`retain`]: removing finished jobs older than an age (`async_job gc`, `ASYNC_WRAPPER_RETAIN`);
//! - [`status`]: a job as `async_status` reports it (also what `async_job wait` returns);
//! - [`progress`]: what a running job is doing, read from `/proc` for its status;
//! - [`watch`]: waiting for a job's end without polling (inotify);
//! - [`rules`]: the protocol's texts and bounds, which the Python parts of `library/` are
//!   generated from.
//!
//! # Job file format
//!
//! A job file is one JSON object in `<async dir>/<job id>`, always replaced whole (temp file,
//! fsync, rename), mode `0600`:
//!
//! - while the job runs: `{"started": true, "finished": false, "ansible_job_id": ID}`, plus
//!   `started_at`, `time_limit`, `deadline` (when the time limit ends it), `module`, `lease`
//!   (see [`lease`]), `kill_grace` (see [`control`]), `no_log` and `tail` (for its
//!   [`progress`]), the `supervisor` and `module_process` ([`ProcessStamp`]s) that let a lost
//!   job be told from a running one, and `wrapper` when the portable fallback wrote it
//!   ([`record::Running`]);
//! - when the module has ended: the module's own result object, plus `stderr` when the
//!   module wrote any, and a junk warning in `warnings` when its JSON had trailing junk;
//! - when the module could not run or printed no JSON:
//!   `{"failed": true, "cmd", "msg", "data", "stderr", "ansible_job_id"}` ([`record::NoResult`]);
//! - when the time limit was reached: `{"failed": true, "msg": "Timeout exceeded", "child_pid": PID,
//!   "elapsed", "time_limit"}` ([`record::TimedOut`]);
//! - when it was ended on request or by a signal to its supervisor: `{"failed": true,
//!   "terminated": true, "msg", "child_pid", "ansible_job_id"}` ([`record::Terminated`]);
//! - when its lease ran out: the same, with `"lease_expired": true`, `lease` and `last_call`
//!   ([`record::Expired`]);
//! - when the result could not be written (a full disk): `{"failed": true, "msg",
//!   "ansible_job_id"}` ([`record::Unwritten`]).
//!
//! `tests/protocol/jobfiles/samples/` in the repository has a sample of each.
//!
//! Beside it, `<job id>.log` has one line per event (see [`log`]).
//!
//! A file without `started` means the job is over, as in ansible-core.

mod args;
pub mod clock;
pub mod control;
pub mod decimal;
mod error;
pub mod held;
mod jobdir;
pub mod jobfile;
mod jobid;
pub mod json;
pub mod lease;
pub mod log;
pub mod output;
mod process;
pub mod progress;
pub mod record;
pub mod reply;
pub mod retain;
pub mod rules;
mod state;
pub mod status;
pub mod user;
pub mod watch;

pub use args::ModuleArgs;
pub use error::Error;
pub use jobdir::{JobDir, Written};
pub use jobfile::JobFile;
pub use jobid::JobId;
pub use process::ProcessStamp;
pub use record::Record;
pub use reply::Reply;
pub use rules::{ASYNC_DIR_ENV, DEFAULT_ASYNC_DIR, TIMEOUT_MSG};
pub use state::{JobInfo, JobState};
pub use user::expand_user;
