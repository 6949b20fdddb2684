//! Capture endpoints: every path PostHog's SDKs post events to. A 200 reply
//! means the events are committed to disk.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use cairn_ingest::token::{event_token, request_token};
use cairn_ingest::{decode_payload, normalize_batch, CapturePath, CaptureQuery, WireRequest};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn batch(
    state: State<Arc<AppState>>,
    query: Query<CaptureQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    capture(state, CapturePath::Batch, query, headers, body).await
}

pub async fn event(
    state: State<Arc<AppState>>,
    query: Query<CaptureQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    capture(state, CapturePath::Event, query, headers, body).await
}

pub async fn engage(
    state: State<Arc<AppState>>,
    query: Query<CaptureQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    capture(state, CapturePath::Engage, query, headers, body).await
}

async fn capture(
    State(state): State<Arc<AppState>>,
    path: CapturePath,
    Query(query): Query<CaptureQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let beacon = query.is_beacon();
    match accept(&state, path, query, headers, body).await {
        Ok(()) if beacon => StatusCode::NO_CONTENT.into_response(),
        Ok(()) => Json(json!({"status": "Ok"})).into_response(),
        Err(error) => {
            let status = error.status();
            metrics::counter!("cairn_events_rejected_total", "status" => status.as_str().to_owned()).increment(1);
            tracing::debug!(%error, "capture request refused");
            error.into_response()
        }
    }
}

async fn accept(
    state: &AppState,
    path: CapturePath,
    query: CaptureQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<()> {
    let limit = path.body_limit();
    let body = crate::body::read(body, limit, state.config.request_timeout).await?;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, content_encoding) = (header(CONTENT_TYPE), header(CONTENT_ENCODING));

    let cheap = WireRequest {
        path,
        body: &body,
        query: &query,
        content_type: content_type.as_deref(),
        content_encoding: content_encoding.as_deref(),
    }
    .is_cheap_to_decode();
    let (token, batch) = crate::decoding::decode(cheap, move || {
        let request = WireRequest {
            path,
            body: &body,
            query: &query,
            content_type: content_type.as_deref(),
            content_encoding: content_encoding.as_deref(),
        };
        let payload = decode_payload(&request)?;
        let token = request_token(
            payload.batch_token.as_deref(),
            payload.events.iter().map(event_token),
        )?
        .to_owned();
        let batch = normalize_batch(payload, &query, Utc::now())?;
        Ok((token, batch))
    })
    .await?;

    let project = state.project_for_token(&token).ok_or_else(|| {
        ApiError::Unauthorized(format!(
            "no project has the API key {token:?}: use the project API key (phc_…) shown at first start or in the project settings"
        ))
    })?;
    if batch.is_empty() {
        return Ok(());
    }
    let accepted = state.pipeline.submit(project, batch).await?;
    metrics::counter!("cairn_events_accepted_total").increment(accepted.stored as u64);
    metrics::counter!("cairn_events_duplicate_total").increment(accepted.duplicates as u64);
    Ok(())
}
