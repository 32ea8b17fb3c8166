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
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_timestamp(secs: f64) -> String {
    let millis = (secs * 1000.0).round() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let s = ms_of_day / 1000;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms_of_day % 1000)
}

/// Howard Hinnant's days-to-civil-date algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc_timestamp(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_timestamp(1_795_924_487.613), "2026-11-29T03:54:47.613Z");
        assert_eq!(utc_timestamp(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

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
