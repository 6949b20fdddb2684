//! Capture's request shapes, PostHog's v0 protocol: an event object, an
//! array of events, or `{"api_key", "batch": [...]}`, on the paths SDKs post
//! to. The body's wrapping is [`crate::transport`]'s.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use cairn_core::{json_type, names};

use crate::transport::Transport;
use crate::CaptureError;

/// PostHog's cap on one event (Kafka's message size).
pub(crate) const MAX_EVENT_BYTES: usize = 1_000_000;
/// Events in one request. SDKs send batches of 100 or so; without a cap,
/// 20 MiB of `{},` is seven million events, and parsed they take ~35× the
/// body's size in memory.
pub(crate) const MAX_EVENTS_PER_REQUEST: usize = 50_000;

/// Which family of capture path received the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapturePath {
    /// `/batch`: server SDKs.
    Batch,
    /// `/e`, `/i/v0/e`, `/capture`, `/track`: browser and legacy clients.
    Event,
    /// `/engage`: an object without `event` becomes `$identify`.
    Engage,
}

impl CapturePath {
    /// Largest request body accepted on this path.
    pub fn body_limit(self) -> usize {
        match self {
            Self::Batch => 20 * 1024 * 1024,
            Self::Event | Self::Engage => 2 * 1024 * 1024,
        }
    }
}

/// Query parameters PostHog's capture understands.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CaptureQuery {
    pub data: Option<String>,
    pub compression: Option<String>,
    #[serde(alias = "ver")]
    pub lib_version: Option<String>,
    /// `sent_at` in milliseconds since the epoch (posthog-js).
    #[serde(rename = "_")]
    pub sent_at_ms: Option<String>,
    pub beacon: Option<String>,
}

impl CaptureQuery {
    pub fn is_beacon(&self) -> bool {
        self.beacon.as_deref() == Some("1")
    }
}

/// A capture request as the HTTP layer received it.
#[derive(Debug)]
pub struct CaptureRequest<'a> {
    pub path: CapturePath,
    pub body: &'a [u8],
    pub query: &'a CaptureQuery,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
}

/// A decoded request: its events as JSON objects plus batch-level fields.
#[derive(Debug, Default)]
pub struct DecodedPayload {
    pub events: Vec<Map<String, Value>>,
    pub batch_token: Option<String>,
    pub sent_at: Option<String>,
    pub historical_migration: bool,
}

impl CaptureRequest<'_> {
    pub fn transport(&self) -> Transport<'_> {
        Transport {
            body: self.body,
            data: self.query.data.as_deref(),
            compression: self.query.compression.as_deref(),
            content_type: self.content_type,
            content_encoding: self.content_encoding,
        }
    }

    /// See [`Transport::is_cheap_to_decode`].
    pub fn is_cheap_to_decode(&self) -> bool {
        self.transport().is_cheap_to_decode()
    }
}

/// The request's events, its body unwrapped and its JSON read; legacy
/// paths accept a payload that is still base64 after the transport.
pub(crate) fn decode_payload(request: &CaptureRequest<'_>) -> Result<DecodedPayload, CaptureError> {
    let text = request
        .transport()
        .decode(request.path != CapturePath::Batch)?;
    parse_json(&text, request.path)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<EventList<'a>>,
    api_key: Option<Value>,
    token: Option<Value>,
    sent_at: Option<Value>,
    historical_migration: Option<Value>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
}

