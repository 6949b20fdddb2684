//! Time for every crate: the clock (injected, so tests and queries can fix
//! "now") and the one reading of instants that ingestion, flags and queries
//! compose: RFC 3339, naive date-times read in a timezone, epoch numbers,
//! RFC 2822 and relative dates like `-7d`. Each caller picks the readings its
//! protocol allows; none of them re-implements one.

use chrono::{DateTime, Days, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always reads the same instant (tests; one query's `now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The ISO 8601 spellings with an offset that `rfc3339` reads and SQL can
/// cast as well (two-digit fields, upper-case `T`/`Z`), as a regex.
pub const ZONED_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";
/// The naive spellings `naive` reads that SQL can cast as well, as a regex.
pub const NAIVE_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$";

/// RFC 3339, offset taken as written.
pub fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

/// RFC 3339 and the looser offset spellings SDKs send: `+HH` offsets,
/// minutes without seconds, a space for `T`.
pub fn zoned_lenient(text: &str) -> Option<DateTime<Utc>> {
    if let Some(instant) = rfc3339(text) {
        return Some(instant);
    }
    let with_t = text.replacen(' ', "T", 1);
    for candidate in [with_t.as_str(), text] {
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f%#z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%dT%H:%M%#z",
        ] {
            if let Ok(instant) = DateTime::parse_from_str(candidate, format) {
                return Some(instant.to_utc());
            }
        }
    }
    None
}

/// A date-time without offset (`2024-06-01T12:00[:00[.5]]`, one space
/// allowed for the `T`) or a bare date (midnight). Only that one space:
/// chrono's format spaces would also take tabs or no space at all.
pub fn naive(text: &str) -> Option<NaiveDateTime> {
    let with_t = text.replacen(' ', "T", 1);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(&with_t, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
        })
}

/// A wall-clock reading in `timezone`; in a DST gap there is no such time,
/// in an overlap the earlier one is taken.
pub fn in_zone(naive: NaiveDateTime, timezone: Tz) -> Option<DateTime<Utc>> {
    timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.to_utc())
}

pub fn rfc2822(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text).ok().map(|t| t.to_utc())
}

/// An absolute date as flags and property filters read it: RFC 3339, a
/// naive date-time or date in `timezone`, or RFC 2822.
pub fn instant(text: &str, timezone: Tz) -> Option<DateTime<Utc>> {
    rfc3339(text)
        .or_else(|| naive(text).and_then(|n| in_zone(n, timezone)))
        .or_else(|| rfc2822(text))
}

/// Seconds since the epoch, fractions kept to the nanosecond.
pub fn epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

/// A non-negative epoch number in seconds, or in milliseconds from 10^11
/// up (10^11 seconds is year 5138), to the millisecond.
pub fn epoch_seconds_or_millis(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let millis = if n >= 1e11 { n } else { n * 1000.0 };
    DateTime::from_timestamp_millis(millis as i64)
}

/// `-?N[hdwmy]` counted back from `now`: always in the past, N below
/// 10,000; months and years move the calendar (clamping the day) in `now`'s
/// timezone.
pub fn relative(text: &str, now: DateTime<Tz>) -> Option<DateTime<Utc>> {
    let text = text.strip_prefix('-').unwrap_or(text);
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u32 = digits.parse().ok().filter(|&n| n < 10_000)?;
    let then = match unit {
        'h' => now.checked_sub_signed(TimeDelta::hours(count.into()))?,
        'd' => now.checked_sub_days(Days::new(count.into()))?,
        'w' => now.checked_sub_days(Days::new(u64::from(count) * 7))?,
        'm' => now.checked_sub_months(Months::new(count))?,
        'y' => now.checked_sub_months(Months::new(count.checked_mul(12)?))?,
        _ => return None,
    };
    Some(then.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dates_count_back_by_calendar() {
        let now = Tz::UTC.with_ymd_and_hms(2024, 3, 31, 12, 0, 0).unwrap();
        let month = relative("-1m", now).unwrap();
        assert_eq!(month.to_rfc3339(), "2024-02-29T12:00:00+00:00");
        assert_eq!(
            relative("2w", now).unwrap().to_rfc3339(),
            "2024-03-17T12:00:00+00:00"
        );
        assert!(relative("-10000d", now).is_none());
        assert!(relative("-1x", now).is_none());
        assert!(relative("-+1d", now).is_none());
    }

    /// Ingestion's spellings: one space or a `T`, never chrono's looser
    /// whitespace (a tab, or none at all).
    #[test]
    fn naive_date_times_take_one_space_or_a_t() {
        assert!(naive("2024-01-01 12:00").is_some());
        assert!(naive("2024-01-01T12:00:00.5").is_some());
        assert!(naive("2024-01-0112:00:00").is_none());
        assert!(naive("2024-01-01\t12:00:00").is_none());
    }

    #[test]
    fn naive_dates_are_read_in_the_given_timezone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let midnight = instant("2024-06-01", berlin).unwrap();
        assert_eq!(midnight.to_rfc3339(), "2024-05-31T22:00:00+00:00");
        let explicit = instant("2024-06-01T00:00:00Z", berlin).unwrap();
        assert_eq!(explicit.to_rfc3339(), "2024-06-01T00:00:00+00:00");
        let gap = NaiveDate::from_ymd_opt(2024, 3, 31)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(in_zone(gap, berlin), None);
    }
}
