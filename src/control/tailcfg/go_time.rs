//! Go's `time.Time` as JSON text: RFC 3339 with optional fractional seconds and a `Z` or
//! `±hh:mm` offset. Go's zero time (`0001-01-01T00:00:00Z`) is a real instant here
//! ([`go_zero_time`]), because a patch that *sets* a time to zero differs from one that leaves
//! it alone (`None`); readers use [`meaningful`] where zero means "unset".
//!
//! Used as `#[serde(with = "go_time")]` on `Option<SystemTime>` fields: `null` or absent is
//! `None`.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const GO_ZERO_UNIX_SECONDS: u64 = 62_135_596_800;

/// Go's zero `time.Time`.
pub(crate) fn go_zero_time() -> SystemTime {
    from_unix(-(GO_ZERO_UNIX_SECONDS as i64), 0)
}

/// `Some(time)` unless it is absent or Go's zero time, which mean "never"/"unknown".
pub(crate) fn meaningful(time: Option<SystemTime>) -> Option<SystemTime> {
    time.filter(|t| *t != go_zero_time())
}

/// `None` is written as `null`, which Go reads as "no time" for pointers and as the zero time
/// for values.
pub(crate) fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => s.serialize_str(&format(*time)),
        None => s.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A time text Go would not accept; it holds the text for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotRfc3339(String);

impl std::fmt::Display for NotRfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not an RFC 3339 time", self.0)
    }
}

impl std::error::Error for NotRfc3339 {}

/// Parses RFC 3339 as Go's `time.Time.UnmarshalJSON` accepts it.
pub(crate) fn parse(text: &str) -> Result<SystemTime, NotRfc3339> {
    let bad = || NotRfc3339(text.to_string());
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    let hour = digits(&b[11..13]).ok_or_else(bad)?;
    let minute = digits(&b[14..16]).ok_or_else(bad)?;
    let second = digits(&b[17..19]).ok_or_else(bad)?;
    let (nanos, zone) = fraction(&b[19..]).ok_or_else(bad)?;
    let offset = zone_offset(zone).ok_or_else(bad)?;
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !valid_date || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let days = days_from_civil(year as i64, month, day);
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset;
    Ok(from_unix(seconds, nanos))
}

/// Formats like Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction trimmed.
pub(crate) fn format(time: SystemTime) -> String {
    let (seconds, nanos) = to_unix(time);
    let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// Splits `.123456789Z` into nanoseconds and the zone part; the fraction is optional.
fn fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    let Some(rest) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 9 {
        return None;
    }
    let value = digits(&rest[..len])?;
    Some((value * 10u32.pow(9 - len as u32), &rest[len..]))
}

/// `Z` → 0; `+hh:mm` / `-hh:mm` → seconds east of UTC.
fn zone_offset(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let east = i64::from(hours * 3600 + minutes * 60);
            Some(if *sign == b'-' { -east } else { east })
        }
        _ => None,
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month =
        if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

fn from_unix(seconds: i64, nanos: u32) -> SystemTime {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    let whole = if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    // Years 0000–9999 always fit a Unix SystemTime; fall back to the epoch rather than panic.
    let whole = whole.unwrap_or(UNIX_EPOCH);
    whole.checked_add(Duration::from_nanos(u64::from(nanos))).unwrap_or(whole)
}

/// Whole seconds (floored) and nanoseconds since the Unix epoch.
fn to_unix(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let (secs, nanos) = (before.as_secs() as i64, before.subsec_nanos());
            if nanos == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - nanos)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(UNIX_EPOCH));
        assert_eq!(parse("0001-01-01T00:00:00Z"), Ok(go_zero_time()));
        let t = parse("2026-08-01T10:00:00.123Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap(), Duration::from_millis(1_785_578_400_123));
        assert_eq!(parse("2026-08-01T12:00:00.123+02:00"), Ok(t));
        assert_eq!(parse("2026-08-01T09:30:00.123-00:30"), Ok(t));
        let leap = parse("2000-02-29T00:00:00Z").unwrap();
        assert_eq!(leap, UNIX_EPOCH + Duration::from_secs(951_782_400));
    }

    #[test]
    fn formats_like_rfc3339nano() {
        assert_eq!(format(go_zero_time()), "0001-01-01T00:00:00Z");
        assert_eq!(format(UNIX_EPOCH + Duration::from_secs(123)), "1970-01-01T00:02:03Z");
        let t = UNIX_EPOCH + Duration::from_nanos(1_785_578_400_120_000_000);
        assert_eq!(format(t), "2026-08-01T10:00:00.12Z");
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(format(before), "1969-12-31T23:59:58.5Z");
        assert_eq!(parse(&format(before)), Ok(before));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "2026-08-01",
            "2026-08-01 10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-08-01T24:00:00Z",
            "2026-08-01T10:60:00Z",
            "2026-08-01T10:00:60Z",
            "2026-08-01T10:00:00",
            "2026-08-01T10:00:00.Z",
            "2026-08-01T10:00:00.1234567890Z",
            "2026-08-01T10:00:00+2:00",
            "2026-08-01T10:00:00+24:00",
            "2026-08-01T10:00:00ZZ",
            "+026-08-01T10:00:00Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shaken_times_never_panic() {
        crate::testing::shake(11, 3000, b"2026-08-01T10:00:00.123456789+02:00", |bytes| {
            if let Ok(t) = parse(&String::from_utf8_lossy(bytes)) {
                assert_eq!(parse(&format(t)), Ok(t));
            }
        });
    }
}