fn parse_json(text: &[u8], path: CapturePath) -> Result<DecodedPayload, CaptureError> {
    let text = std::str::from_utf8(text)
        .map_err(|e| CaptureError::Malformed(format!("payload is not valid UTF-8: {e}")))?;
    let body = text.trim_start();
    let mut payload = DecodedPayload::default();
    let raw_events: EventList<'_> = if body.starts_with('[') {
        serde_json::from_str(body).map_err(json_error)?
    } else if body.starts_with('{') {
        let envelope = envelope(body)?;
        if let Some(batch) = envelope.batch {
            let token = envelope.api_key.or(envelope.token);
            payload.batch_token = match token {
                Some(Value::String(token)) => Some(token),
                Some(_) => {
                    return Err(CaptureError::Malformed("`api_key` must be a string".into()))
                }
                None => return Err(CaptureError::NoToken),
            };
            payload.sent_at = match envelope.sent_at {
                Some(Value::String(sent_at)) => Some(sent_at),
                Some(Value::Null) | None => None,
                Some(_) => {
                    return Err(CaptureError::Malformed("`sent_at` must be a string".into()))
                }
            };
            payload.historical_migration =
                matches!(envelope.historical_migration, Some(Value::Bool(true)));
            batch
        } else if envelope.event.is_none() && path != CapturePath::Engage {
            return Err(CaptureError::Malformed(
                "non-engage request missing event name attribute".into(),
            ));
        } else {
            EventList {
                events: vec![serde_json::from_str(body).map_err(json_error)?],
                count: 1,
            }
        }
    } else {
        return Err(CaptureError::Malformed(
            "payload is not JSON: expected an event object, an array of events, or {\"api_key\", \"batch\"}"
                .into(),
        ));
    };

    if raw_events.count > MAX_EVENTS_PER_REQUEST {
        return Err(CaptureError::TooLarge(format!(
            "the request holds {} events, over the limit of {MAX_EVENTS_PER_REQUEST} in one \
             request: send them in smaller batches",
            raw_events.count
        )));
    }
    payload.events.reserve(raw_events.events.len());
    for (index, raw) in raw_events.events.into_iter().enumerate() {
        if raw.get().len() > MAX_EVENT_BYTES {
            return Err(CaptureError::TooLarge(format!(
                "event #{index} is {} bytes, over the 1 MB limit for one event",
                raw.get().len()
            )));
        }
        match serde_json::from_str::<Value>(raw.get()).map_err(json_error)? {
            Value::Object(mut event) => {
                if path == CapturePath::Engage && !event.contains_key("event") {
                    event.insert("event".into(), Value::String(names::event::IDENTIFY.into()));
                }
                payload.events.push(event)
            }
            other => {
                return Err(CaptureError::invalid_event(
                    index,
                    format!("an event must be a JSON object, got {}", json_type(&other)),
                ))
            }
        }
    }
    if payload.events.is_empty() {
        return Err(CaptureError::NoEvents);
    }
    Ok(payload)
}

