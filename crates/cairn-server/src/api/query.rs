//! `POST query/`: insights in PostHog's query JSON (`{"query": {"kind": …}}`),
//! and the plain actor lists (`GroupsQuery`, `ActorsQuery`; see [`super::actor_lists`]).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use chrono::{DateTime, Utc};

use cairn_core::ProjectId;
use cairn_query::{Budget, ProjectContext};
use cairn_store::StoreError;

use crate::storage::Storage;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn query(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    headers: HeaderMap,
    RawQuery(params): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let mut body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let query = match body.get_mut("query").map(Value::take) {
        Some(query @ Value::Object(_)) => query,
        _ => {
            return Err(ApiError::field(
                "query",
                "the body must be {\"query\": {\"kind\": \"TrendsQuery\", …}}",
            ))
        }
    };
    let csv = super::export::wants_csv(&headers, params.as_deref());
    if let Some(node) = super::actors::drill_down(&query) {
        let request = super::actors::Request::parse(node)?;
        let (limit, offset) = (request.limit, request.offset);
        let listing = super::actors::list(&state, project, request).await?;
        return Ok(if csv {
            super::export::actors_csv(listing)
        } else {
            Json(super::actors::page_json(&listing, limit, offset)?).into_response()
        });
    }
    if super::actor_lists::handles(&query) {
        return Ok(Json(super::actor_lists::answer(&state, project, query).await?).into_response());
    }
    let kind = insight_kind(&query);
    let answer = answer(&state, project, query).await?;
    if csv {
        return super::export::insight_csv(&kind, &answer);
    }
    Ok(Json(answer).into_response())
}

/// The kind of insight a query node asks for (inside an `InsightVizNode`).
fn insight_kind(query: &Value) -> String {
    let node = match query.get("kind").and_then(Value::as_str) {
        Some("InsightVizNode") => query.get("source").unwrap_or(&Value::Null),
        _ => query,
    };
    node.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Runs one insight query (shared by the API and the UI) within the
/// configured query timeout. If the client goes away, this future is
/// dropped, and with it the guard that cancels the query.
pub async fn answer(state: &AppState, project: ProjectId, query: Value) -> ApiResult<Value> {
    let storage = state.storage.clone();
    let now = state.clock.now();
    let budget = Budget::new(state.config.query_timeout);
    let _cancel_when_dropped = budget.cancel_on_drop();
    tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        // First the scanner: it waits until every acknowledged event (and
        // the group types they brought) is readable.
        let scanner = storage.events.scanner()?;
        let mut ctx = project_context(&storage, project, now)?
            .ok_or_else(|| ApiError::NotFound(format!("project {project} does not exist")))?;
        ctx.budget = budget;
        Ok(cairn_query::run(&*scanner, &ctx, query)?)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
}

/// The context insights of `project` run in, read from the store's catalog;
/// `None` if the project does not exist.
pub fn project_context(
    storage: &Storage,
    project: ProjectId,
    now: DateTime<Utc>,
) -> Result<Option<ProjectContext>, StoreError> {
    let Some(stored) = storage.catalog.get_project(project)? else {
        return Ok(None);
    };
    let mut ctx = ProjectContext::new(project, &stored.timezone, stored.week_start_day, now);
    ctx.group_types = storage
        .catalog
        .group_types(project)?
        .into_iter()
        .map(|t| (t.group_type_index, t.group_type))
        .collect();
    ctx.person_overrides = storage.events.has_person_overrides(project)?;
    Ok(Some(ctx))
}
