//! `protocol-rules`: prints the job protocol's rules that the Python parts of `library/` use
//! (the portable fallback, `async_status`'s own answer) as Python assignments, taken from the
//! Rust code that the native program is built from ([`async_core::rules`] and the wrapper's
//! deadline table). `assemble.sh` puts its output at the top of each Python part, so those
//! parts never carry a copy typed by hand. Only the build machine runs it; it is not shipped.

#![forbid(unsafe_code)]

use async_core::output::JUNK_WARNING;
use async_core::rules::*;
use async_wrapper::HALVING_SINCE;

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
        JOB_ID_TOO_LONG,
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
        BAD_LEASE,
        EXACT_ENV,
        BAD_EXACT,
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
        TIMEOUT_MSG,
        HALVING_SINCE,
        JUNK_WARNING,
        STATUS_ARGS,
        STATUS_MODES,
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
    let derived = [("STATUS_ARGS_SHOWN", status_args_shown().join(", ").as_str().python())];
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
}
