//! The per-job log `<async dir>/<job id>.log`: one line per event, for the person who
//! debugs a job on the host and for `async_job`, which reads a finished job's start time,
//! time limit and module from it.
//!
//! A line is `<UTC time> <event> [key=value ...]`, e.g.
//! `2026-11-29T04:00:00.123Z invoked protocol=legacy time_limit=30 module=/tmp/.../AnsiballZ_command.py`.
//! Values are the rest of the line after `key=` up to the next ` key=`; the module path,
//! which may hold spaces, always comes last.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::clock::{now, utc_timestamp};

/// Appends one event line to the log at `path` (created `0600`, never through a symlink).
pub fn append(path: &Path, event: &str) -> io::Result<()> {
    let mut file =
        OpenOptions::new().create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let line = format!("{} {}\n", utc_timestamp(now()), event.replace('\n', " "));
    file.write_all(line.as_bytes())
}

/// The log's lines, or none when there is no log (a job of the stock wrapper).
pub fn read(path: &Path) -> Vec<String> {
    let mut text = String::new();
    let opened = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path);
    if opened.and_then(|mut f: File| f.read_to_string(&mut text)).is_err() {
        return Vec::new();
    }
    text.lines().map(str::to_string).collect()
}

/// The value of `key` on the first line of `lines` whose event is `event`: up to the next
/// ` word=` on the line, or to its end.
pub fn field(lines: &[String], event: &str, key: &str) -> Option<String> {
    let line = lines.iter().find(|l| l.split(' ').nth(1) == Some(event))?;
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    let end = rest.match_indices(' ').map(|(i, _)| i).find(|&i| starts_with_key(&rest[i + 1..]));
    Some(rest[..end.unwrap_or(rest.len())].to_string())
}

fn starts_with_key(text: &str) -> bool {
    match text.split_once('=') {
        Some((word, _)) => !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_and_reads_fields_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j1.1.log");
        append(&path, "invoked protocol=legacy time_limit=30 module=/t/ansible tmp/m.py").unwrap();
        append(&path, "started pid=42").unwrap();
        let lines = read(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(field(&lines, "invoked", "protocol").as_deref(), Some("legacy"));
        assert_eq!(field(&lines, "invoked", "time_limit").as_deref(), Some("30"));
        assert_eq!(field(&lines, "invoked", "module").as_deref(), Some("/t/ansible tmp/m.py"));
        assert_eq!(field(&lines, "started", "pid").as_deref(), Some("42"));
        assert_eq!(field(&lines, "invoked", "nope"), None);
        let odd = vec!["t ev a=1 b c=2 d".to_string()];
        assert_eq!(field(&odd, "ev", "a").as_deref(), Some("1 b"));
        assert_eq!(field(&odd, "ev", "c").as_deref(), Some("2 d"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
