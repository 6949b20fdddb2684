//! Group types and groups (PostHog's `groups_types/` and `groups/`).

use std::sync::Arc;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use cairn_core::{Group, GroupType, GroupTypeIndex, ProjectId};
use cairn_store::entities::GroupFilter;

use super::{decode_cursor, encode_cursor, page_size, page_url};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

pub fn group_type_json(group_type: &GroupType) -> Value {
    json!({
        "group_type": group_type.group_type,
        "group_type_index": group_type.group_type_index,
        "name_singular": group_type.name_singular,
        "name_plural": group_type.name_plural,
        "detail_dashboard": null,
        "default_columns": null,
        "created_at": group_type.created_at,
    })
}

pub fn group_json(group: &Group) -> Value {
    json!({
        "group_type_index": group.group_type_index,
        "group_key": group.group_key,
        "group_properties": group.properties,
        "created_at": group.created_at,
        "display_name": group.display_name(),
    })
}

async fn list_types(state: &AppState, project: ProjectId) -> ApiResult<Vec<Value>> {
    let types = with_storage(&state.storage, move |store| {
        store.catalog.group_types(project)
    })
    .await?;
    Ok(types.iter().map(group_type_json).collect())
}

pub async fn group_types(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(list_types(&state, project).await?))
}

#[derive(Debug, Deserialize)]
pub struct GroupTypeNames {
    pub group_type_index: GroupTypeIndex,
    #[serde(default, deserialize_with = "present")]
    pub name_singular: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub name_plural: Option<Option<String>>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(deserializer)?))
}

/// `PATCH groups_types/update_metadata`: a list of display-name changes.
pub async fn update_metadata(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Vec<Value>>> {
    let changes: Vec<GroupTypeNames> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a list of {{group_type_index, name_singular?, name_plural?}}: {e}"
        ))
    })?;
    rename_group_types(&state, project, changes).await?;
    Ok(Json(list_types(&state, project).await?))
}

/// Sets group types' display names (shared by the API and the UI).
pub async fn rename_group_types(
    state: &AppState,
    project: ProjectId,
    changes: Vec<GroupTypeNames>,
) -> ApiResult<()> {
    with_storage(&state.storage, move |store| {
        for change in &changes {
            let found = store.catalog.update_group_type_names(
                project,
                change.group_type_index,
                change.name_singular.as_ref().map(|n| n.as_deref()),
                change.name_plural.as_ref().map(|n| n.as_deref()),
            )?;
            if !found {
                return Err(cairn_store::StoreError::NotFound(format!(
                    "group type with index {} not found",
                    change.group_type_index
                )));
            }
        }
        Ok(())
    })
    .await
}

fn require_index(index: Option<GroupTypeIndex>) -> ApiResult<GroupTypeIndex> {
    index.ok_or_else(|| {
        ApiError::field("group_type_index", "You must pass ?group_type_index= in this URL. To get a list of group types, send a request to /api/projects/{project_id}/groups_types/.")
    })
}

#[derive(Debug, Deserialize)]
pub struct GroupListQuery {
    group_type_index: Option<GroupTypeIndex>,
    search: Option<String>,
    group_key: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Query(query): Query<GroupListQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let index = require_index(query.group_type_index)?;
    let offset = query
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let limit = page_size(query.limit);
    let (search, key) = (
        query.search.filter(|s| !s.is_empty()),
        query.group_key.filter(|s| !s.is_empty()),
    );
    let groups = with_storage(&state.storage, move |store| {
        let filter = GroupFilter {
            group_type_index: index,
            search: search.as_deref(),
            key_contains: key.as_deref(),
            name_or_key_contains: None,
            offset,
            limit: limit + 1,
            ..Default::default()
        };
        store.entities.list_groups(project, &filter)
    })
    .await?;
    let next = (groups.len() > limit)
        .then(|| page_url(&uri, &headers, &[("cursor", encode_cursor(offset + limit))]));
    let previous = (offset > 0).then(|| {
        page_url(
            &uri,
            &headers,
            &[("cursor", encode_cursor(offset.saturating_sub(limit)))],
        )
    });
    let results: Vec<Value> = groups.iter().take(limit).map(group_json).collect();
    Ok(Json(
        json!({"next": next, "previous": previous, "results": results}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct FindQuery {
    group_type_index: Option<GroupTypeIndex>,
    group_key: Option<String>,
}

pub async fn find(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Query(query): Query<FindQuery>,
) -> ApiResult<Json<Value>> {
    let index = require_index(query.group_type_index)?;
    let key = query
        .group_key
        .ok_or_else(|| ApiError::field("group_key", "You must pass ?group_key= in this URL."))?;
    let lookup = key.clone();
    let group = with_storage(&state.storage, move |store| {
        store.entities.find_group(project, index, &lookup)
    })
    .await?;
    let group = group.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no group of type index {index} has the key {key:?}"
        ))
    })?;
    Ok(Json(group_json(&group)))
}

pub async fn property_definitions(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
) -> ApiResult<Json<Value>> {
    let definitions = with_storage(&state.storage, move |store| {
        store.entities.group_property_definitions(project)
    })
    .await?;
    let body: Map<String, Value> = definitions
        .into_iter()
        .map(|(index, names)| {
            let names = names
                .into_iter()
                .map(|(name, count)| json!({"name": name, "count": count}))
                .collect();
            (index.to_string(), Value::Array(names))
        })
        .collect();
    Ok(Json(Value::Object(body)))
}

#[derive(Debug, Deserialize)]
pub struct ValuesQuery {
    group_type_index: Option<GroupTypeIndex>,
    key: Option<String>,
    value: Option<String>,
}

pub async fn property_values(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Query(query): Query<ValuesQuery>,
) -> ApiResult<Json<Value>> {
    let index = require_index(query.group_type_index)?;
    let key = query.key.ok_or_else(|| {
        ApiError::field(
            "key",
            "You must pass ?key= (a group property name) in this URL.",
        )
    })?;
    let contains = query.value.filter(|v| !v.is_empty());
    let values = with_storage(&state.storage, move |store| {
        store
            .entities
            .group_property_values(project, index, &key, contains.as_deref())
    })
    .await?;
    Ok(Json(Value::Array(
        values
            .into_iter()
            .map(|(name, count)| json!({"name": name, "count": count}))
            .collect(),
    )))
}
