//! Ingestion warnings (PostHog's `ingestion_warnings/`): what was accepted but
//! could not be applied in full, grouped by kind, newest first.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use cairn_core::ProjectId;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::storage::with_storage;

const MAX_WARNINGS: usize = 10_000;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Value>> {
    let warnings = with_storage(&state.storage, move |store| {
        store.entities.list_warnings(project, MAX_WARNINGS)
    })
    .await?;
    let mut summaries: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for warning in &warnings {
        let kind = warning.kind.as_str();
        let entry =
            json!({"type": kind, "timestamp": warning.timestamp, "details": warning.details});
        match summaries.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push(entry),
            None => summaries.push((kind, vec![entry])),
        }
    }
    let results: Vec<Value> = summaries
        .into_iter()
        .map(|(kind, list)| {
            json!({"type": kind, "lastSeen": list[0]["timestamp"], "count": list.len(), "warnings": list})
        })
        .collect();
    Ok(Json(json!({"results": results})))
}
