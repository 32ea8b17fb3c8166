//! What a person on the host sees of running jobs: the progress of a job as text
//! ([`summary`], [`details`]), `async_job top` (every job, refreshed every second until `q`
//! or Ctrl-C) and `async_job show JID --follow` (a job's log and progress until it ends).
//!
//! These two views write to the terminal themselves as they go (the only parts of the
//! programs that do: a view that refreshes cannot be one reply); plain ANSI escapes, the
//! terminal's own modes set with termios and restored on the way out.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use async_core::{clock, JobDir, JobInfo};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Value;

use crate::cli::table;
use crate::jobs::{self, Error};

const REFRESH: Duration = Duration::from_secs(1);

/// Bytes as a person reads them: `812`, `3.1K`, `2.4M`.
pub fn size(bytes: u64) -> String {
    let mut n = bytes as f64;
    for unit in ["", "K", "M", "G"] {
        if n < 1024.0 {
            return if unit.is_empty() { format!("{bytes}") } else { format!("{n:.1}{unit}") };
        }
        n /= 1024.0;
    }
    format!("{n:.1}T")
}

/// Text from a job with control characters (a terminal's escapes among them) made harmless.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn number(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// One line: how many processes, their CPU and memory, the newest one, the file written
/// last and the tail's last line.
pub fn summary(progress: &Value) -> String {
    let totals = &progress["totals"];
    let mut parts = vec![format!(
        "{} proc, cpu {:.1}s, mem {}",
        number(totals, "count"),
        number(totals, "cpu"),
        size(number(totals, "rss") as u64)
    )];
    if let Some(newest) = progress["processes"].get(0) {
        let command = newest.get("args").or(newest.get("name")).and_then(Value::as_str).unwrap_or("?");
        parts.push(format!("newest: {}", clean(command)));
    }
    if let Some(file) = progress["writing"].get(0) {
        parts.push(format!(
            "writing {} {}",
            clean(file["path"].as_str().unwrap_or("?")),
            size(number(file, "size") as u64)
        ));
    }
    if let Some(line) = progress["tail"]["lines"].as_array().and_then(|l| l.last()).and_then(Value::as_str) {
        parts.push(format!("| {}", clean(line)));
    }
    parts.join("  ")
}

/// Every field of a job's progress, a line each: its processes, the files written, the tail.
pub fn details(progress: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:>7} {:>7}  {:<9} {:>7} {:>8} {:>7}  COMMAND",
        "PID", "PPID", "STATE", "CPU", "RSS", "AGE"
    )];
    for p in progress["processes"].as_array().into_iter().flatten() {
        let command = p.get("args").or(p.get("name")).and_then(Value::as_str).unwrap_or("?");
        lines.push(format!(
            "  {:>7} {:>7}  {:<9} {:>6.1}s {:>8} {:>6.0}s  {}",
            number(p, "pid"),
            number(p, "ppid"),
            p["state"].as_str().unwrap_or("?"),
            number(p, "cpu"),
            size(number(p, "rss") as u64),
            number(p, "age"),
            clean(command)
        ));
    }
    let totals = &progress["totals"];
    let mut total = format!(
        "  total: {} processes, cpu {:.1}s, mem {}",
        number(totals, "count"),
        number(totals, "cpu"),
        size(number(totals, "rss") as u64)
    );
    if totals.get("read_bytes").is_some() {
        total += &format!(
            ", read {}, written {}",
            size(number(totals, "read_bytes") as u64),
            size(number(totals, "write_bytes") as u64)
        );
    }
    lines.push(total);
    let now = clock::now();
    for file in progress["writing"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  writing {}  {}  modified {:.0}s ago",
            clean(file["path"].as_str().unwrap_or("?")),
            size(number(file, "size") as u64),
            (now - number(file, "mtime")).max(0.0)
        ));
    }
    let tail = &progress["tail"];
    if let Some(path) = tail["path"].as_str() {
        match tail["error"].as_str() {
            Some(error) => lines.push(format!("  tail {}: {}", clean(path), clean(error))),
            None => {
                lines.push(format!("  tail {}:", clean(path)));
                for line in tail["lines"].as_array().into_iter().flatten() {
                    lines.push(format!("    {}", clean(line.as_str().unwrap_or_default())));
                }
            }
        }
    }
    lines
}

