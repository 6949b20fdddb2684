//! Headers every response carries, so that browsers contain the UI even if
//! some text were ever to slip through unescaped: no script runs at all
//! (the UI has none), no other site can frame a page (clickjacking), no
//! response is sniffed into another type, and addresses with their query
//! strings do not leak to other sites in `Referer`.

use axum::extract::Request;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Only this server's own style sheet and images; no script, no framing.
/// This also forbids `style` attributes, so the UI styles through classes.
pub const CONTENT_SECURITY_POLICY_VALUE: &str =
    "default-src 'self'; script-src 'none'; frame-ancestors 'none'";

pub async fn add(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
