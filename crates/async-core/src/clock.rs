//! Time as the job files and logs record it: seconds since the epoch (an `f64`, ms
//! precision), shown as `YYYY-MM-DDTHH:MM:SS.mmmZ`, and elapsed times in tenths of a second.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Seconds from `start` to `end`, never negative, rounded to a tenth: how every elapsed time
/// is reported.
pub fn elapsed(start: f64, end: f64) -> f64 {
    ((end - start).max(0.0) * 10.0).round() / 10.0
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_timestamp(secs: f64) -> String {
    let millis = (secs * 1000.0).round() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let s = ms_of_day / 1000;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms_of_day % 1000)
}

/// A [`utc_timestamp`] read back as seconds since the epoch.
pub fn parse_utc_timestamp(stamp: &str) -> Option<f64> {
    let num = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let days = days_from_civil(y, m, d);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + ms as f64 / 1000.0)
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

/// Howard Hinnant's civil-date-to-days algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn utc_times_read_back() {
        for secs in [0.0, 951_782_400.5, 1_795_924_487.613] {
            assert!((parse_utc_timestamp(&utc_timestamp(secs)).unwrap() - secs).abs() < 0.001, "{secs}");
        }
        assert_eq!(parse_utc_timestamp("garbage"), None);
    }

    #[test]
    fn elapsed_times_are_tenths_and_never_negative() {
        assert_eq!(elapsed(10.0, 12.345), 2.3);
        assert_eq!(elapsed(10.0, 12.36), 2.4);
        assert_eq!(elapsed(12.0, 10.0), 0.0);
    }
}
