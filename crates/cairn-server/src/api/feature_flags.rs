//! `/api/projects/{id}/feature_flags/`: create, list, read, change and
//! delete flags, in PostHog's shape. Every definition is validated by
//! `cairn-flags` before it is saved; a refusal names the field.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use cairn_core::ProjectId;
use cairn_flags::{DependencyProblem, FeatureFlag, FlagFilters, FlagSet};
use cairn_store::catalog::StoredFlag;

use crate::error::{ApiError, ApiResult};
use crate::flags::to_feature_flag;
use crate::state::AppState;
use crate::storage::with_storage;

fn flag_json(flag: &StoredFlag) -> Value {
    json!({
        "id": flag.id,
        "key": flag.key,
        "name": flag.name,
        "filters": flag.filters,
        "active": flag.active,
        "deleted": flag.deleted,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "version": flag.version,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
    })
}

/// `GET …/feature_flags/`: every flag that is not deleted.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Value>> {
    let found = with_storage(&state.storage, move |store| {
        store.catalog.list_flags(project)
    })
    .await?;
    let results: Vec<Value> = found.iter().map(flag_json).collect();
    Ok(Json(
        json!({"count": results.len(), "next": null, "previous": null, "results": results}),
    ))
}

/// `GET …/feature_flags/{id}/`
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Path(params): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(flag_json(&find(&state, project, params.1).await?)))
}

pub async fn find(state: &AppState, project: ProjectId, id: i64) -> ApiResult<StoredFlag> {
    with_storage(&state.storage, move |store| {
        store.catalog.get_flag(project, id)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("feature flag {id} not found")))
}

/// `POST …/feature_flags/`
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let changes = parse_body(&body)?;
    let saved = create_flag(&state, project, &changes).await?;
    Ok((StatusCode::CREATED, Json(flag_json(&saved))))
}

/// Creates a flag from PostHog-shaped fields (shared by the API and the UI).
pub async fn create_flag(
    state: &AppState,
    project: ProjectId,
    changes: &Map<String, Value>,
) -> ApiResult<StoredFlag> {
    if !changes.contains_key("key") {
        return Err(ApiError::field("key", "a flag needs a key"));
    }
    let blank = StoredFlag {
        id: 0,
        project_id: project,
        key: String::new(),
        name: String::new(),
        filters: json!({"groups": []}),
        active: true,
        deleted: false,
        ensure_experience_continuity: false,
        version: 0,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    let _write = state.flags.writes.lock().await;
    let flag = checked(state, project, apply(blank, changes)?).await?;
    let saved = with_storage(&state.storage, move |store| store.catalog.create_flag(flag)).await?;
    state.flags.invalidate(project);
    Ok(saved)
}

/// `PATCH`/`PUT …/feature_flags/{id}/`: the fields sent replace the stored ones;
/// `"deleted": true` deletes.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Path(params): Path<(String, i64)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let changes = parse_body(&body)?;
    Ok(Json(flag_json(
        &update_flag(&state, project, params.1, &changes).await?,
    )))
}

/// Replaces the fields given (shared by the API and the UI).
pub async fn update_flag(
    state: &AppState,
    project: ProjectId,
    id: i64,
    changes: &Map<String, Value>,
) -> ApiResult<StoredFlag> {
    let _write = state.flags.writes.lock().await;
    let current = find(state, project, id).await?;
    let flag = checked(state, project, apply(current, changes)?).await?;
    let saved = with_storage(&state.storage, move |store| {
        store.catalog.update_flag(&flag)
    })
    .await?;
    state.flags.invalidate(project);
    Ok(saved)
}

/// `DELETE …/feature_flags/{id}/`: marks the flag deleted (its key is free again).
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Path(params): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let _write = state.flags.writes.lock().await;
    let mut flag = find(&state, project, params.1).await?;
    flag.deleted = true;
    // Flags that depend on this one would be left with a missing dependency.
    checked(&state, project, flag.clone()).await?;
    with_storage(&state.storage, move |store| {
        store.catalog.update_flag(&flag)
    })
    .await?;
    state.flags.invalidate(project);
    Ok(StatusCode::NO_CONTENT)
}

fn parse_body(body: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::BadRequest(format!(
            "expected a JSON object describing the flag, got {}",
            cairn_core::json_type(&other)
        ))),
        Err(e) => Err(ApiError::BadRequest(format!("body is not valid JSON: {e}"))),
    }
}

/// The flag with the request's fields applied; other fields are ignored, as
/// PostHog's clients send read-only ones back.
fn apply(mut flag: StoredFlag, changes: &Map<String, Value>) -> ApiResult<StoredFlag> {
    let text = |name: &str| match changes.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) if name == "name" => Ok(Some(String::new())),
        Some(other) => Err(ApiError::field(
            name,
            format!("must be a string, not {}", cairn_core::json_type(other)),
        )),
    };
    let boolean = |name: &str| match changes.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::field(
            name,
            format!(
                "must be true or false, not {}",
                cairn_core::json_type(other)
            ),
        )),
    };
    if let Some(key) = text("key")? {
        flag.key = key;
    }
    if let Some(name) = text("name")? {
        flag.name = name;
    }
    if let Some(active) = boolean("active")? {
        flag.active = active;
    }
    if let Some(deleted) = boolean("deleted")? {
        flag.deleted = deleted;
    }
    if let Some(eec) = boolean("ensure_experience_continuity")? {
        flag.ensure_experience_continuity = eec;
    }
    if let Some(filters) = changes.get("filters") {
        let parsed: FlagFilters = serde_json::from_value(filters.clone())
            .map_err(|e| ApiError::field("filters", format!("invalid filters: {e}")))?;
        // Stored in canonical form: what the evaluator and SDKs will read.
        flag.filters = serde_json::to_value(parsed).expect("filters serialise");
    }
    Ok(flag)
}

/// Validates `flag` on its own and among the project's other flags.
async fn checked(state: &AppState, project: ProjectId, flag: StoredFlag) -> ApiResult<StoredFlag> {
    let definition = to_feature_flag(&flag)
        .ok_or_else(|| ApiError::field("filters", "filters do not describe a flag"))?;
    let indexes: Vec<u8> = state
        .persons
        .group_types(project)?
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    definition
        .validate(&indexes)
        .map_err(|invalid| ApiError::field(invalid.attr, invalid.detail))?;
    let others = with_storage(&state.storage, move |store| {
        store.catalog.list_flags(project)
    })
    .await?;
    if !flag.deleted
        && others
            .iter()
            .any(|other| other.key == flag.key && other.id != flag.id)
    {
        return Err(ApiError::field(
            "key",
            format!("a flag with key {:?} already exists", flag.key),
        ));
    }
    let before = FlagSet::new(others.iter().filter_map(to_feature_flag));
    let mut all: Vec<FeatureFlag> = others
        .iter()
        .filter(|other| other.id != flag.id)
        .filter_map(to_feature_flag)
        .collect();
    all.push(definition);
    match FlagSet::new(all).check_dependencies_since(&before) {
        Ok(()) => Ok(flag),
        Err(DependencyProblem::Missing {
            flag: from,
            dependency,
        }) if flag.deleted => Err(ApiError::field(
            "deleted",
            format!("flag {from:?} depends on {dependency:?}; change it first"),
        )),
        Err(problem) => Err(ApiError::field("filters", problem.to_string())),
    }
}
