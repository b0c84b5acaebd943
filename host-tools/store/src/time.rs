//! Timestamps as ISO-8601 text in UTC (`2026-11-24T08:30:00.123456Z`), the form the legacy data uses
//! (without the zone letter there). No clock is read anywhere else.

use std::time::{SystemTime, UNIX_EPOCH};

/// The civil date of a day number counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number (from 1970-01-01) of a civil date: the inverse of `civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the Unix epoch of an ISO-8601 time as this module writes it or as the legacy data
/// holds it (`2025-11-28T21:57:16.402255`, zone letter optional, fraction optional, UTC assumed); `None`
/// for anything else.
pub fn parse_micros(text: &str) -> Option<i64> {
    let t = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = t.split_once('T').or_else(|| t.split_once(' ')).unwrap_or((t, "00:00:00"));
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.splitn(3, ':').map(str::parse::<i64>);
    let (h, mi, s) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || frac.len() > 9 {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        digits.parse::<i64>().ok()?
    };
    let days = days_from_civil(y, m as u32, day as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000) + micros)
}

/// A time given as microseconds since the Unix epoch, as text.
pub fn format_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// Now, as text.
pub fn now() -> String {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    format_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_micros(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(format_micros(1_795_509_000_123_456), "2026-11-24T08:30:00.123456Z");
        assert_eq!(format_micros(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn parse_inverts_format() {
        for m in [0, 1, -1, 951_782_400_000_000, 1_795_509_000_123_456, 4_102_444_800_000_000] {
            assert_eq!(parse_micros(&format_micros(m)), Some(m), "{m}");
        }
        assert_eq!(parse_micros("2025-11-28T21:57:16.402255"), Some(1_764_367_036_402_255));
        assert_eq!(parse_micros("2025-11-28T21:57:16.4"), Some(1_764_367_036_400_000));
        assert_eq!(parse_micros("2025-11-28"), Some(1_764_288_000_000_000));
        for bad in ["", "yesterday", "2025-13-01T00:00:00", "2025-11-28T25:00:00", "2025-11-28T21:57"] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }
}
