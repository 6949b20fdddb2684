//! `GET /flags/definitions` and `GET /api/feature_flag/local_evaluation`:
//! every flag with the project's group type mapping, for SDKs that evaluate
//! locally (spec/flags.md §2). Weak ETag; `If-None-Match` gets a 304.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use cairn_core::ProjectId;

use super::project_flags;
use crate::auth::KeyProject;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn definitions(
    State(state): State<Arc<AppState>>,
    Extension(KeyProject(project)): Extension<KeyProject>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = query.get("token").filter(|t| !t.is_empty()) {
        if state.project_for_token(token) != Some(project) {
            return Err(ApiError::Unauthorized(
                "`token` is not the project API key of the personal key's project".into(),
            ));
        }
    }
    let body =
        serde_json::to_vec(&document(&state, project).await?).expect("definitions serialise");
    let tag = hex(&Sha256::digest(&body)[..16]);
    let cache_headers = [
        (
            ETAG,
            HeaderValue::from_str(&format!("W/\"{tag}\"")).expect("hex is a header value"),
        ),
        (
            CACHE_CONTROL,
            HeaderValue::from_static("private, must-revalidate"),
        ),
    ];
    let seen = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| bare(t) == tag));
    if seen {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let content_type = (CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((cache_headers, [content_type], body).into_response())
}

/// An entity tag without `W/` and quotes.
fn bare(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn document(state: &AppState, project: ProjectId) -> ApiResult<Value> {
    let flags = project_flags(state, project).await?;
    let flags: Vec<Value> = flags
        .set
        .definitions()
        .into_iter()
        .map(|flag| {
            let mut value = serde_json::to_value(flag).expect("flag serialises");
            if let Value::Object(fields) = &mut value {
                fields.insert("team_id".into(), json!(project.0));
                fields.insert("has_encrypted_payloads".into(), json!(false));
                fields.insert("evaluation_runtime".into(), json!("all"));
            }
            value
        })
        .collect();
    let mapping: Map<String, Value> = state
        .persons
        .group_types(project)?
        .into_iter()
        .map(|(index, name)| (index.to_string(), Value::String(name)))
        .collect();
    Ok(json!({"flags": flags, "group_type_mapping": mapping, "cohorts": {}}))
}
