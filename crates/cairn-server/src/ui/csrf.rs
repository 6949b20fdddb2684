//! The per-session CSRF token. Every form that changes something posts it
//! in a hidden field, and `require_token` refuses a POST without the right
//! one before any handler runs: another site can make a signed-in browser
//! post to Cairn, but it cannot read a page to learn the token.
//!
//! The token is a keyed hash (HMAC-SHA-256) of the session's secret, so it
//! needs no storage, lives exactly as long as the session, differs between
//! sessions, and tells nothing about the session cookie.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use maud::{html, Markup};
use sha2::Sha256;

use super::Session;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// What is hashed under the session's key: naming the purpose keeps this
/// token from ever equalling another value derived from the session.
const PURPOSE: &[u8] = b"cairn ui form token v1";

#[derive(Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn for_session(session: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(mac(session).finalize().into_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn mac(session: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(session.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(PURPOSE);
    mac
}

/// Whether `given` is the token of `session` (compared in constant time).
fn matches(session: &str, given: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(given)
        .is_ok_and(|bytes| mac(session).verify_slice(&bytes).is_ok())
}

/// The hidden field every state-changing form carries.
pub fn field(token: &CsrfToken) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(token.as_str()); }
}

/// Refuses a POST whose form lacks this session's token. Runs after
/// `require_session`, which puts the `Session` in the request.
pub async fn require_token(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return refused();
    };
    // `body::read_whole` wraps every UI route: the body is already in
    // memory, within its size and time limits.
    let (parts, body) = request.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the form: {error}"),
            )
                .into_response();
        }
    };
    let given = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value);
    match given {
        Some(token) if matches(&session.token, &token) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => refused(),
    }
}

fn refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the form's CSRF token is missing or wrong: reload the page and submit the form again",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_its_session_only() {
        let token = CsrfToken::for_session("session-a");
        assert!(matches("session-a", token.as_str()));
        assert!(!matches("session-b", token.as_str()));
        assert!(!matches("session-a", ""));
        assert!(!matches("session-a", "not base64!"));
        assert!(!token.as_str().contains("session-a"));
    }
}
