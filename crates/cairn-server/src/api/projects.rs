//! Projects and their personal API keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use cairn_core::ProjectId;
use cairn_store::catalog::{PersonalKey, Project};

use crate::auth::{KeyOwner, KeyProject};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

fn project_json(project: &Project, state: &AppState) -> Value {
    json!({
        "id": project.id,
        "name": project.name,
        "api_token": project.api_token,
        "timezone": project.timezone,
        "week_start_day": project.week_start_day,
        "group_type_limit": state.config.group_type_limit,
        "created_at": project.created_at,
    })
}

fn key_json(key: &PersonalKey) -> Value {
    json!({"id": key.id, "label": key.label, "mask_value": key.mask_value, "created_at": key.created_at})
}

/// `GET /api/projects/`: the projects this key opens (its own).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(KeyProject(project)): Extension<KeyProject>,
) -> ApiResult<Json<Value>> {
    let found = with_storage(&state.storage, move |store| {
        store.catalog.get_project(project)
    })
    .await?;
    let results: Vec<Value> = found.iter().map(|p| project_json(p, &state)).collect();
    Ok(Json(
        json!({"count": results.len(), "next": null, "previous": null, "results": results}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
    api_token: Option<String>,
}

/// `POST /api/projects/`: a new project with its first personal key, whose
/// secret is in the reply and nowhere else. Only administrators (and the
/// operator's keys) create projects; the new key acts for the same account.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<KeyOwner>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !owner.is_admin(&state).await? {
        return Err(ApiError::Forbidden(
            "only administrators create projects: this personal key belongs to an account \
             that is a member of its project, not an administrator"
                .into(),
        ));
    }
    let new: NewProject = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"name\": \"…\", \"api_token\"?: \"phc_…\"}}: {e}"
        ))
    })?;
    if new.name.trim().is_empty() {
        return Err(ApiError::field("name", "a project needs a name"));
    }
    let (project, secret) = with_storage(&state.storage, move |store| {
        let project = store
            .catalog
            .create_project(new.name.trim(), new.api_token)?;
        let (_, secret) =
            store
                .catalog
                .create_personal_key(project.id, "first key", None, owner.0)?;
        Ok((project, secret))
    })
    .await?;
    state.reload_keys()?;
    let mut body = project_json(&project, &state);
    body["personal_api_key"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Value>> {
    let found = with_storage(&state.storage, move |store| {
        store.catalog.get_project(project)
    })
    .await?;
    let found = found.ok_or_else(|| ApiError::NotFound(format!("project {project} not found")))?;
    Ok(Json(project_json(&found, &state)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub week_start_day: Option<i16>,
}

/// `PATCH /api/projects/{id}/`: name, timezone (IANA name) and week start
/// (0 = Sunday, 1 = Monday).
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let changes: ProjectChanges = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected any of name, timezone, week_start_day: {e}"
        ))
    })?;
    let updated = apply_changes(&state, project, changes).await?;
    Ok(Json(project_json(&updated, &state)))
}

/// Checks and saves project settings (shared by the API and the UI).
pub async fn apply_changes(
    state: &AppState,
    project: ProjectId,
    changes: ProjectChanges,
) -> ApiResult<Project> {
    if let Some(timezone) = &changes.timezone {
        if timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::field(
                "timezone",
                format!("{timezone:?} is not an IANA time zone such as \"Europe/Berlin\""),
            ));
        }
    }
    if changes
        .week_start_day
        .is_some_and(|d| !(0..=1).contains(&d))
    {
        return Err(ApiError::field(
            "week_start_day",
            "week_start_day must be 0 (Sunday) or 1 (Monday)",
        ));
    }
    if changes.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::field("name", "a project needs a name"));
    }
    let updated = with_storage(&state.storage, move |store| {
        store.catalog.update_project(
            project,
            changes.name.as_deref(),
            changes.timezone.as_deref(),
            changes.week_start_day,
        )
    })
    .await?;
    // Flags read naive dates in the project's timezone.
    state.flags.invalidate(project);
    Ok(updated)
}

pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Value>> {
    let found = with_storage(&state.storage, move |store| {
        store.catalog.list_personal_keys(project)
    })
    .await?;
    Ok(Json(
        json!({"results": found.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewKey {
    label: Option<String>,
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Extension(KeyOwner(owner)): Extension<KeyOwner>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new: NewKey = if body.is_empty() {
        NewKey::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("expected {{\"label\": \"…\"}}: {e}")))?
    };
    let label = new.label.unwrap_or_else(|| "API key".into());
    let (key, secret) = new_key(&state, project, label, owner).await?;
    let mut body = key_json(&key);
    body["value"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn delete_key(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Path((_, id)): Path<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    revoke_key(&state, project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a personal key acting for `owner` (none: the operator); its
/// secret is returned this once.
pub async fn new_key(
    state: &AppState,
    project: ProjectId,
    label: String,
    owner: Option<Uuid>,
) -> ApiResult<(PersonalKey, String)> {
    let created = with_storage(&state.storage, move |store| {
        store
            .catalog
            .create_personal_key(project, &label, None, owner)
    })
    .await?;
    state.reload_keys()?;
    Ok(created)
}

pub async fn revoke_key(state: &AppState, project: ProjectId, id: Uuid) -> ApiResult<()> {
    let deleted = with_storage(&state.storage, move |store| {
        store.catalog.delete_personal_key(project, id)
    })
    .await?;
    if !deleted {
        return Err(ApiError::NotFound(format!(
            "personal API key {id} not found"
        )));
    }
    state.reload_keys()?;
    Ok(())
}
