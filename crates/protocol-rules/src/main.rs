//! `protocol-rules`: prints the job protocol's rules that the Python parts of `library/` use
//! (the portable fallback, `async_status`'s own answer) as Python assignments, taken from the
//! Rust code that the native program is built from ([`async_core::rules`]). `assemble.sh`
//! puts its output at the top of each Python part, so those parts never carry a copy typed
//! by hand. Only the build machine runs it; it is not shipped.

#![forbid(unsafe_code)]

use async_core::rules::*;

/// A value as a Python literal. Texts are ASCII (checked below), so the same literal reads
/// the same on Python 2 and 3.
trait Python {
    fn python(&self) -> String;
}

impl Python for &str {
    fn python(&self) -> String {
        assert!(self.is_ascii(), "a rule's text must be ASCII: {self}");
        serde_json::to_string(self).expect("a string is JSON")
    }
}

impl Python for u64 {
    fn python(&self) -> String {
        self.to_string()
    }
}

impl Python for usize {
    fn python(&self) -> String {
        self.to_string()
    }
}

impl<const N: usize> Python for [&str; N] {
    fn python(&self) -> String {
        let items: Vec<String> = self.iter().map(|text| text.python()).collect();
        format!("({},)", items.join(", "))
    }
}

impl<const N: usize> Python for [(&str, u64); N] {
    fn python(&self) -> String {
        let items: Vec<String> = self.iter().map(|(name, n)| format!("({}, {n})", name.python())).collect();
        format!("({},)", items.join(", "))
    }
}

impl<const N: usize> Python for [(u32, u32, u32); N] {
    fn python(&self) -> String {
        let items: Vec<String> = self.iter().map(|(a, b, c)| format!("({a}, {b}, {c})")).collect();
        format!("({},)", items.join(", "))
    }
}

impl<const N: usize> Python for [(&str, &str); N] {
    fn python(&self) -> String {
        let items: Vec<String> =
            self.iter().map(|(a, b)| format!("({}, {})", a.python(), b.python())).collect();
        format!("({},)", items.join(", "))
    }
}

impl Python for (u32, u32) {
    fn python(&self) -> String {
        format!("({}, {})", self.0, self.1)
    }
}

macro_rules! rules {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), $name.python())),*]
    };
}

