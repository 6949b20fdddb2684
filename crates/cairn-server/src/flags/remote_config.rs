//! Remote config: what posthog-js loads at start (`/array/{token}/config`
//! as JSON, `/array/{token}/config.js` as a script) to learn which
//! compression the server takes and which features are on. `/flags` with
//! `config=true` answers the same fields. Cairn has no session recording,
//! surveys, heatmaps or site apps, so those are off and posthog-js loads
//! nothing for them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use cairn_core::ProjectId;

use super::project_flags;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The fields every remote-config answer carries.
pub fn fields(has_feature_flags: bool) -> Map<String, Value> {
    let config = json!({
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": has_feature_flags,
        "analytics": {"endpoint": "/i/v0/e/"},
        "autocapture_opt_out": false,
        "autocaptureExceptions": false,
        "captureDeadClicks": false,
        "capturePerformance": false,
        "sessionRecording": false,
        "heatmaps": false,
        "surveys": false,
        "siteApps": [],
        "elementsChainAsString": true,
        "defaultIdentifiedOnly": true,
    });
    match config {
        Value::Object(fields) => fields,
        _ => unreachable!("a JSON object literal"),
    }
}

async fn config(state: &AppState, token: &str) -> ApiResult<Value> {
    let token = token.trim();
    let project: ProjectId = state
        .project_for_token(token)
        .ok_or_else(|| ApiError::NotFound(format!("no project has the API key `{token}`")))?;
    let flags = project_flags(state, project).await?;
    let mut config = fields(flags.set.flags().iter().any(|f| f.active));
    config.insert("token".into(), Value::String(token.to_string()));
    Ok(Value::Object(config))
}

/// `GET /array/{token}/config`
pub async fn json(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let config = config(&state, &token).await?;
    Ok(([(CACHE_CONTROL, "public, max-age=60")], Json(config)).into_response())
}

/// `GET /array/{token}/config.js`: sets `window._POSTHOG_REMOTE_CONFIG[token]`.
pub async fn script(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let config = config(&state, &token).await?;
    let token = serde_json::to_string(token.trim()).expect("a string serialises");
    let body = format!(
        "(function(){{window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}};\
         window._POSTHOG_REMOTE_CONFIG[{token}]={{config:{config},siteApps:[]}};}})();"
    );
    Ok((
        [
            (CONTENT_TYPE, "application/javascript"),
            (CACHE_CONTROL, "public, max-age=60"),
        ],
        body,
    )
        .into_response())
}
