//! One raw event object → one `IncomingEvent`: required fields checked (with
//! errors that name the field), ids stringified and cut, `$set`/`$set_once`
//! lifted into properties, the timestamp resolved.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use cairn_core::{json_type, names, DistinctId, DistinctIdError, Properties, WarningKind};

use crate::timestamp::{self, ClientTime};
use crate::wire::{CaptureQuery, DecodedPayload};
use crate::CaptureError;

/// PostHog cuts event names to this many characters.
const MAX_EVENT_NAME_CHARS: usize = 200;

/// An event that passed capture's checks, ready for person and group processing.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    pub uuid: Uuid,
    pub event: String,
    pub distinct_id: DistinctId,
    pub properties: Properties,
    pub timestamp: DateTime<Utc>,
    /// Problems found while normalising that did not stop the event.
    pub warnings: Vec<(WarningKind, Value)>,
}

/// A request's events after normalisation.
#[derive(Debug, Default)]
pub struct NormalizedBatch {
    pub events: Vec<IncomingEvent>,
    /// Events refused one by one (a time outside the window): not stored,
    /// each recorded as an ingestion warning of the request's project.
    pub refused: Vec<(WarningKind, Value)>,
}

impl NormalizedBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.refused.is_empty()
    }
}

/// What became of one raw event.
enum Outcome {
    Accepted(IncomingEvent),
    /// Dropped on purpose, without a word (`$performance_event`).
    Dropped,
    Refused(WarningKind, Value),
}

/// Normalises every event of a request. A malformed event fails the request,
/// as in PostHog; an event at an impossible time is refused on its own.
pub fn normalize_batch(
    payload: DecodedPayload,
    query: &CaptureQuery,
    now: DateTime<Utc>,
) -> Result<NormalizedBatch, CaptureError> {
    let sent_at = payload
        .sent_at
        .as_deref()
        .and_then(timestamp::parse)
        .or_else(|| query.sent_at_ms.as_deref().and_then(sent_at_from_millis));
    let mut batch = NormalizedBatch {
        events: Vec::with_capacity(payload.events.len()),
        refused: Vec::new(),
    };
    for (index, raw) in payload.events.into_iter().enumerate() {
        match normalize_event(raw, sent_at, now)
            .map_err(|reason| CaptureError::invalid_event(index, reason))?
        {
            Outcome::Accepted(event) => batch.events.push(event),
            Outcome::Dropped => {}
            Outcome::Refused(kind, details) => batch.refused.push((kind, details)),
        }
    }
    Ok(batch)
}

/// `?_=` in milliseconds counts only when it is a plausible recent time.
fn sent_at_from_millis(text: &str) -> Option<DateTime<Utc>> {
    let millis: i64 = text.trim().parse().ok()?;
    DateTime::from_timestamp_millis(millis).filter(|ts| ts.year() > 2020)
}

