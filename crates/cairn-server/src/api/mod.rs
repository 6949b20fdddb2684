//! The private REST API under `/api/projects/{project_id}/`, in PostHog's
//! shapes so its docs and clients apply.

pub mod actor_lists;
pub mod actors;
pub mod events;
pub mod export;
pub mod feature_flags;
pub mod groups;
pub mod persons;
pub mod projects;
pub mod query;
pub mod warnings;

use axum::http::{HeaderMap, Uri};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

pub fn page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
}

/// The same bounds for a limit written in a query body, where a value
/// outside them is refused rather than clamped: the answer echoes it.
pub fn checked_page_size(limit: Option<i64>) -> Result<usize, String> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(format!("{n} is not between 1 and {MAX_PAGE_SIZE}")),
    }
}

/// Opaque cursor for offset pagination.
pub fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o{offset}"))
}

pub fn decode_cursor(cursor: &str) -> ApiResult<usize> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.strip_prefix('o')?.parse().ok())
        .ok_or_else(|| ApiError::field("cursor", "cursor is not one this server handed out"))
}

/// The URL of another page: this request's URL with `replace` parameters
/// swapped in, absolute when the Host header allows.
pub fn page_url(uri: &Uri, headers: &HeaderMap, replace: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if !replace.iter().any(|(name, _)| *name == key) {
            query.append_pair(&key, &value);
        }
    }
    for (key, value) in replace {
        query.append_pair(key, value);
    }
    let (path, query) = (uri.path(), query.finish());
    match headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(host) => format!("http://{host}{path}?{query}"),
        None => format!("{path}?{query}"),
    }
}
