//! The private API's authentication: `Authorization: Bearer <personal key>`.
//! A key opens exactly one project; any other project id is "not found", so
//! a key cannot even learn which projects exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use cairn_core::ProjectId;
use cairn_store::catalog::KeyGrant;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

/// The project a request's personal key opens.
#[derive(Debug, Clone, Copy)]
pub struct KeyProject(pub ProjectId);

/// The account a request's personal key acts for; none for the operator's
/// keys (the one made at first start, and keys made with it).
#[derive(Debug, Clone, Copy)]
pub struct KeyOwner(pub Option<Uuid>);

impl KeyOwner {
    /// Administrators' keys, and the operator's, may create projects.
    pub async fn is_admin(self, state: &AppState) -> ApiResult<bool> {
        let Some(id) = self.0 else {
            return Ok(true);
        };
        with_storage(&state.storage, move |store| {
            Ok(store
                .catalog
                .get_user(id)?
                .is_some_and(|user| user.is_admin))
        })
        .await
    }
}

pub fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Any route of the private API: the key must be valid.
pub async fn require_personal_key(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = bearer_token(&request) else {
        return Err(ApiError::Unauthorized(
            "authentication required: send `Authorization: Bearer <personal API key>` (phx_…)"
                .into(),
        ));
    };
    let grant = valid_key(&state, token)?;
    request.extensions_mut().insert(KeyProject(grant.project));
    request.extensions_mut().insert(KeyOwner(grant.owner));
    Ok(next.run(request).await)
}

/// The grant of a personal key, or why it is refused.
fn valid_key(state: &AppState, token: &str) -> Result<KeyGrant, ApiError> {
    state.personal_key(token).ok_or_else(|| {
        ApiError::Unauthorized(
            "the personal API key is not valid: it was never created here or has been revoked"
                .into(),
        )
    })
}

/// `/metrics`: any valid personal key, unless the server was started with
/// `--public-metrics`. Counters and memory figures tell an outsider how
/// busy the server is and when it is weakest.
pub async fn require_metrics_access(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.config.public_metrics {
        match bearer_token(&request) {
            Some(token) => {
                valid_key(&state, token)?;
            }
            None => {
                return Err(ApiError::Unauthorized(
                    "/metrics needs a personal API key: send `Authorization: Bearer <personal API key>` (phx_…), \
                     or start the server with --public-metrics (CAIRN_PUBLIC_METRICS) to serve it without one"
                        .into(),
                ))
            }
        }
    }
    Ok(next.run(request).await)
}

/// Routes under `/api/projects/{project_id}/`: the id (or `@current`) must be
/// the key's project. Handlers then read the [`ProjectId`] extension.
pub async fn require_project_access(
    Path(params): Path<HashMap<String, String>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let KeyProject(key_project) = *request
        .extensions()
        .get::<KeyProject>()
        .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?;
    let raw = params
        .get("project_id")
        .map(String::as_str)
        .unwrap_or_default();
    let requested = match raw {
        "@current" => key_project,
        id => ProjectId(
            id.parse()
                .map_err(|_| ApiError::NotFound(format!("project {id:?} not found")))?,
        ),
    };
    if requested != key_project {
        return Err(ApiError::NotFound(format!("project {requested} not found")));
    }
    request.extensions_mut().insert(requested);
    Ok(next.run(request).await)
}
