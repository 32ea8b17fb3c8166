//! A program's answer. Each program (async_wrapper, async_status, async_job) returns one
//! [`Reply`] and never prints or exits itself; the `main` that ran it calls
//! [`Reply::exit`], the one place where anything reaches stdout or stderr and the process
//! ends. A module's answer is one JSON object on stdout.

use std::io::Write;

use serde_json::{json, Value};

/// What a program prints and the code it exits with.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Reply {
    /// `value` as a module's answer: one JSON object on a line of its own.
    pub fn json(value: &Value, code: i32) -> Reply {
        Reply { stdout: format!("{}\n", crate::json::to_string(value)), code, ..Reply::default() }
    }

    /// `{"failed": true, "msg": msg}` and exit code 1: the shape of every failure ansible
    /// understands.
    pub fn failure(msg: impl Into<String>) -> Reply {
        Reply::json(&json!({"failed": true, "msg": msg.into()}), 1)
    }

    /// Text for a person on stdout.
    pub fn text(stdout: impl Into<String>, code: i32) -> Reply {
        Reply { stdout: stdout.into(), code, ..Reply::default() }
    }

    /// Text for a person on stderr: an error of a command-line use.
    pub fn error(stderr: impl Into<String>, code: i32) -> Reply {
        Reply { stderr: stderr.into(), code, ..Reply::default() }
    }

    /// Nothing to print: how the wrapper's detached processes end.
    pub fn silent(code: i32) -> Reply {
        Reply { code, ..Reply::default() }
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    pub fn code(&self) -> i32 {
        self.code
    }

    /// Prints the reply and exits with its code.
    pub fn exit(self) -> ! {
        // Nothing useful can be done when stdout or stderr is gone; the exit code still tells.
        if !self.stdout.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(self.stdout.as_bytes());
            let _ = out.flush();
        }
        if !self.stderr.is_empty() {
            let _ = std::io::stderr().lock().write_all(self.stderr.as_bytes());
        }
        std::process::exit(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_answer_is_one_json_line() {
        let reply = Reply::failure("no");
        assert_eq!(reply.stdout(), "{\"failed\":true,\"msg\":\"no\"}\n");
        assert_eq!((reply.code(), reply.stderr()), (1, ""));
        assert_eq!(Reply::silent(0).stdout(), "");
    }
}
