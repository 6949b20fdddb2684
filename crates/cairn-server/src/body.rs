//! Request bodies, bounded in size and in time on every route: a client
//! that sends too much is answered 413, one that stalls is answered 408 and
//! its connection freed, so neither holds anything up; all bodies together
//! stay within [`BODY_MEMORY_LIMIT`]. Capture and `/flags`
//! read their bodies with [`read`] and their own limits; every other route
//! gets its body through [`read_whole`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, SemaphorePermit};

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

/// Request bodies held in memory at once, all requests together. The
/// per-request limits alone would let clients park far more (1024
/// connections × 100 HTTP/2 streams × 20 MiB); past this, a request is
/// answered 503 and SDKs retry later.
pub const BODY_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

static BODY_MEMORY: Semaphore = Semaphore::const_new(BODY_MEMORY_LIMIT);

pub async fn read(body: Body, limit: usize, timeout: Duration) -> ApiResult<Bytes> {
    match tokio::time::timeout(timeout, collect(body, limit)).await {
        Ok(Ok(Collected::Whole(bytes))) => Ok(bytes),
        Ok(Ok(Collected::TooLarge)) => Err(ApiError::TooLarge(format!(
            "the request body exceeds the {} MiB limit of this endpoint",
            limit / (1024 * 1024)
        ))),
        Ok(Ok(Collected::NoMemory)) => Err(ApiError::Busy(format!(
            "the server is already holding {} MiB of request bodies, its limit: retry shortly",
            BODY_MEMORY_LIMIT / (1024 * 1024)
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

enum Collected {
    Whole(Bytes),
    /// Longer than the limit.
    TooLarge,
    /// [`BODY_MEMORY_LIMIT`] is reached.
    NoMemory,
}

async fn collect(mut body: Body, limit: usize) -> Result<Collected, axum::Error> {
    let mut bytes = Vec::new();
    let mut held: Option<SemaphorePermit<'static>> = None;
    let mut seen = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        seen += data.len();
        if seen <= limit {
            bytes.reserve(data.len());
            if !hold(&mut held, bytes.capacity()) {
                return Ok(Collected::NoMemory);
            }
            bytes.extend_from_slice(&data);
        } else if seen > limit + DRAIN_LIMIT {
            return Ok(Collected::TooLarge);
        }
    }
    if seen > limit {
        return Ok(Collected::TooLarge);
    }
    Ok(Collected::Whole(match held {
        // The budget is given back when the last reference to the body goes.
        Some(permit) => Bytes::from_owner(Held {
            bytes,
            _permit: permit,
        }),
        None => Bytes::new(),
    }))
}

/// Grows `held` to cover `capacity` bytes; false when the budget has no room.
fn hold(held: &mut Option<SemaphorePermit<'static>>, capacity: usize) -> bool {
    let have = held.as_ref().map_or(0, SemaphorePermit::num_permits);
    if capacity <= have {
        return true;
    }
    let Ok(more) = u32::try_from(capacity - have) else {
        return false;
    };
    let Ok(more) = BODY_MEMORY.try_acquire_many(more) else {
        return false;
    };
    match held {
        Some(permit) => permit.merge(more),
        None => *held = Some(more),
    }
    true
}

/// A body's bytes with their share of [`BODY_MEMORY_LIMIT`].
struct Held {
    bytes: Vec<u8>,
    _permit: SemaphorePermit<'static>,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
