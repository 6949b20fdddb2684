//! Request bodies on the SDK-facing endpoints, bounded in size and in time:
//! a client that sends too much is answered 413, one that stalls is
//! answered 408 and its connection freed, so neither holds anything up.

use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};

use crate::error::{ApiError, ApiResult};

pub async fn read(body: Body, limit: usize, timeout: Duration) -> ApiResult<Bytes> {
    match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::TooLarge(format!(
            "the request body exceeds the {} MiB limit of this endpoint",
            limit / (1024 * 1024)
        ))),
        Err(_) => Err(ApiError::Timeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs()
        ))),
    }
}
