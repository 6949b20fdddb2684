//! When an event happened: the client's timestamp corrected by the clock skew
//! between the client's `sent_at` and our clock, or `now - offset`; and
//! whether that time is one Cairn stores at all. Every computation is
//! checked: the inputs are the client's, and any of them may be absurd.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use cairn_core::time;

/// Events may be at most this far ahead of the server's clock.
pub const FUTURE_LIMIT: Duration = Duration::hours(23);
/// No event is older than this (2000-01-01T00:00:00Z): analytics has no use
/// for earlier times, and one year-1 event would make every "all time"
/// insight span two thousand years of buckets.
pub const EARLIEST: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
    Some(earliest) => earliest,
    None => panic!("2000-01-01 is a valid time"),
};

/// What the client told us about time for one event.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientTime {
    pub timestamp: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub offset_ms: Option<i64>,
}

/// An event time outside `[EARLIEST, now + FUTURE_LIMIT]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutOfWindow {
    /// The computed time; `None` when it is not even representable.
    pub computed: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
}

/// The event's time, or why it is refused.
pub fn resolve(client: ClientTime, now: DateTime<Utc>) -> Result<DateTime<Utc>, OutOfWindow> {
    let computed = match (client.offset_ms, client.timestamp, client.sent_at) {
        (Some(offset), _, _) => {
            Duration::try_milliseconds(offset).and_then(|offset| now.checked_sub_signed(offset))
        }
        // The difference of two times always fits a Duration; adding it to
        // `now` may leave chrono's range.
        (None, Some(timestamp), Some(sent_at)) => now.checked_add_signed(timestamp - sent_at),
        (None, Some(timestamp), None) => Some(timestamp),
        (None, None, _) => Some(now),
    };
    let latest = now.checked_add_signed(FUTURE_LIMIT);
    match computed {
        Some(time) if time >= EARLIEST && latest.is_none_or(|latest| time <= latest) => Ok(time),
        computed => Err(OutOfWindow { computed, latest }),
    }
}

/// Parses a JSON timestamp: a string in one of the formats SDKs send, or a
/// number of seconds or milliseconds since the epoch.
pub fn parse_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => parse(text),
        Value::Number(n) => n.as_f64().and_then(time::epoch_seconds_or_millis),
        _ => None,
    }
}

/// Parses RFC 3339 (also with `+HH` offsets or a space for `T`), naive date
/// times as UTC, bare dates, RFC 2822 and numeric epochs (seconds, or
/// milliseconds from 10^11), with `cairn_core::time`'s readers.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    time::zoned_lenient(text)
        .or_else(|| time::naive(text).map(|naive| naive.and_utc()))
        .or_else(|| time::rfc2822(text))
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .and_then(time::epoch_seconds_or_millis)
        })
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
        // Signed years reach to chrono's edges, where arithmetic overflows.
        assert_eq!(
            parse("-262143-01-01T00:00:30Z"),
            DateTime::<Utc>::MIN_UTC.checked_add_signed(Duration::seconds(30))
        );
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
        assert_eq!(resolve(client, now), Ok(at("2024-01-01T12:00:05Z")));
    }

    #[test]
    fn offset_overrides_the_timestamp() {
        let now = at("2024-01-01T12:00:00Z");
        let client = ClientTime {
            timestamp: Some(at("2020-01-01T12:00:00Z")),
            offset_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(resolve(client, now), Ok(at("2024-01-01T11:59:58.500Z")));
    }

    #[test]
    fn times_outside_the_window_are_refused() {
        let now = at("2024-01-01T12:00:00Z");
        let time = |timestamp| ClientTime {
            timestamp: Some(at(timestamp)),
            ..Default::default()
        };
        assert!(resolve(time("2024-01-02T11:00:00Z"), now).is_ok());
        assert!(resolve(time("2024-01-02T11:00:01Z"), now).is_err());
        assert!(resolve(time("2000-01-01T00:00:00Z"), now).is_ok());
        assert!(resolve(time("1999-12-31T23:59:59Z"), now).is_err());
    }

    #[test]
    fn absurd_inputs_are_refused_not_panics() {
        let now = at("2024-01-01T12:00:00Z");
        for offset in [i64::MIN, i64::MAX, i64::MIN + 1, -i64::MAX / 2] {
            let client = ClientTime {
                offset_ms: Some(offset),
                ..Default::default()
            };
            assert!(resolve(client, now).is_err(), "{offset}");
        }
        let skewed = ClientTime {
            timestamp: Some(DateTime::<Utc>::MIN_UTC),
            sent_at: Some(DateTime::<Utc>::MAX_UTC),
            offset_ms: None,
        };
        assert_eq!(
            resolve(skewed, now),
            Err(OutOfWindow {
                computed: None,
                latest: Some(at("2024-01-02T11:00:00Z"))
            })
        );
        let at_the_edge = ClientTime {
            timestamp: Some(DateTime::<Utc>::MIN_UTC),
            ..Default::default()
        };
        assert!(resolve(at_the_edge, DateTime::<Utc>::MAX_UTC).is_err());
    }
}
