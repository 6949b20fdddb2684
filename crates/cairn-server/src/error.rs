//! Errors of the HTTP layer, each with the status and the message a client sees.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use cairn_ingest::{CaptureError, PipelineError};
use cairn_query::QueryError;
use cairn_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A request field that is missing or invalid, named in `attr`.
    #[error("{detail}")]
    InvalidField { attr: String, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The client did not send its request in time.
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooLarge(String),
    /// The server has no room for this request now; the client may retry.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug on our side (a panic in a blocking task), never bad input.
    #[error("internal error: {0}")]
    Internal(String),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// A query ran past its time limit and was stopped.
    #[error("{0}")]
    QueryTimeout(String),
}

impl ApiError {
    pub fn field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidField {
            attr: attr.into(),
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidField { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::BAD_REQUEST,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Capture(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Pipeline(PipelineError::Failed(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Pipeline(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Store(StoreError::Conflict(_)) => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::QueryTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Invalid { field, detail } => Self::field(field, detail),
            QueryError::Store(e) => Self::Store(e),
            QueryError::Internal(e) => Self::Internal(e),
            // (Nobody is left to read the answer of a cancelled query.)
            stopped @ (QueryError::TimedOut { .. } | QueryError::Cancelled) => {
                Self::QueryTimeout(stopped.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    /// PostHog's error shape: `{type, code, detail, attr}`; posthog-python
    /// shows `detail` to the user.
    fn into_response(self) -> Response {
        let status = self.status();
        // Shedding load is no failure to log per request.
        if status.is_server_error() && !matches!(self, Self::Busy(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let (kind, code) = match status {
            StatusCode::UNAUTHORIZED => ("authentication_error", "authentication_failed"),
            StatusCode::FORBIDDEN => ("authentication_error", "permission_denied"),
            StatusCode::NOT_FOUND => ("invalid_request", "not_found"),
            StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "payload_too_large"),
            StatusCode::REQUEST_TIMEOUT => ("invalid_request", "request_timeout"),
            StatusCode::GATEWAY_TIMEOUT => ("server_error", "query_timeout"),
            s if s.is_server_error() => ("server_error", "unavailable"),
            _ => ("validation_error", "invalid_input"),
        };
        let attr = match &self {
            Self::InvalidField { attr, .. } => Some(attr.as_str()),
            _ => None,
        };
        let body = json!({"type": kind, "code": code, "detail": self.to_string(), "attr": attr});
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What a client gets when its request's handler panicked (tower-http's
/// `CatchPanicLayer` calls this): a 500 in the usual error shape, while the
/// panic's message goes to the log, not to the client. The connection and
/// the worker thread serve on.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = cairn_ingest::panic_message(panic.as_ref());
    tracing::error!(panic = message, "a request handler panicked");
    ApiError::Internal(
        "the request hit a bug in Cairn and was abandoned; the server log has the details".into(),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    async fn boom() -> &'static str {
        panic!("secret internals")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_error_shape() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = || Request::get("/boom").body(Body::empty()).unwrap();
        for _ in 0..2 {
            let response = app.clone().oneshot(request()).await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["type"], "server_error");
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains("bug in Cairn"), "{detail}");
            assert!(!detail.contains("secret internals"), "{detail}");
        }
    }
}
