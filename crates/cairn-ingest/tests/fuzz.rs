//! Property-based fuzzing of the body decoder, the event normaliser and the
//! timestamp path: whatever arrives, they answer (events or an error naming
//! the problem) and never panic; what they accept keeps PostHog's limits,
//! and every stored event time lies inside the window. Runs a bounded
//! number of cases in CI; failures are kept in `proptest-regressions/` and
//! replayed first on every run.

use std::io::Write;

use std::collections::HashSet;

use base64::Engine;
use cairn_core::ProjectId;
use cairn_ingest::timestamp::{self, ClientTime, EARLIEST, FUTURE_LIMIT};
use cairn_ingest::{capture, CapturePath, CaptureQuery, CaptureRequest, IncomingEvent, Processor};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// 10 000 cases per property in CI (a few seconds); `PROPTEST_CASES=N`
/// for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    ProptestConfig::with_cases(cases)
}

/// Any JSON value, nested a few levels, with the strings SDKs send and the
/// ones they should not (empty, NUL, long, non-ASCII).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z$_]{0,12}".prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("\0".into())),
        Just(Value::String("x".repeat(300))),
        Just(Value::String("2024-03-01T12:00:00Z".into())),
        Just(Value::String("01890000-0000-7000-8000-000000000000".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An event-shaped object whose fields are sometimes right, sometimes not.
fn event() -> impl Strategy<Value = Value> {
    let field = |name: &'static str, right: BoxedStrategy<Value>| {
        prop_oneof![
            3 => right.prop_map(move |v| Some((name, v))),
            1 => json_value().prop_map(move |v| Some((name, v))),
            1 => Just(None),
        ]
    };
    (
        field("event", "[a-z$ ]{1,20}".prop_map(Value::String).boxed()),
        field(
            "distinct_id",
            "[a-z0-9]{0,20}".prop_map(Value::String).boxed(),
        ),
        field("properties", properties().boxed()),
        field("timestamp", Just(json!("2024-03-01T12:00:00Z")).boxed()),
        field(
            "uuid",
            Just(json!("01890000-0000-7000-8000-000000000001")).boxed(),
        ),
        field("$set", json_value().boxed()),
    )
        .prop_map(|fields| {
            let (a, b, c, d, e, f) = fields;
            let map: Map<String, Value> = [a, b, c, d, e, f]
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            Value::Object(map)
        })
}

/// Properties with the keys ingestion reads specially.
fn properties() -> impl Strategy<Value = Value> {
    let special = prop::sample::select(vec![
        "$groups",
        "$set",
        "$set_once",
        "$unset",
        "$group_type",
        "$group_key",
        "$group_set",
        "$anon_distinct_id",
        "alias",
        "distinct_id",
        "token",
        "$process_person_profile",
        "$ip",
        "$current_url",
        "$lib",
    ]);
    prop::collection::vec((special, json_value()), 0..8).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Captures for a project that takes every key; checks what was accepted.
fn ingest(path: CapturePath, body: &[u8], query: &CaptureQuery, content_type: Option<&str>) {
    let request = CaptureRequest {
        path,
        body,
        query,
        content_type,
        content_encoding: None,
    };
    let now = Utc::now();
    match capture(&request, |_| Some(ProjectId(1)), now) {
        Ok(captured) => {
            for event in captured.batch.events {
                assert_in_window(event.timestamp, now);
                let distinct_id = event.distinct_id.as_str();
                assert!(!distinct_id.is_empty());
                assert!(distinct_id.chars().count() <= 200);
                assert!(!distinct_id.contains('\0'));
                assert!(!event.event.is_empty() && event.event.chars().count() <= 200);
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

/// Gives each event object a project key (as posthog-js does), so that
/// bare events get past the key to the normaliser.
fn with_token(event: Value) -> Value {
    match event {
        Value::Object(mut fields) => {
            fields.insert("token".into(), json!("phc_x"));
            Value::Object(fields)
        }
        other => other,
    }
}

fn assert_in_window(time: DateTime<Utc>, now: DateTime<Utc>) {
    assert!(time >= EARLIEST, "{time} is before 2000");
    if let Some(latest) = now.checked_add_signed(FUTURE_LIMIT) {
        assert!(time <= latest, "{time} is more than 23 h after {now}");
    }
}

/// Any time chrono can hold, weighted towards its edges, the window's
/// edges and today.
fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let (min, max) = (
        micros(DateTime::<Utc>::MIN_UTC),
        micros(DateTime::<Utc>::MAX_UTC),
    );
    let (earliest, today) = (micros(EARLIEST), micros(Utc::now()));
    const DAY: i64 = 86_400_000_000;
    const MINUTES: i64 = 3 * 60_000_000;
    prop_oneof![
        min..=max,
        min..=min + MINUTES,
        max - MINUTES..=max,
        min..=min + 10 * DAY,
        max - 10 * DAY..=max,
        earliest - DAY..=earliest + DAY,
        today - 2 * DAY..=today + 2 * DAY,
    ]
    .prop_map(|micros| DateTime::from_timestamp_micros(micros).expect("in chrono's range"))
}

/// An `offset` in milliseconds: anything, or one that lands near the edges.
fn any_offset() -> impl Strategy<Value = i64> {
    let to_minimum = (Utc::now() - DateTime::<Utc>::MIN_UTC).num_milliseconds();
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        to_minimum - 120_000..=to_minimum + 120_000,
        -200_000_000i64..=200_000_000,
    ]
}

/// A timestamp as SDKs (and attackers) write it.
fn any_timestamp_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_time().prop_map(|t| json!(t.to_rfc3339())),
        any_time().prop_map(|t| json!(t.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string())),
        any_time().prop_map(|t| json!(t.timestamp_millis())),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

const PATHS: [CapturePath; 3] = [CapturePath::Batch, CapturePath::Event, CapturePath::Engage];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        path in prop::sample::select(PATHS.to_vec()),
        compression in prop::option::of(prop::sample::select(vec!["gzip", "gzip-js", "lz64", "base64", "bogus"])),
        form in any::<bool>(),
    ) {
        let query = CaptureQuery { compression: compression.map(str::to_string), ..CaptureQuery::default() };
        let content_type = form.then_some("application/x-www-form-urlencoded");
        ingest(path, &body, &query, content_type);
    }

    #[test]
    fn gzip_of_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        ingest(CapturePath::Batch, &gzip(&body), &CaptureQuery::default(), None);
    }

    #[test]
    fn event_shaped_json_in_every_transport_never_panics(
        events in prop::collection::vec(event(), 0..6),
        envelope in 0..3u8,
        transport in 0..4u8,
        path in prop::sample::select(PATHS.to_vec()),
    ) {
        let json = match envelope {
            0 => json!({"api_key": "phc_x", "batch": events}),
            1 => Value::Array(events.into_iter().map(with_token).collect()),
            _ => events.into_iter().next().map_or(Value::Null, with_token),
        }
        .to_string()
        .into_bytes();
        let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (body, query, content_type) = match transport {
            0 => (json, CaptureQuery::default(), None),
            1 => (gzip(&json), CaptureQuery::default(), None),
            2 => (
                format!("data={}", base64(&json)).into_bytes(),
                CaptureQuery { compression: Some("base64".into()), ..CaptureQuery::default() },
                Some("application/x-www-form-urlencoded"),
            ),
            _ => (
                Vec::new(),
                CaptureQuery { data: Some(base64(&json)), ..CaptureQuery::default() },
                None,
            ),
        };
        ingest(path, &body, &query, content_type);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn resolved_times_are_inside_the_window_or_refused(
        timestamp in prop::option::of(any_time()),
        sent_at in prop::option::of(any_time()),
        offset_ms in prop::option::of(any_offset()),
        now in any_time(),
    ) {
        let client = ClientTime { timestamp, sent_at, offset_ms };
        if let Ok(time) = timestamp::resolve(client, now) {
            assert_in_window(time, now);
        }
    }

    #[test]
    fn client_times_in_json_are_stored_inside_the_window_or_refused(
        timestamp in prop::option::of(any_timestamp_value()),
        sent_at in prop::option::of(any_time()),
        offset in prop::option::of(any_offset()),
        personless in any::<bool>(),
    ) {
        let mut event = json!({"event": "e", "distinct_id": "u",
            "properties": {"$process_person_profile": !personless}});
        if let Some(timestamp) = timestamp {
            event["timestamp"] = timestamp;
        }
        if let Some(offset) = offset {
            event["offset"] = json!(offset);
        }
        let mut body = json!({"api_key": "phc_x", "batch": [event]});
        if let Some(sent_at) = sent_at {
            body["sent_at"] = json!(sent_at.to_rfc3339());
        }
        let body = body.to_string();
        let query = CaptureQuery::default();
        let request = CaptureRequest {
            path: CapturePath::Batch,
            body: body.as_bytes(),
            query: &query,
            content_type: None,
            content_encoding: None,
        };
        let now = Utc::now();
        let batch = capture(&request, |_| Some(ProjectId(1)), now).unwrap().batch;
        prop_assert_eq!(batch.events.len() + batch.refused.len(), 1);
        for event in &batch.events {
            assert_in_window(event.timestamp, now);
        }
    }

    /// Processing does date arithmetic too (how old a person is); whatever
    /// time an event carries, it must not panic.
    #[test]
    fn processing_events_at_any_time_never_panics(
        times in prop::collection::vec((any_time(), any::<bool>()), 1..6),
        now in any_time(),
    ) {
        let entities = cairn_store::EntityState::temporary(1 << 20).unwrap();
        let mut processor = Processor::new(std::sync::Arc::new(entities), 5);
        let events: Vec<IncomingEvent> = times
            .into_iter()
            .map(|(timestamp, personless)| IncomingEvent {
                uuid: uuid::Uuid::new_v4(),
                event: "e".into(),
                distinct_id: "u".into(),
                properties: json!({"$process_person_profile": !personless,
                    "$groups": {"company": "acme"}})
                    .as_object()
                    .unwrap()
                    .clone(),
                timestamp,
                warnings: vec![],
            })
            .collect();
        processor.prepare(ProjectId(1), &events).unwrap();
        processor.process(ProjectId(1), events, now, &HashSet::new());
        processor.take_commit();
    }
}