/// The screen of `top`: the jobs (running first, then the newest) and what each running
/// one is doing.
fn screen(dir: &JobDir) -> Result<Vec<String>, Error> {
    let jobs = jobs::list(dir)?;
    let running = jobs.iter().filter(|j| j.state.is_running()).count();
    let mut lines = vec![
        format!(
            "async_job top  {}  {}  {} job(s), {running} running  (q: quit)",
            dir.path().display(),
            clock::utc_timestamp(clock::now()),
            jobs.len()
        ),
        String::new(),
    ];
    lines.extend(table(&jobs).lines().map(str::to_string));
    for job in jobs.iter().filter(|j| j.state.is_running()) {
        if let Some(progress) = job.progress() {
            lines.push(String::new());
            lines.push(job_heading(job));
            lines.extend(details(&progress));
        }
    }
    Ok(lines)
}

fn job_heading(job: &JobInfo) -> String {
    let elapsed = job.elapsed().map(|e| format!("{e:.0}s")).unwrap_or_else(|| "-".into());
    let limit = match job.time_limit {
        Some(0) | None => String::new(),
        Some(limit) => format!(" of {limit}s"),
    };
    format!("{} {}  {}{}", job.id, job.module_name().unwrap_or_else(|| "-".into()), elapsed, limit)
}

/// `text` cut to `width` characters.
fn fit(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// The terminal's width in columns; 80 when it does not say.
fn width() -> usize {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct it is given, which lives here.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        80
    }
}

/// The terminal without line editing, echo or signal keys (so Ctrl-C is a key `top` reads),
/// until dropped (libc's termios: nix's adds more code than this needs).
struct KeyMode {
    saved: libc::termios,
}

impl KeyMode {
    fn enter() -> Option<KeyMode> {
        // SAFETY: tcgetattr fills the struct it is given, which lives here; stdin is fd 0.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return None;
        }
        let mut keys = saved;
        keys.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        // SAFETY: as above, with a struct tcgetattr filled.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &keys) } != 0 {
            return None;
        }
        Some(KeyMode { saved })
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        // SAFETY: restores what tcgetattr filled.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

/// Waits up to `timeout` for a key; whether it means "leave" (`q`, Ctrl-C, Ctrl-D, end of
/// input).
fn quit_key(timeout: Duration) -> bool {
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(millis)) {
        Ok(0) | Err(_) => false,
        Ok(_) => {
            let mut key = [0u8; 16];
            match stdin.lock().read(&mut key) {
                Ok(0) => true,
                Ok(n) => key[..n].iter().any(|&k| matches!(k, b'q' | b'Q' | 3 | 4)),
                Err(_) => true,
            }
        }
    }
}

/// `async_job top`: without a terminal, the screen once.
pub fn top(dir: &JobDir) -> Result<(), Error> {
    let mut out = io::stdout();
    if !(out.is_terminal() && io::stdin().is_terminal()) {
        let _ = writeln!(out, "{}", screen(dir)?.join("\n"));
        return Ok(());
    }
    let keys = KeyMode::enter();
    // The alternate screen, as top and less use: the shell's screen comes back on the way out.
    let _ = write!(out, "\x1b[?1049h\x1b[?25l");
    let result = loop {
        let lines = match screen(dir) {
            Ok(lines) => lines,
            Err(e) => break Err(e),
        };
        let width = width();
        let mut text = String::from("\x1b[H");
        for line in &lines {
            text += &fit(line, width);
            text += "\x1b[K\n";
        }
        text += "\x1b[J";
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        if keys.is_none() || quit_key(REFRESH) {
            break Ok(());
        }
    };
    let _ = write!(out, "\x1b[?25h\x1b[?1049l");
    let _ = out.flush();
    drop(keys);
    result
}

