//! Request bodies on the SDK-facing endpoints, bounded in size and in time:
//! a client that sends too much is answered 413, one that stalls is
//! answered 408 and its connection freed, so neither holds anything up.

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use crate::error::{ApiError, ApiResult};

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
