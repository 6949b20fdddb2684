//! Dates for the `is_date_*` operators: instants with an offset are taken as
//! written, naive ones are read in the project's timezone, and `-7d`-style
//! filter values count back from now (spec/flags.md §3.5).

use chrono::{DateTime, Days, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// A property value as an instant: epoch seconds (number or numeric string)
/// or a date string.
pub(crate) fn property_instant(value: &Value, timezone: Tz) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => epoch_seconds(n.as_f64()?),
        Value::String(s) => match s.parse::<f64>() {
            Ok(seconds) => epoch_seconds(seconds),
            Err(_) => absolute(s, timezone),
        },
        _ => None,
    }
}

/// A filter value as an instant: relative (`-30d`) or absolute.
pub fn filter_instant(value: &str, timezone: Tz) -> Option<DateTime<Utc>> {
    relative(value, Utc::now().with_timezone(&timezone)).or_else(|| absolute(value, timezone))
}

fn epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

fn absolute(value: &str, timezone: Tz) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        return Some(instant.to_utc());
    }
    let naive = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .or_else(|| {
            NAIVE_FORMATS
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        });
    match naive {
        // In a DST gap there is no such wall-clock time; take the earliest reading.
        Some(naive) => timezone
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.to_utc()),
        None => DateTime::parse_from_rfc2822(value).ok().map(|t| t.to_utc()),
    }
}

/// `-?N[hdwmy]`, always in the past, N below 10,000; months and years move
/// the calendar (clamping the day), in the project's timezone.
fn relative(value: &str, now: DateTime<Tz>) -> Option<DateTime<Utc>> {
    let value = value.strip_prefix('-').unwrap_or(value);
    let unit = value.chars().last()?;
    let count: u32 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    if count >= 10_000 || !value[..value.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
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
    fn naive_dates_are_read_in_the_project_timezone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let midnight = filter_instant("2024-06-01", berlin).unwrap();
        assert_eq!(midnight.to_rfc3339(), "2024-05-31T22:00:00+00:00");
        let explicit = filter_instant("2024-06-01T00:00:00Z", berlin).unwrap();
        assert_eq!(explicit.to_rfc3339(), "2024-06-01T00:00:00+00:00");
    }

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

    /// Client-sent values at the edges of chrono's range, in zones on both
    /// sides of UTC, are answered (or not parsed), never a panic.
    #[test]
    fn extreme_dates_are_never_a_panic() {
        let zones: [Tz; 3] = [
            Tz::UTC,
            "Pacific/Kiritimati".parse().unwrap(),
            "Pacific/Pago_Pago".parse().unwrap(),
        ];
        let texts = [
            "-262144-01-01 00:00:00",
            "-262144-01-01",
            "+262143-12-31T23:59:59",
            "262143-12-31 23:59",
            "-262144-01-01T00:00:00Z",
            "1e300",
            "-1e300",
            "NaN",
            "-9999y",
            "9999m",
        ];
        for zone in zones {
            for text in texts {
                let _ = filter_instant(text, zone);
                let _ = property_instant(&Value::from(text), zone);
            }
            for number in [f64::MAX, f64::MIN, 1e20, -1e20, 8.2e12, -8.3e12] {
                let _ = property_instant(&Value::from(number), zone);
            }
        }
    }

    #[test]
    fn property_values_may_be_epoch_seconds() {
        let at = property_instant(&Value::from(1_717_243_200.5), Tz::UTC).unwrap();
        assert_eq!(at.to_rfc3339(), "2024-06-01T12:00:00.500+00:00");
        assert!(property_instant(&Value::Bool(true), Tz::UTC).is_none());
    }
}
