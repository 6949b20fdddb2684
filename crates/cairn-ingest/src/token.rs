//! Where a capture request carries its project API key, and the shape checks
//! PostHog applies to it before looking it up.

use serde_json::Value;

use cairn_core::names;

use crate::CaptureError;

/// The first well-formed place a single event keeps its token: top-level
/// `token`, `$token` or `api_key`, else `properties.token` (posthog-js).
pub(crate) fn event_token(event: &serde_json::Map<String, Value>) -> Option<&str> {
    ["token", names::property::TOKEN, "api_key"]
        .iter()
        .find_map(|field| event.get(*field).and_then(Value::as_str))
        .or_else(|| event.get("properties")?.get("token")?.as_str())
}

/// The request's token: the batch-level one wins; otherwise every event must
/// agree on one.
pub(crate) fn request_token<'a>(
    batch_token: Option<&'a str>,
    events: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<&'a str, CaptureError> {
    if let Some(token) = batch_token {
        return validate(token);
    }
    let mut found: Option<&str> = None;
    for token in events.into_iter().flatten() {
        match found {
            Some(previous) if previous != token => return Err(CaptureError::InconsistentTokens),
            _ => found = Some(token),
        }
    }
    validate(found.ok_or(CaptureError::NoToken)?)
}

fn validate(token: &str) -> Result<&str, CaptureError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(CaptureError::InvalidToken("empty"));
    }
    if token.len() > 64 {
        return Err(CaptureError::InvalidToken("longer than 64 characters"));
    }
    if !token.is_ascii() {
        return Err(CaptureError::InvalidToken("not ASCII"));
    }
    if token.contains('\0') {
        return Err(CaptureError::InvalidToken("contains a NUL byte"));
    }
    if token.starts_with("phx_") {
        return Err(CaptureError::InvalidToken(
            "this is a personal API key (phx_); capture takes the project API key (phc_)",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_token_wins_and_events_must_agree() {
        assert_eq!(request_token(Some("phc_a"), [Some("phc_b")]), Ok("phc_a"));
        assert_eq!(
            request_token(None, [Some("phc_a"), None, Some("phc_a")]),
            Ok("phc_a")
        );
        assert_eq!(
            request_token(None, [Some("phc_a"), Some("phc_b")]),
            Err(CaptureError::InconsistentTokens)
        );
        assert_eq!(request_token(None, [None]), Err(CaptureError::NoToken));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(request_token(Some("phx_personal"), []).is_err());
        assert!(request_token(Some(&"a".repeat(65)), []).is_err());
        assert!(request_token(Some("  "), []).is_err());
        assert_eq!(request_token(Some(" phc_x "), []), Ok("phc_x"));
    }

    #[test]
    fn token_is_found_in_properties() {
        let event = json!({"event": "e", "properties": {"token": "phc_js"}});
        assert_eq!(event_token(event.as_object().unwrap()), Some("phc_js"));
    }
}
