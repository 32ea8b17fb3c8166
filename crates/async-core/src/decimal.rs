//! Decimal numbers as the settings spell them (`ASYNC_WRAPPER_GRACE=0.5`, `older_than: 1.5d`),
//! read without the standard library's float parser: its tables and code are some 10 KB of
//! every shipped program, and a setting needs no more than this.

/// `text` as `str::parse::<f64>` reads it: `[+-]` then digits with an optional `.` and
/// fraction (`1.`, `.5`) and an optional exponent (`1e3`, `2E-1`), or `inf`, `infinity`,
/// `nan` in any case; `None` for anything else (no spaces). The value is the nearest `f64`
/// whenever the number has at most 15 significant digits and an exponent from -22 to 22 (the
/// settings' range), and within a few units of the last place beyond that.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        f64::INFINITY
    } else if body.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else {
        unsigned(body)?
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

/// Digits, `.`, fraction, exponent: the first 19 significant digits as an integer, scaled
/// by a power of ten (exact up to 10^22; one rounding when the integer has at most 15 digits).
fn unsigned(text: &str) -> Option<f64> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut scale = match exponent {
        None => 0,
        Some(exponent) => {
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !all_digits(digits) {
                return None;
            }
            // Past 10^±400 every f64 is 0 or infinite: no need to read more digits.
            let value = digits.bytes().fold(0i64, |n, b| (n * 10 + i64::from(b - b'0')).min(400));
            if exponent.starts_with('-') {
                -value
            } else {
                value
            }
        }
    };
    let mut significant = 0u64;
    let mut counted = 0;
    for (b, in_fraction) in whole.bytes().map(|b| (b, false)).chain(fraction.bytes().map(|b| (b, true))) {
        if counted < 19 {
            if significant > 0 || b != b'0' {
                significant = significant * 10 + u64::from(b - b'0');
                counted += 1;
            }
            if in_fraction {
                scale -= 1;
            }
        } else if !in_fraction {
            scale += 1;
        }
    }
    if significant == 0 {
        return Some(0.0);
    }
    let power = |n: i64| 10f64.powi(n.clamp(-800, 800) as i32);
    let value = significant as f64;
    Some(if scale >= 0 { value * power(scale) } else { value / power(-scale) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_standard_parser_reads() {
        for text in [
            "0",
            "1",
            "-1",
            "+2",
            "0.5",
            " 0.5",
            "1.",
            ".5",
            "007",
            "3600",
            "1e3",
            "1E3",
            "2e-1",
            "2.5e+2",
            "1.5",
            "600.0000000000001",
            "123456789012345",
            "0.1",
            "0.000001",
            "99999999999999999999",
            "1e400",
            "-1e400",
            "1e-400",
            "inf",
            "-Infinity",
            "NaN",
            "nan",
            "",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1_000",
            "0x10",
            "- 1",
            "1 ",
            "soon",
            "1d",
        ] {
            let ours = parse_f64(text);
            let std = text.parse::<f64>().ok();
            match (ours, std) {
                (Some(a), Some(b)) if a.is_nan() => assert!(b.is_nan(), "{text}"),
                (Some(a), Some(b)) => assert!(a == b || (a - b).abs() <= b.abs() * 1e-15, "{text}: {a} {b}"),
                (a, b) => assert_eq!(a, b, "{text}"),
            }
        }
    }

    #[test]
    fn is_exact_for_the_settings_numbers() {
        for text in
            ["0.5", "0.1", "0.3", "2.675", "600.0000000000001", "599.9999999999999", "1e22", "86400.25"]
        {
            assert_eq!(parse_f64(text), text.parse::<f64>().ok(), "{text}");
        }
    }
}
