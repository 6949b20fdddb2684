//! Where request bodies are decoded. Undoing gzip, lz64, base64 and form
//! encoding and parsing the JSON behind them costs up to tens of
//! milliseconds of CPU and tens of MB near the decompression bound: such
//! work runs on the blocking pool, at most one job per core at a time, so
//! that a flood of bombs queues behind itself instead of stalling the async
//! workers every other request needs, or piling up memory.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Runs `decode` in place when `cheap`, else on the blocking pool behind
/// the decoding permits.
pub async fn decode<T, F>(cheap: bool, decode: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    if cheap {
        return decode();
    }
    let permit = PERMITS
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::Internal(format!("decoding permits closed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        // Held by the work itself: a client that goes away does not free a
        // permit while its decoding still runs.
        let _permit = permit;
        decode()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("decoding the request body failed: {e}")))?
}
