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
}
