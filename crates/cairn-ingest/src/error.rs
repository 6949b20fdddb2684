use thiserror::Error;

/// Why a capture request (or the transport of a `/flags` body) was
/// refused. Every variant names what was wrong so that the reply tells the
/// sender what to fix; nothing of a refused request is stored.
#[derive(Debug, Error, PartialEq)]
pub enum CaptureError {
    #[error("request missing data payload: send events in the body or in ?data=")]
    EmptyPayload,
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("payload too large: {0}")]
    TooLarge(String),
    #[error("request holds no event")]
    NoEvents,
    #[error("event #{index}: {reason}")]
    InvalidEvent { index: usize, reason: String },
    #[error("event submitted without an api_key: put the project API key in `api_key` or `token`")]
    NoToken,
    #[error("batch submitted with inconsistent api_key values")]
    InconsistentTokens,
    #[error("API key is not valid: {0}")]
    InvalidToken(&'static str),
    #[error("no project has the API key {0:?}: use the project API key (phc_…) shown at first start or in the project settings")]
    UnknownToken(String),
}

impl CaptureError {
    pub fn invalid_event(index: usize, reason: impl Into<String>) -> Self {
        Self::InvalidEvent {
            index,
            reason: reason.into(),
        }
    }

    /// The HTTP status PostHog's capture answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooLarge(_) => 413,
            Self::NoToken
            | Self::InconsistentTokens
            | Self::InvalidToken(_)
            | Self::UnknownToken(_) => 401,
            _ => 400,
        }
    }
}
