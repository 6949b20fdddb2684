//! Persons (PostHog's `persons/`): list, search, and one by id or distinct id.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use cairn_core::{DistinctId, Person, ProjectId};
use cairn_store::entities::PersonFilter;

use super::{page_size, page_url};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

pub fn person_json(person: &Person) -> Value {
    json!({
        "id": person.id,
        "uuid": person.id,
        "name": person.display_name(),
        "distinct_ids": person.distinct_ids,
        "properties": person.properties,
        "is_identified": person.is_identified,
        "created_at": person.created_at,
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    distinct_id: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let limit = page_size(query.limit);
    let offset = query.offset.unwrap_or(0);
    let search = query.search.filter(|s| !s.is_empty());
    // Looked up in the form ingestion stores distinct ids in.
    let distinct_id = query
        .distinct_id
        .map(|id| DistinctId::new(id).into_string());
    let persons = with_storage(&state.storage, move |store| {
        let filter = PersonFilter {
            search: search.as_deref(),
            distinct_id: distinct_id.as_deref(),
            id: None,
            offset,
            limit: limit + 1,
            ..Default::default()
        };
        store.entities.list_persons(project, &filter)
    })
    .await?;
    let next = (persons.len() > limit)
        .then(|| page_url(&uri, &headers, &[("offset", (offset + limit).to_string())]));
    let previous = (offset > 0).then(|| {
        page_url(
            &uri,
            &headers,
            &[("offset", offset.saturating_sub(limit).to_string())],
        )
    });
    let results: Vec<Value> = persons.iter().take(limit).map(person_json).collect();
    Ok(Json(
        json!({"next": next, "previous": previous, "results": results}),
    ))
}

/// `persons/{id}`: the id is a person uuid, or else taken as a distinct id.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let uuid = Uuid::parse_str(&id).ok();
    let lookup = DistinctId::new(id.clone()).into_string();
    let persons = with_storage(&state.storage, move |store| {
        let by_id = PersonFilter {
            id: uuid,
            limit: 1,
            ..Default::default()
        };
        let found = match uuid {
            Some(_) => store.entities.list_persons(project, &by_id)?,
            None => Vec::new(),
        };
        if !found.is_empty() {
            return Ok(found);
        }
        let by_distinct_id = PersonFilter {
            distinct_id: Some(&lookup),
            limit: 1,
            ..Default::default()
        };
        store.entities.list_persons(project, &by_distinct_id)
    })
    .await?;
    let person = persons
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("no person has the id or distinct id {id:?}")))?;
    Ok(Json(person_json(person)))
}
