//! Capture endpoints: every path PostHog's SDKs post events to. A 200 reply
//! means the events are committed to disk.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use cairn_ingest::{CapturePath, CaptureQuery, CaptureRequest, Captured};

use crate::error::ApiResult;
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
    state: &Arc<AppState>,
    path: CapturePath,
    query: CaptureQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<()> {
    let limit = path.body_limit();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let received = Received {
        path,
        body: crate::body::read(body, limit, state.config.request_timeout).await?,
        query,
        content_type: header(CONTENT_TYPE),
        content_encoding: header(CONTENT_ENCODING),
    };
    let cheap = received.request().is_cheap_to_decode();
    let keys = state.clone();
    let Captured { project, batch } = crate::decoding::decode(cheap, move || {
        let project_for = |token: &str| keys.project_for_token(token);
        Ok(cairn_ingest::capture(
            &received.request(),
            project_for,
            keys.clock.now(),
        )?)
    })
    .await?;
    if batch.is_empty() {
        return Ok(());
    }
    let accepted = state.pipeline.submit(project, batch).await?;
    metrics::counter!("cairn_events_accepted_total").increment(accepted.stored as u64);
    metrics::counter!("cairn_events_duplicate_total").increment(accepted.duplicates as u64);
    Ok(())
}

/// A capture request's parts, owned, so that decoding can move off the
/// async workers.
struct Received {
    path: CapturePath,
    body: Bytes,
    query: CaptureQuery,
    content_type: Option<String>,
    content_encoding: Option<String>,
}

impl Received {
    fn request(&self) -> CaptureRequest<'_> {
        CaptureRequest {
            path: self.path,
            body: &self.body,
            query: &self.query,
            content_type: self.content_type.as_deref(),
            content_encoding: self.content_encoding.as_deref(),
        }
    }
}
