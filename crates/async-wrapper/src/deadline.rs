//! When a job's time limit ends it.
//!
//! By default, when ansible-core's own wrapper would have reported `Timeout exceeded`, so
//! that a task that passes with stock passes with this wrapper. Stock checks its
//! module in steps of a watchdog loop, so it ends a job some seconds after its limit, and
//! the loop differs between versions (read from each version's `async_wrapper.py`):
//!
//! - since 2.18.19, 2.19.12, 2.20.8, 2.21.2 and 2.22 ([`Watchdog::Halving`], ansible's
//!   fix for corrupt job files in parallel fact gathering): steps of 5 s, halved to
//!   `limit / 2` when the limit is 5 s or less; the module is killed after the first step
//!   that uses the limit up (`limit` for limits up to 5 s, the next multiple of 5 s above),
//!   and the result written 1 s later.
//! - before those, and in every 2.14 to 2.17 ([`Watchdog::Trailing`]): a first step of 5 s,
//!   then steps of 5 s that each count against the limit: the result is written and the
//!   module killed 5 s after the next multiple of 5 s at or above the limit (10 s for 1 to 5).
//!
//! Neither command line says which version sent it, but ansible passes `_ansible_version`
//! among every module's arguments: in the module file (AnsiballZ, or a script that takes its
//! arguments inline) or in its arguments file (binary, WANT_JSON and old-style modules, such
//! as a shell script; JSON or `key=value` words), which each protocol names: the legacy one
//! as its fourth argument, the command one in the command after the module. When none is
//! found, the newest release of the versions that speak the command line's protocol decides
//! (2.20's last patch for the legacy one, any later one for the command one: both halving).
//! `ASYNC_WRAPPER_EXACT_LIMIT=1` in the task's environment ends the job at its limit exactly
//! instead. Either way it is a deadline, not a polling loop: the supervisor sleeps until it is
//! due, then ends the module's group (SIGTERM, grace, SIGKILL) and writes the result at once.

use std::time::Duration;

use async_core::rules::{self, fill, quote};

/// The environment variable that asks for the exact limit.
pub use async_core::rules::EXACT_ENV;

/// How ansible-core's own wrapper times a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watchdog {
    /// ansible-core 2.18.19, 2.19.12, 2.20.8, 2.21.2, 2.22 and later.
    Halving,
    /// ansible-core 2.14 to 2.17, and the earlier patches of 2.18 to 2.21.
    Trailing,
}

/// The first patch of each ansible-core minor whose own wrapper has the halving watchdog
/// (`Watchdog::Halving`); every later minor has it.
pub use async_core::rules::HALVING_SINCE;

impl Watchdog {
    /// The watchdog of ansible-core `version` (major, minor, patch).
    pub fn of_version(version: (u32, u32, u32)) -> Watchdog {
        let (major, minor, _) = version;
        let last = HALVING_SINCE[HALVING_SINCE.len() - 1];
        let halving = match HALVING_SINCE.iter().find(|since| (since.0, since.1) == (major, minor)) {
            Some(&since) => version >= since,
            None => (major, minor) > (last.0, last.1),
        };
        if halving {
            Watchdog::Halving
        } else {
            Watchdog::Trailing
        }
    }

    /// How the job log names it.
    pub fn name(self) -> &'static str {
        match self {
            Watchdog::Halving => rules::LIMIT_RULE_HALVING,
            Watchdog::Trailing => rules::LIMIT_RULE_TRAILING,
        }
    }

    /// When this watchdog's job file says `Timeout exceeded`, for a limit of `limit` > 0 s.
    pub fn timeout_after(self, limit: u64) -> Duration {
        const STEP: u64 = rules::WATCHDOG_STEP;
        match self {
            Watchdog::Halving if limit <= STEP => Duration::from_secs(limit + 1),
            Watchdog::Halving => Duration::from_secs(limit.div_ceil(STEP) * STEP + 1),
            Watchdog::Trailing => Duration::from_secs(STEP + limit.div_ceil(STEP) * STEP),
        }
    }
}

/// Which rule ends a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// At the limit.
    Exact,
    /// When stock's job file would say `Timeout exceeded`.
    Stock(Watchdog),
}

