//! When an event happened: the client's timestamp corrected by the clock skew
//! between the client's `sent_at` and our clock, or `now - offset`, never
//! more than 23 hours in the future.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

const FUTURE_LIMIT: Duration = Duration::hours(23);

/// What the client told us about time for one event.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientTime {
    pub timestamp: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub offset_ms: Option<i64>,
}

/// The computed timestamp, and whether it had to be clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedTime {
    pub timestamp: DateTime<Utc>,
    pub clamped_from_future: bool,
}

pub fn resolve(client: ClientTime, now: DateTime<Utc>) -> ResolvedTime {
    let mut timestamp = match (client.timestamp, client.sent_at) {
        (Some(ts), Some(sent_at)) => now + (ts - sent_at),
        (Some(ts), None) => ts,
        (None, _) => now,
    };
    if let Some(offset) = client.offset_ms {
        timestamp = now - Duration::milliseconds(offset);
    }
    let clamped_from_future = timestamp - now > FUTURE_LIMIT;
    if clamped_from_future {
        timestamp = now;
    }
    ResolvedTime {
        timestamp,
        clamped_from_future,
    }
}

/// Parses a JSON timestamp: a string in one of the formats SDKs send, or a
/// number of seconds or milliseconds since the epoch.
pub fn parse_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => parse(text),
        Value::Number(n) => n.as_f64().and_then(from_epoch_number),
        _ => None,
    }
}

/// Parses RFC 3339 (also with `+HH` offsets or a space for `T`), naive date
/// times as UTC, bare dates, RFC 2822 and numeric epochs.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Some(ts.with_timezone(&Utc));
    }
    let with_t = text.replacen(' ', "T", 1);
    for candidate in [with_t.as_str(), text] {
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f%#z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%dT%H:%M%#z",
        ] {
            if let Ok(ts) = DateTime::parse_from_str(candidate, format) {
                return Some(ts.with_timezone(&Utc));
            }
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&with_t, format) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?));
    }
    if let Ok(ts) = DateTime::parse_from_rfc2822(text) {
        return Some(ts.with_timezone(&Utc));
    }
    text.parse::<f64>().ok().and_then(from_epoch_number)
}

/// Numbers above 10^11 can only be milliseconds (10^11 seconds is year 5138).
fn from_epoch_number(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let millis = if n >= 1e11 { n } else { n * 1000.0 };
    DateTime::from_timestamp_millis(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn formats_sdks_send() {
        let noon = at("2024-01-01T12:00:00Z");
        for text in [
            "2024-01-01T12:00:00Z",
            "2024-01-01T12:00:00.000000+00:00",
            "2024-01-01T13:00:00+01",
            "2024-01-01 12:00:00",
            "2024-01-01T12:00:00",
            "Mon, 01 Jan 2024 12:00:00 +0000",
            "1704110400",
            "1704110400000",
        ] {
            assert_eq!(parse(text), Some(noon), "{text}");
        }
        assert_eq!(parse("2024-01-01"), Some(at("2024-01-01T00:00:00Z")));
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn clock_skew_is_corrected() {
        let now = at("2024-01-01T12:00:10Z");
        let client = ClientTime {
            timestamp: Some(at("2024-01-01T11:00:00Z")),
            sent_at: Some(at("2024-01-01T11:00:05Z")),
            offset_ms: None,
        };
        assert_eq!(resolve(client, now).timestamp, at("2024-01-01T12:00:05Z"));
    }

    #[test]
    fn offset_overrides_and_future_is_clamped() {
        let now = at("2024-01-01T12:00:00Z");
        let client = ClientTime {
            offset_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(
            resolve(client, now).timestamp,
            at("2024-01-01T11:59:58.500Z")
        );
        let future = ClientTime {
            timestamp: Some(at("2024-01-03T12:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            resolve(future, now),
            ResolvedTime {
                timestamp: now,
                clamped_from_future: true
            }
        );
        let soon = ClientTime {
            timestamp: Some(at("2024-01-02T10:00:00Z")),
            ..Default::default()
        };
        assert!(!resolve(soon, now).clamped_from_future);
    }
}