fn normalize_event(
    mut raw: Map<String, Value>,
    sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Outcome, String> {
    let event = match raw.remove("event") {
        Some(Value::String(name)) if !name.is_empty() => truncate_chars(name, MAX_EVENT_NAME_CHARS),
        Some(Value::String(_)) => return Err("`event` is empty".into()),
        None | Some(Value::Null) => return Err("missing `event` name".into()),
        Some(other) => {
            return Err(format!(
                "`event` must be a string, got {}",
                json_type(&other)
            ))
        }
    };
    if event == names::event::PERFORMANCE_EVENT {
        return Ok(Outcome::Dropped);
    }

    let mut properties = match raw.remove("properties") {
        Some(Value::Object(properties)) => properties,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            return Err(format!(
                "`properties` must be an object, got {}",
                json_type(&other)
            ))
        }
    };

    let distinct_id = raw
        .remove("distinct_id")
        .or_else(|| raw.remove(names::property::DISTINCT_ID))
        .filter(|v| !v.is_null())
        .or_else(|| properties.get("distinct_id").cloned());
    let distinct_id = match DistinctId::from_event(distinct_id) {
        Ok(id) => id,
        Err(DistinctIdError::Empty) => {
            return Err("event submitted with an empty distinct_id".into())
        }
        Err(DistinctIdError::Missing | DistinctIdError::Type(_)) => {
            return Err("event submitted without a distinct_id".into())
        }
    };

    let uuid = match raw.remove("uuid") {
        None | Some(Value::Null) => Uuid::now_v7(),
        Some(Value::String(text)) if text.is_empty() => Uuid::now_v7(),
        Some(Value::String(text)) => {
            Uuid::parse_str(&text).map_err(|_| format!("`uuid` is not a valid UUID: {text:?}"))?
        }
        Some(other) => {
            return Err(format!(
                "`uuid` must be a string, got {}",
                json_type(&other)
            ))
        }
    };

    if let Some(mode) = properties.get(names::property::COOKIELESS_MODE) {
        if !mode.is_boolean() {
            return Err("`$cookieless_mode` must be a boolean".into());
        }
    }

    for field in [names::property::SET, names::property::SET_ONCE] {
        match raw.remove(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(top_level)) => merge_top_level(&mut properties, field, top_level),
            Some(other) => {
                return Err(format!(
                    "`{field}` must be an object, got {}",
                    json_type(&other)
                ))
            }
        }
    }

    let mut warnings = Vec::new();
    let raw_timestamp = raw.remove("timestamp").filter(|v| !v.is_null());
    let client_timestamp = raw_timestamp.as_ref().and_then(|value| {
        let parsed = timestamp::parse_value(value);
        if parsed.is_none() {
            warnings.push((
                WarningKind::IgnoredInvalidTimestamp,
                serde_json::json!({ "timestamp": value }),
            ));
        }
        parsed
    });
    let offset_ms = match raw.remove("offset") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or("`offset` must be a number of milliseconds")?,
        ),
        Some(other) => {
            return Err(format!(
                "`offset` must be a number, got {}",
                json_type(&other)
            ))
        }
    };
    let ignore_sent_at =
        properties.get(names::property::IGNORE_SENT_AT) == Some(&Value::Bool(true));
    let client = ClientTime {
        timestamp: client_timestamp,
        sent_at: if ignore_sent_at { None } else { sent_at },
        offset_ms,
    };
    let timestamp = match timestamp::resolve(client, now) {
        Ok(timestamp) => timestamp,
        Err(out_of_window) => {
            let details = serde_json::json!({
                "event": event,
                "uuid": uuid,
                "distinct_id": distinct_id.as_str(),
                "timestamp": raw_timestamp,
                "sent_at": client.sent_at,
                "offset": offset_ms,
                "computed": out_of_window.computed,
                "earliest": timestamp::EARLIEST,
                "latest": out_of_window.latest,
                "reason": "the event's time is before 2000-01-01 or more than 23 hours ahead of the server's clock; the event was not stored",
            });
            return Ok(Outcome::Refused(
                WarningKind::EventTimestampOutOfRange,
                details,
            ));
        }
    };

    Ok(Outcome::Accepted(IncomingEvent {
        uuid,
        event,
        distinct_id,
        properties,
        timestamp,
        warnings,
    }))
}

/// Top-level `$set`/`$set_once` (legacy SDKs) join the ones in properties;
/// the top-level value wins a conflict.
fn merge_top_level(properties: &mut Properties, field: &str, top_level: Map<String, Value>) {
    match properties.get_mut(field) {
        Some(Value::Object(existing)) => existing.extend(top_level),
        _ => {
            properties.insert(field.to_string(), Value::Object(top_level));
        }
    }
}

fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((byte_index, _)) = text.char_indices().nth(max) {
        text.truncate(byte_index);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn one(event: Value) -> Result<Option<IncomingEvent>, String> {
        match normalize_event(event.as_object().unwrap().clone(), None, now())? {
            Outcome::Accepted(event) => Ok(Some(event)),
            Outcome::Dropped => Ok(None),
            Outcome::Refused(kind, details) => Err(format!("refused: {kind:?} {details}")),
        }
    }

    #[test]
    fn ids_are_stringified_and_cut() {
        let e = one(json!({"event": "x".repeat(300), "distinct_id": 42}))
            .unwrap()
            .unwrap();
        assert_eq!(e.distinct_id.as_str(), "42");
        assert_eq!(e.event.chars().count(), 200);
        let e = one(json!({"event": "e", "distinct_id": "é".repeat(250)}))
            .unwrap()
            .unwrap();
        assert_eq!(e.distinct_id.as_str().chars().count(), 200);
        let e = one(json!({"event": "e", "properties": {"distinct_id": "from-props"}}))
            .unwrap()
            .unwrap();
        assert_eq!(e.distinct_id.as_str(), "from-props");
    }

    #[test]
    fn required_fields_are_named_in_errors() {
        assert!(one(json!({"distinct_id": "u"}))
            .unwrap_err()
            .contains("event"));
        assert!(one(json!({"event": "", "distinct_id": "u"}))
            .unwrap_err()
            .contains("empty"));
        assert!(one(json!({"event": "e"}))
            .unwrap_err()
            .contains("distinct_id"));
        assert!(
            one(json!({"event": "e", "distinct_id": "u", "uuid": "nope"}))
                .unwrap_err()
                .contains("uuid")
        );
        assert!(
            one(json!({"event": "e", "distinct_id": "u", "properties": []}))
                .unwrap_err()
                .contains("properties")
        );
        assert!(one(json!({"event": 5, "distinct_id": "u"}))
            .unwrap_err()
            .contains("string"));
    }

    #[test]
    fn top_level_set_wins_over_properties() {
        let e = one(json!({"event": "e", "distinct_id": "u", "$set": {"a": 1},
            "properties": {"$set": {"a": 0, "b": 2}}}))
        .unwrap()
        .unwrap();
        assert_eq!(e.properties["$set"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn client_uuid_is_kept_and_missing_one_is_v7() {
        let id = "0190b2b0-4f4e-7c53-a0a8-5d4a8e3e1b11";
        assert_eq!(
            one(json!({"event": "e", "distinct_id": "u", "uuid": id}))
                .unwrap()
                .unwrap()
                .uuid
                .to_string(),
            id
        );
        assert_eq!(
            one(json!({"event": "e", "distinct_id": "u"}))
                .unwrap()
                .unwrap()
                .uuid
                .get_version_num(),
            7
        );
    }

    #[test]
    fn invalid_timestamp_is_a_warning_not_an_error() {
        let e = one(json!({"event": "e", "distinct_id": "u", "timestamp": "soon"}))
            .unwrap()
            .unwrap();
        assert_eq!(e.timestamp, now());
        assert_eq!(e.warnings[0].0, WarningKind::IgnoredInvalidTimestamp);
    }

    #[test]
    fn events_at_impossible_times_are_refused_alone() {
        let payload = DecodedPayload {
            events: [
                json!({"event": "good", "distinct_id": "u"}),
                json!({"event": "year one", "distinct_id": "u", "timestamp": "0001-01-01T00:00:00Z"}),
                json!({"event": "far offset", "distinct_id": "u", "offset": i64::MIN}),
                json!({"event": "future", "distinct_id": "u", "timestamp": "2024-06-03T12:00:00Z"}),
            ]
            .into_iter()
            .map(|e| e.as_object().unwrap().clone())
            .collect(),
            ..Default::default()
        };
        let batch = normalize_batch(payload, &CaptureQuery::default(), now()).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].event, "good");
        let refused: Vec<&str> = batch
            .refused
            .iter()
            .map(|(kind, details)| {
                assert_eq!(*kind, WarningKind::EventTimestampOutOfRange);
                details["event"].as_str().unwrap()
            })
            .collect();
        assert_eq!(refused, ["year one", "far offset", "future"]);
    }

    #[test]
    fn performance_events_are_dropped() {
        assert_eq!(
            one(json!({"event": "$performance_event", "distinct_id": "u"})).unwrap(),
            None
        );
    }
}