fn python() -> String {
    let rules = rules!(
        DEFAULT_ASYNC_DIR,
        ASYNC_DIR_ENV,
        JOB_ID_MAX_LEN,
        INVALID_JOB_ID,
        JOB_ID_EMPTY,
        JOB_ID_HIDDEN,
        JOB_ID_SLASH,
        JOB_ID_CHARS,
        CREATE_DIR,
        UNSAFE_DIR,
        DIR_SYMLINK,
        DIR_NOT_A_DIR,
        DIR_NOT_OWNED,
        DIR_WRITABLE,
        GRACE_ENV,
        DEFAULT_GRACE_SECS,
        MAX_GRACE_SECS,
        BAD_GRACE,
        LEASE_ENV,
        MAX_LEASE,
        LEASE_OFF,
        BAD_LEASE,
        EXACT_ENV,
        BAD_EXACT,
        SETTING_YES,
        SETTING_NO,
        SECRETS_ENV,
        SECRETS_MEMORY,
        SECRETS_DISK,
        BAD_SECRETS,
        RETAIN_ENV,
        BAD_RETAIN,
        DURATION_UNITS,
        WRAPPER_USAGE,
        MAX_TIME_LIMIT,
        BAD_TIME_LIMIT,
        COMMAND_PROTOCOL_SINCE,
        HALVING_SINCE,
        LIMIT_RULE_EXACT,
        LIMIT_RULE_HALVING,
        LIMIT_RULE_TRAILING,
        WATCHDOG_STEP,
        TIMEOUT_MSG,
        TERMINATED_ON_REQUEST,
        STOPPED_BY_SIGNAL,
        LEASE_EXPIRED,
        LAST_CALL_AT,
        NO_CALL_SINCE_START,
        NOT_WRITTEN,
        NO_JSON_RESULT,
        NO_JSON_KILLED,
        NO_JSON_EXITED,
        NO_JSON_START,
        NO_JSON_END,
        NOT_VALID_JSON,
        NOT_AN_OBJECT,
        NOT_CAPTURED,
        NOT_READ,
        EMPTY_COMMAND,
        OS_ERROR,
        NOT_RUN,
        FORK_FAILED,
        NO_DEV_NULL,
        JOB_FILE_NOT_WRITTEN,
        NOT_STARTED,
        JUNK_WARNING,
        STATE_FLAGS,
        STATE_EXPIRED,
        STATE_TERMINATED,
        STATE_TIMED_OUT,
        STATE_FAILED,
        STATE_FINISHED,
        LOG_INVOKED,
        LOG_INVOKED_DEADLINE,
        LOG_INVOKED_LEASE,
        LOG_STARTED,
        LOG_EXITED,
        LOG_KILLED,
        LOG_ENDED_OTHERWISE,
        LOG_TIMEOUT,
        LOG_LEASE_EXPIRED,
        LOG_TERMINATE,
        LOG_STOPPED,
        LOG_ENDED,
        LOG_TMP_REMOVED,
        LOG_RESULT,
        LOG_NOT_WRITTEN,
        LOG_SECRETS_ON_DISK,
        SECRETS_ON_DISK_FALLBACK,
        LOG_RETAIN,
        LOG_RETAIN_FAILED,
        LOG_RESULT_HELD,
        HELD_MSG,
        HELD_LOST,
        HELD_UNREACHABLE,
        TAIL_ENV,
        SYSLOG_INVOKED,
        STATUS_ARGS,
        STATUS_MODES,
        WAIT_ARGS,
        BAD_WAIT,
        RUNNING_KEY,
        NOT_FOUND,
        UNPARSABLE,
        UNREADABLE,
        UNREMOVABLE,
        ANSIBLE_ARG_PREFIX,
        ARGS_NOT_OBJECT,
        ARGS_NOT_JSON,
        UNSUPPORTED,
        NOT_A_STRING,
        MISSING,
        NOT_A_CHOICE,
    );
    // Derived from the rules above, as the program derives them.
    let too_long = fill(JOB_ID_TOO_LONG, &[("max", &JOB_ID_MAX_LEN)]);
    let derived = [
        ("STATUS_ARGS_SHOWN", status_args_shown().join(", ").as_str().python()),
        // Filled here: the status script has few bytes to spare.
        ("JOB_ID_TOO_LONG", too_long.as_str().python()),
    ];
    let mut out = String::from(
        "# The job protocol's rules, as the native program has them: printed by protocol-rules\n\
         # (crates/protocol-rules) from the Rust code when library/ is assembled. Do not edit.\n",
    );
    for (name, value) in rules.into_iter().chain(derived) {
        out += &format!("{name} = {value}\n");
    }
    out
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("--python") => print!("{}", python()),
        _ => {
            eprintln!("usage: protocol-rules --python");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_one_python_assignment() {
        let text = python();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(" = ").unwrap();
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'), "{line}");
            assert!(!value.is_empty(), "{line}");
        }
        assert!(text.contains("HALVING_SINCE = ((2, 18, 19), (2, 19, 12), (2, 20, 8), (2, 21, 2),)\n"));
        assert!(text.contains("TIMEOUT_MSG = \"Timeout exceeded\"\n"));
    }

    /// Every rule is printed: a rule added to `async_core::rules` reaches the Python parts.
    #[test]
    fn every_rule_of_async_core_is_printed() {
        let source = include_str!("../../async-core/src/rules.rs");
        let printed = python();
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else { continue };
            let name = rest.split(':').next().unwrap();
            assert!(printed.contains(&format!("\n{name} = ")), "{name} is not printed by protocol-rules");
        }
    }

    /// No script of library/ carries a rule's text typed by hand: no five words in a row of
    /// a text rule (between its `{...}` values) are in their source, comments included.
    #[test]
    fn no_script_retypes_a_rules_text() {
        let scripts = [
            include_str!("../../ansible-async/library/fallback/async_wrapper.py"),
            include_str!("../../ansible-async/library/fallback/async_status.py"),
            include_str!("../../ansible-async/library/fallback/common.py"),
            include_str!("../../ansible-async/library/fallback/fallback.sh"),
            include_str!("../../ansible-async/library/common.sh"),
            include_str!("../../ansible-async/library/async_wrapper.sh"),
            include_str!("../../ansible-async/library/async_status.sh"),
            include_str!("../../ansible-async/library/async_job.sh"),
        ];
        for line in python().lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(" = ").unwrap();
            let Ok(serde_json::Value::String(text)) = serde_json::from_str(value) else { continue };
            for piece in text.split(['{', '}']) {
                let words: Vec<&str> = piece.split_whitespace().collect();
                for run in words.windows(5).map(|run| run.join(" ")) {
                    for script in scripts {
                        assert!(
                            !script.contains(&run),
                            "{name}'s text {run:?} is typed in a script of library/"
                        );
                    }
                }
            }
        }
    }
}