/// A request's events as unparsed JSON, at most `MAX_EVENTS_PER_REQUEST`
/// of them kept: the rest are only counted, so an oversize batch is refused
/// without holding it.
struct EventList<'a> {
    events: Vec<&'a RawValue>,
    count: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for EventList<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = EventList<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = EventList {
                    events: Vec::new(),
                    count: 0,
                };
                while list.count < MAX_EVENTS_PER_REQUEST {
                    let Some(event) = seq.next_element()? else {
                        return Ok(list);
                    };
                    list.events.push(event);
                    list.count += 1;
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    list.count += 1;
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

fn json_error(e: serde_json::Error) -> CaptureError {
    CaptureError::Malformed(format!("invalid JSON: {e}"))
}

/// Reads `{"api_key", "batch", ...}`; a field of the wrong type is named.
fn envelope(body: &str) -> Result<Envelope<'_>, CaptureError> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let error = e.into_inner();
        match error.classify() {
            serde_json::error::Category::Data => {
                CaptureError::Malformed(format!("invalid JSON: `{field}`: {error}"))
            }
            _ => json_error(error),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{BASE64, MAX_DECOMPRESSED_BYTES};
    use base64::Engine;
    use flate2::{write::GzEncoder, Compression as Level};
    use std::io::Write;

    fn decode(
        path: CapturePath,
        body: &[u8],
        query: &CaptureQuery,
        content_type: Option<&str>,
    ) -> Result<DecodedPayload, CaptureError> {
        decode_payload(&CaptureRequest {
            path,
            body,
            query,
            content_type,
            content_encoding: None,
        })
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Level::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    const BATCH: &str = r#"{"api_key":"phc_k","sent_at":"2024-01-01T00:00:00Z","batch":[{"event":"a","distinct_id":"u"},{"event":"b","distinct_id":"u"}]}"#;

    #[test]
    fn a_request_holds_at_most_the_event_limit() {
        let batch = |n: usize| {
            let events = vec![r#"{"event":"e","distinct_id":"u"}"#; n].join(",");
            format!(r#"{{"api_key":"phc_k","batch":[{events}]}}"#)
        };
        let at_limit = batch(MAX_EVENTS_PER_REQUEST);
        let query = CaptureQuery::default();
        let payload = decode(CapturePath::Batch, at_limit.as_bytes(), &query, None).unwrap();
        assert_eq!(payload.events.len(), MAX_EVENTS_PER_REQUEST);
        let over = batch(MAX_EVENTS_PER_REQUEST + 1);
        let bare_array = format!(
            "[{}",
            over.split_once(":[").unwrap().1.trim_end_matches('}')
        );
        for body in [over, bare_array] {
            let Err(CaptureError::TooLarge(message)) =
                decode(CapturePath::Batch, body.as_bytes(), &query, None)
            else {
                panic!("{} events were accepted", MAX_EVENTS_PER_REQUEST + 1);
            };
            assert!(message.contains("50001 events"), "{message}");
        }
    }

    #[test]
    fn batch_shape_carries_token_and_sent_at() {
        let payload = decode(
            CapturePath::Batch,
            BATCH.as_bytes(),
            &CaptureQuery::default(),
            None,
        )
        .unwrap();
        assert_eq!(payload.events.len(), 2);
        assert_eq!(payload.batch_token.as_deref(), Some("phc_k"));
        assert_eq!(payload.sent_at.as_deref(), Some("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let payload = decode(
            CapturePath::Batch,
            &gzip(BATCH.as_bytes()),
            &CaptureQuery::default(),
            None,
        )
        .unwrap();
        assert_eq!(payload.events.len(), 2);
    }

    #[test]
    fn form_base64_and_lz64_bodies() {
        let array = r#"[{"event":"a","distinct_id":"u","properties":{"token":"phc_k"}}]"#;
        let b64 = BASE64.encode(array);
        let form = format!("data={}", b64.replace('+', " "));
        let payload = decode(
            CapturePath::Event,
            form.as_bytes(),
            &CaptureQuery::default(),
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert_eq!(payload.events.len(), 1);

        let lz = lz_str::compress_to_base64(array);
        let query = CaptureQuery {
            compression: Some("lz64".into()),
            ..Default::default()
        };
        let form = format!(
            "data={}",
            form_urlencoded::byte_serialize(lz.as_bytes()).collect::<String>()
        );
        let payload = decode(
            CapturePath::Event,
            form.as_bytes(),
            &query,
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert_eq!(payload.events[0]["event"], "a");
    }

    #[test]
    fn get_data_parameter_is_used() {
        let query = CaptureQuery {
            data: Some(BASE64.encode(r#"{"event":"a","distinct_id":"u","token":"t"}"#)),
            ..Default::default()
        };
        let payload = decode(CapturePath::Event, b"", &query, None).unwrap();
        assert_eq!(payload.events.len(), 1);
    }

    #[test]
    fn engage_without_event_becomes_identify() {
        let body = r#"{"$set":{"a":1},"$distinct_id":"u","$token":"t"}"#;
        assert!(decode(
            CapturePath::Event,
            body.as_bytes(),
            &CaptureQuery::default(),
            None
        )
        .is_err());
        let payload = decode(
            CapturePath::Engage,
            body.as_bytes(),
            &CaptureQuery::default(),
            None,
        )
        .unwrap();
        assert_eq!(payload.events[0]["event"], "$identify");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let q = CaptureQuery::default();
        assert_eq!(
            decode(CapturePath::Batch, b"", &q, None).unwrap_err(),
            CaptureError::EmptyPayload
        );
        assert!(matches!(
            decode(CapturePath::Batch, b"[1,2]", &q, None),
            Err(CaptureError::InvalidEvent { index: 0, .. })
        ));
        assert_eq!(
            decode(CapturePath::Batch, b"[]", &q, None).unwrap_err(),
            CaptureError::NoEvents
        );
        assert!(
            matches!(decode(CapturePath::Batch, &[0x1f, 0x8b, 0x08, 0, 1], &q, None), Err(CaptureError::Malformed(m)) if m.contains("gzip"))
        );
        assert!(matches!(
            decode(CapturePath::Batch, br#"{"batch":[]}"#, &q, None),
            Err(CaptureError::NoToken)
        ));
        assert!(matches!(
            decode(CapturePath::Batch, b"\xff\xfe{", &q, None),
            Err(CaptureError::Malformed(_))
        ));
    }

    #[test]
    fn gzip_bombs_are_refused() {
        let bomb = gzip(&vec![b' '; MAX_DECOMPRESSED_BYTES + 10]);
        assert!(matches!(
            decode(CapturePath::Batch, &bomb, &CaptureQuery::default(), None),
            Err(CaptureError::TooLarge(_))
        ));
    }

    #[test]
    fn one_oversized_event_is_refused() {
        let big = format!(
            r#"[{{"event":"a","distinct_id":"u","properties":{{"x":"{}"}}}}]"#,
            "a".repeat(MAX_EVENT_BYTES)
        );
        assert!(matches!(
            decode(
                CapturePath::Batch,
                big.as_bytes(),
                &CaptureQuery::default(),
                None
            ),
            Err(CaptureError::TooLarge(_))
        ));
    }
}