impl Rule {
    /// Seconds after the module's start at which the job is ended; `None` for a limit of 0
    /// (no limit).
    pub fn deadline(self, limit: u64) -> Option<Duration> {
        match (limit, self) {
            (0, _) => None,
            (_, Rule::Exact) => Some(Duration::from_secs(limit)),
            (_, Rule::Stock(watchdog)) => Some(watchdog.timeout_after(limit)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::Exact => rules::LIMIT_RULE_EXACT,
            Rule::Stock(watchdog) => watchdog.name(),
        }
    }
}

/// Whether the task's environment asks for the exact limit; a value that is not a yes or a
/// no is refused (no job starts).
pub fn exact_from_env() -> Result<bool, String> {
    match std::env::var(EXACT_ENV) {
        Err(_) => Ok(false),
        Ok(text) => exact_from_text(&text),
    }
}

fn exact_from_text(text: &str) -> Result<bool, String> {
    let word = text.trim().to_ascii_lowercase();
    if rules::SETTING_NO.contains(&word.as_str()) {
        Ok(false)
    } else if rules::SETTING_YES.contains(&word.as_str()) {
        Ok(true)
    } else {
        Err(fill(rules::BAD_EXACT, &[("env", &EXACT_ENV), ("value", &quote(text))]))
    }
}

/// The ansible-core version (major, minor, patch) in a module's arguments
/// (`_ansible_version`), wherever they are written in `text`: JSON, a Python literal holding
/// JSON, or `key=value` words. A pre-release (`2.22.0rc1`) counts as its release.
pub fn ansible_version_in(text: &[u8]) -> Option<(u32, u32, u32)> {
    const KEY: &[u8] = b"_ansible_version";
    let at = text.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &text[at..];
    let skip = rest.iter().take(8).position(|b| !b"\"'\\:= ".contains(b))?;
    let number = |part: &[u8]| -> Option<(u32, usize)> {
        let digits = part.iter().take_while(|b| b.is_ascii_digit()).count();
        Some((std::str::from_utf8(&part[..digits]).ok()?.parse().ok()?, digits))
    };
    let (major, len) = number(&rest[skip..])?;
    let rest = rest[skip + len..].strip_prefix(b".")?;
    let (minor, len) = number(rest)?;
    let patch = rest[len..].strip_prefix(b".").and_then(number).map_or(0, |(patch, _)| patch);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(rule: Rule, limit: u64) -> Option<u64> {
        rule.deadline(limit).map(|d| d.as_secs())
    }

    #[test]
    fn stock_2_18_on_writes_its_result_a_second_after_the_step_that_used_the_limit_up() {
        let rule = Rule::Stock(Watchdog::Halving);
        let cases = [(1, 2), (2, 3), (5, 6), (6, 11), (7, 11), (10, 11), (11, 16), (45, 46), (47, 51)];
        for (limit, deadline) in cases {
            assert_eq!(secs(rule, limit), Some(deadline), "limit {limit}");
        }
    }

    #[test]
    fn stock_2_14_to_2_17_ends_a_step_later() {
        let rule = Rule::Stock(Watchdog::Trailing);
        for (limit, deadline) in [(1, 10), (5, 10), (6, 15), (45, 50), (47, 55)] {
            assert_eq!(secs(rule, limit), Some(deadline), "limit {limit}");
        }
    }

    #[test]
    fn exact_is_the_limit_and_zero_is_no_limit() {
        assert_eq!(secs(Rule::Exact, 6), Some(6));
        for rule in [Rule::Exact, Rule::Stock(Watchdog::Halving), Rule::Stock(Watchdog::Trailing)] {
            assert_eq!(rule.deadline(0), None);
        }
    }

    #[test]
    fn the_exact_setting_takes_yes_and_no_in_the_usual_spellings() {
        for yes in ["1", "true", "True", "yes", " on "] {
            assert_eq!(exact_from_text(yes), Ok(true), "{yes}");
        }
        for no in ["", "0", "False", "no", "off"] {
            assert_eq!(exact_from_text(no), Ok(false), "{no}");
        }
        let e = exact_from_text("maybe").unwrap_err();
        assert_eq!(e, "ASYNC_WRAPPER_EXACT_LIMIT must be 1 (end the job at its time limit exactly) or 0, got: \"maybe\"");
    }

    #[test]
    fn finds_the_version_in_every_way_ansible_writes_arguments() {
        type Case = (&'static [u8], Option<(u32, u32, u32)>);
        let cases: [Case; 7] = [
            (br#"{"_ansible_version": "2.19.14", "x": 1}"#, Some((2, 19, 14))),
            (br#"ANSIBALLZ_PARAMS = '{"ANSIBLE_MODULE_ARGS": {"_ansible_version": "2.17.14"}}'"#, Some((2, 17, 14))),
            (br#"params='{"ANSIBLE_MODULE_ARGS": {"_ansible_no_log": false, "_ansible_version": "2.20.10"'"#, Some((2, 20, 10))),
            (b"_raw_params='sleep 1' _ansible_version=2.14.18 _ansible_debug=False", Some((2, 14, 18))),
            (br#"{"_ansible_version": "2.22.0rc1"}"#, Some((2, 22, 0))),
            (br#"{"_ansible_version": "devel"}"#, None),
            (b"#!/bin/sh\nsleep 1\n", None),
        ];
        for (text, version) in cases {
            assert_eq!(ansible_version_in(text), version, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn the_halving_watchdog_came_with_these_patches() {
        let cases = [
            ((2, 14, 18), Watchdog::Trailing),
            ((2, 17, 14), Watchdog::Trailing),
            ((2, 18, 18), Watchdog::Trailing),
            ((2, 18, 19), Watchdog::Halving),
            ((2, 19, 11), Watchdog::Trailing),
            ((2, 19, 12), Watchdog::Halving),
            ((2, 20, 7), Watchdog::Trailing),
            ((2, 20, 8), Watchdog::Halving),
            ((2, 21, 1), Watchdog::Trailing),
            ((2, 21, 2), Watchdog::Halving),
            ((2, 22, 0), Watchdog::Halving),
            ((3, 0, 0), Watchdog::Halving),
        ];
        for (version, watchdog) in cases {
            assert_eq!(Watchdog::of_version(version), watchdog, "{version:?}");
        }
    }
}