/// `async_job show JID --follow`: the job and its log, then each new log line and, while it
/// runs, its progress every second; at its end, its result. The exit code is 1 when the job
/// failed.
pub fn follow(dir: &JobDir, jid: &str) -> Result<i32, Error> {
    let mut out = io::stdout();
    let terminal = out.is_terminal();
    let (info, lines) = jobs::show(dir, jid)?;
    let _ =
        writeln!(out, "{}\n\nlog {}:", table(std::slice::from_ref(&info)), dir.log_path(&info.id).display());
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    let mut seen = lines.len();
    let mut last_summary = String::new();
    let mut info = info;
    loop {
        if !info.state.is_running() {
            if terminal {
                let _ = write!(out, "\r\x1b[K");
            }
            let content = match &info.file {
                async_core::JobFile::Object(map) => Value::Object(map.clone()),
                async_core::JobFile::Garbage(text) => Value::String(text.clone()),
                _ => Value::Null,
            };
            let _ = writeln!(
                out,
                "\n{} {}:\n{}",
                info.id,
                info.state,
                async_core::json::to_string_pretty(&content)
            );
            let _ = out.flush();
            let failed = content
                .as_object()
                .is_some_and(|map| async_core::JobState::of_result(map) != async_core::JobState::Finished);
            return Ok(if failed || info.state == async_core::JobState::Lost { 1 } else { 0 });
        }
        let summary = info.progress().map(|p| summary(&p)).unwrap_or_default();
        if terminal {
            let line =
                fit(&format!("{:.0}s  {summary}", info.elapsed().unwrap_or(0.0)), width().saturating_sub(1));
            let _ = write!(out, "\r\x1b[K{line}");
        } else if summary != last_summary {
            let _ = writeln!(out, "{summary}");
        }
        last_summary = summary;
        let _ = out.flush();
        std::thread::sleep(REFRESH);
        let (now, lines) = match jobs::show(dir, jid) {
            Ok(shown) => shown,
            // Cleaned up while followed (a poll loop's cleanup removes the file at the end).
            Err(Error::NotFound(_)) => {
                let clear = if terminal { "\r\x1b[K" } else { "" };
                let _ = writeln!(
                    out,
                    "{clear}{jid}: its job file was removed (cleaned up) before its end was seen"
                );
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        if lines.len() > seen {
            if terminal {
                let _ = write!(out, "\r\x1b[K");
            }
            for line in &lines[seen..] {
                let _ = writeln!(out, "{line}");
            }
            seen = lines.len();
        }
        info = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn progress() -> Value {
        json!({
            "processes": [
                {"pid": 12, "ppid": 11, "name": "head", "args": "head -c 200000 /dev/zero", "state": "running",
                 "cpu": 0.5, "rss": 2_400_000, "age": 0.1},
                {"pid": 11, "ppid": 10, "name": "sh", "args": "sh -c \u{1b}[31mred", "state": "sleeping",
                 "cpu": 0.0, "rss": 1000, "age": 60.0}
            ],
            "totals": {"count": 3, "cpu": 0.7, "rss": 5_000_000, "read_bytes": 0, "write_bytes": 1_200_000},
            "writing": [{"path": "/var/tmp/dump.bin", "size": 2_400_000, "mtime": 1.0}],
            "tail": {"path": "/var/log/x.log", "lines": ["one", "two"]}
        })
    }

    #[test]
    fn a_summary_is_one_line_of_the_figures_the_newest_process_the_file_and_the_tail() {
        assert_eq!(
            summary(&progress()),
            "3 proc, cpu 0.7s, mem 4.8M  newest: head -c 200000 /dev/zero  writing /var/tmp/dump.bin 2.3M  | two"
        );
        let quiet =
            json!({"processes": [{"name": "sh"}], "totals": {"count": 1}, "writing": [], "no_log": true});
        assert_eq!(summary(&quiet), "1 proc, cpu 0.0s, mem 0  newest: sh");
    }

    #[test]
    fn details_show_every_field_without_terminal_escapes() {
        let lines = details(&progress());
        let text = lines.join("\n");
        assert!(lines[1].contains("running") && lines[1].ends_with("head -c 200000 /dev/zero"), "{text}");
        assert!(lines[2].ends_with("sh -c ?[31mred"), "escapes are made harmless: {text}");
        assert!(text.contains("total: 3 processes, cpu 0.7s, mem 4.8M, read 0, written 1.1M"), "{text}");
        assert!(text.contains("writing /var/tmp/dump.bin  2.3M"), "{text}");
        assert!(text.ends_with("tail /var/log/x.log:\n    one\n    two"), "{text}");
        let missing = json!({"tail": {"path": "/x", "error": "No such file or directory"}});
        assert!(details(&missing).contains(&"  tail /x: No such file or directory".to_string()));
    }

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!([size(0), size(812), size(2048), size(5 << 30)], ["0", "812", "2.0K", "5.0G"]);
    }
}
