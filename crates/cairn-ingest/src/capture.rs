//! The capture entry point: one request's bytes become its project and its
//! events ready for the pipeline, in the order that spends least on a
//! request that will be refused. PostHog's v0 protocol carries the project
//! key only inside the body (spec/ingest.md §1.3; no query parameter or
//! header names it), so the body is decoded first; the key is then looked
//! up, and only a known project's events are normalised.

use chrono::{DateTime, Utc};

use cairn_core::ProjectId;

use crate::normalize::{normalize_batch, NormalizedBatch};
use crate::token::{event_token, request_token};
use crate::wire::{decode_payload, CaptureRequest};
use crate::CaptureError;

/// A request that passed capture's checks.
#[derive(Debug)]
pub struct Captured {
    pub project: ProjectId,
    pub batch: NormalizedBatch,
}

/// Decodes `request`, finds the project its key opens with `project_for`,
/// and normalises its events as of `now`. PostHog's capture accepts any
/// well-formed key and drops unknown ones later; Cairn knows its projects
/// and refuses an unknown key at once (401).
pub fn capture(
    request: &CaptureRequest<'_>,
    project_for: impl FnOnce(&str) -> Option<ProjectId>,
    now: DateTime<Utc>,
) -> Result<Captured, CaptureError> {
    let payload = decode_payload(request)?;
    let token = request_token(
        payload.batch_token.as_deref(),
        payload.events.iter().map(event_token),
    )?;
    let project = project_for(token).ok_or_else(|| CaptureError::UnknownToken(token.to_owned()))?;
    let batch = normalize_batch(payload, request.query, now)?;
    Ok(Captured { project, batch })
}

#[cfg(test)]
mod tests {
    use cairn_core::time::{Clock, FixedClock};
    use cairn_core::WarningKind;
    use serde_json::json;

    use super::*;
    use crate::timestamp::FUTURE_LIMIT;
    use crate::{CapturePath, CaptureQuery};

    /// The server's clock in these tests.
    const CLOCK: FixedClock = FixedClock(match DateTime::from_timestamp(1_710_504_000, 0) {
        Some(now) => now, // 2024-03-15T12:00:00Z
        None => panic!("a valid time"),
    });

    fn request<'a>(body: &'a str, query: &'a CaptureQuery) -> CaptureRequest<'a> {
        CaptureRequest {
            path: CapturePath::Batch,
            body: body.as_bytes(),
            query,
            content_type: None,
            content_encoding: None,
        }
    }

    #[test]
    fn a_known_key_opens_its_project() {
        let query = CaptureQuery::default();
        let body = r#"{"api_key": "phc_k", "batch": [{"event": "e", "distinct_id": "u"}]}"#;
        let captured = capture(
            &request(body, &query),
            |key| (key == "phc_k").then_some(ProjectId(7)),
            CLOCK.now(),
        )
        .unwrap();
        assert_eq!(captured.project, ProjectId(7));
        assert_eq!(captured.batch.events[0].distinct_id.as_str(), "u");
    }

    #[test]
    fn an_unknown_key_is_refused_before_any_event_is_normalised() {
        let query = CaptureQuery::default();
        // The event is invalid: normalising it would fail with a 400.
        let body = r#"{"api_key": "phc_nobody", "batch": [{"event": "e"}]}"#;
        let refused = capture(&request(body, &query), |_| None, CLOCK.now()).unwrap_err();
        assert_eq!(refused, CaptureError::UnknownToken("phc_nobody".into()));
        assert_eq!(refused.http_status(), 401);
    }

    /// Events are timed and windowed by the `now` capture is given, never
    /// the machine's clock: the window is 2000-01-01 .. now + 23h, and a
    /// client's clock skew (`sent_at` against now) is taken off its times.
    #[test]
    fn event_times_are_read_against_the_given_now() {
        let now = CLOCK.now();
        let at = |t: DateTime<Utc>| t.to_rfc3339();
        let latest = now + FUTURE_LIMIT;
        let body = json!({"api_key": "phc_k", "batch": [
            {"event": "latest", "distinct_id": "u", "timestamp": at(latest)},
            {"event": "too late", "distinct_id": "u", "timestamp": at(latest + chrono::Duration::seconds(1))},
            {"event": "earliest", "distinct_id": "u", "timestamp": "2000-01-01T00:00:00Z"},
            {"event": "too early", "distinct_id": "u", "timestamp": "1999-12-31T23:59:59Z"},
            {"event": "untimed", "distinct_id": "u"},
        ]})
        .to_string();
        let query = CaptureQuery::default();
        let batch = capture(&request(&body, &query), |_| Some(ProjectId(1)), now)
            .unwrap()
            .batch;
        let times: Vec<_> = batch
            .events
            .iter()
            .map(|e| (e.event.as_str(), at(e.timestamp)))
            .collect();
        assert_eq!(
            times,
            [
                ("latest", at(latest)),
                ("earliest", "2000-01-01T00:00:00+00:00".into()),
                ("untimed", at(now)),
            ]
        );
        let refused: Vec<_> = batch.refused.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(refused, [WarningKind::EventTimestampOutOfRange; 2]);

        // A client whose clock runs an hour fast: its event ten seconds
        // before it sent the batch happened ten seconds before our now.
        let skewed = json!({"api_key": "phc_k", "sent_at": "2024-03-15T13:00:00Z", "batch": [
            {"event": "e", "distinct_id": "u", "timestamp": "2024-03-15T12:59:50Z"},
        ]})
        .to_string();
        let batch = capture(&request(&skewed, &query), |_| Some(ProjectId(1)), now)
            .unwrap()
            .batch;
        assert_eq!(
            batch.events[0].timestamp,
            now - chrono::Duration::seconds(10)
        );
    }
}
