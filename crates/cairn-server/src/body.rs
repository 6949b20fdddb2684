//! Request bodies, bounded in size and in time on every route: a client
//! that sends too much is answered 413, one that stalls is answered 408 and
//! its connection freed, so neither holds anything up. Capture and `/flags`
//! read their bodies with [`read`] and their own limits; every other route
//! gets its body through [`read_whole`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The largest body of a private API request or a UI form (axum's own
/// default, now answered with a message that names it).
pub const API_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Middleware for routes whose handlers take their body whole (`Bytes`,
/// `Form`): the body is read here, within the request timeout and
/// [`API_BODY_LIMIT`], so no handler waits on a client that stalls.
pub async fn read_whole(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match read(body, API_BODY_LIMIT, state.config.request_timeout).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(error) => error.into_response(),
    }
}

/// Past its limit, up to this much more of a body is read and dropped, so
/// that a client still sending gets to read its 413 instead of a reset
/// connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

pub async fn read(body: Body, limit: usize, timeout: Duration) -> ApiResult<Bytes> {
    match tokio::time::timeout(timeout, collect(body, limit)).await {
        Ok(Ok(Some(bytes))) => Ok(bytes),
        Ok(Ok(None)) => Err(ApiError::TooLarge(format!(
            "the request body exceeds the {} MiB limit of this endpoint",
            limit / (1024 * 1024)
        ))),
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "the request body could not be read: {e}"
        ))),
        Err(_) => Err(ApiError::Timeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs()
        ))),
    }
}

/// The whole body, or `None` when it is longer than `limit`.
async fn collect(mut body: Body, limit: usize) -> Result<Option<Bytes>, axum::Error> {
    let mut bytes = Vec::new();
    let mut seen = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        seen += data.len();
        if seen <= limit {
            bytes.extend_from_slice(&data);
        } else if seen > limit + DRAIN_LIMIT {
            return Ok(None);
        }
    }
    Ok((seen <= limit).then(|| bytes.into()))
}
