//! Dates for the `is_date_*` operators (spec/flags.md §3.5), read by
//! `cairn_core::time`: instants with an offset are taken as written, naive
//! ones are read in the project's timezone, and `-7d`-style filter values
//! count back from the evaluation's `now`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use cairn_core::time;

/// A property value as an instant: epoch seconds (number or numeric string)
/// or a date string.
pub fn property_instant(value: &Value, timezone: Tz) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => time::epoch_seconds(n.as_f64()?),
        Value::String(s) => match s.parse::<f64>() {
            Ok(seconds) => time::epoch_seconds(seconds),
            Err(_) => time::instant(s, timezone),
        },
        _ => None,
    }
}

/// A filter value as an instant: relative to `now` (`-30d`) or absolute.
pub fn filter_instant(value: &str, timezone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    time::relative(value, now.with_timezone(&timezone)).or_else(|| time::instant(value, timezone))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client-sent values at the edges of chrono's range, in zones on both
    /// sides of UTC, are answered (or not parsed), never a panic.
    #[test]
    fn extreme_dates_are_never_a_panic() {
        let now = DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
            .unwrap()
            .to_utc();
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
                let _ = filter_instant(text, zone, now);
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

    #[test]
    fn relative_values_count_back_from_the_given_now() {
        let now = DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
            .unwrap()
            .to_utc();
        let week = filter_instant("-7d", Tz::UTC, now).unwrap();
        assert_eq!(week.to_rfc3339(), "2024-03-08T12:00:00+00:00");
    }

    /// The ISO spellings SQL casts (cairn_core::time's patterns) are ones
    /// the Rust readers read, so insights never accept a date flags refuse.
    #[test]
    fn sql_date_patterns_are_within_the_readers() {
        use cairn_core::time::{naive, rfc3339, NAIVE_PATTERN, ZONED_PATTERN};
        let zoned = fancy_regex::Regex::new(ZONED_PATTERN).unwrap();
        let plain = fancy_regex::Regex::new(NAIVE_PATTERN).unwrap();
        let mut seen = (0, 0);
        for text in [
            "2024-06-01T12:00:00Z",
            "2024-06-01 12:00:00.25+02:00",
            "2024-06-01T12:00:00",
            "2024-06-01 12:00",
            "2024-06-01",
            "2024-6-1",
            "2024-06-01t12:00:00z",
            "2024-06-01T12",
            "2024-06-01T12:00Z",
            "Sat, 01 Jun 2024 12:00:00 +0000",
        ] {
            if zoned.is_match(text).unwrap() {
                assert!(rfc3339(text).is_some(), "{text}");
                seen.0 += 1;
            }
            if plain.is_match(text).unwrap() {
                assert!(naive(text).is_some(), "{text}");
                seen.1 += 1;
            }
        }
        assert_eq!(seen, (2, 3));
    }
}
