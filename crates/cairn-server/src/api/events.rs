//! Events (PostHog's `events/`), newest first, with filters.

use std::sync::Arc;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use cairn_core::{DistinctId, GroupTypeIndex, ProjectId};
use cairn_ingest::timestamp;
use cairn_store::entities::{EventFilter, StoredEvent};

use super::{page_size, page_url};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    event: Option<String>,
    distinct_id: Option<String>,
    person_id: Option<Uuid>,
    group_type_index: Option<GroupTypeIndex>,
    group_key: Option<String>,
    after: Option<String>,
    before: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn parse_time(field: &'static str, text: Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    text.map(|t| {
        timestamp::parse(&t)
            .ok_or_else(|| ApiError::field(field, format!("{field} is not a date or time: {t:?}")))
    })
    .transpose()
}

fn encode_cursor(event: &StoredEvent) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        event.timestamp.timestamp_micros(),
        event.uuid
    ))
}

fn decode_cursor(cursor: &str) -> ApiResult<(DateTime<Utc>, Uuid)> {
    let invalid = || ApiError::field("cursor", "cursor is not one this server handed out");
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    let (micros, uuid) = raw.split_once('|').ok_or_else(invalid)?;
    let timestamp = DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?)
        .ok_or_else(invalid)?;
    Ok((timestamp, uuid.parse().map_err(|_| invalid())?))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(project): Extension<ProjectId>,
    Query(query): Query<ListQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let limit = page_size(query.limit);
    let after = parse_time("after", query.after)?;
    let before = parse_time("before", query.before)?;
    let after_cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let group = match (query.group_type_index, query.group_key) {
        (Some(index), Some(key)) => Some((index, key)),
        (None, None) => None,
        _ => {
            return Err(ApiError::field(
                "group_key",
                "filter by group with both group_type_index and group_key",
            ))
        }
    };
    let (event, person_id) = (query.event, query.person_id);
    // Looked up in the form ingestion stores distinct ids in.
    let distinct_id = query
        .distinct_id
        .map(|id| DistinctId::new(id).into_string());
    let (events, types) = with_storage(&state.storage, move |store| {
        let filter = EventFilter {
            event: event.as_deref(),
            distinct_id: distinct_id.as_deref(),
            person_id,
            group: group.as_ref().map(|(i, k)| (*i, k.as_str())),
            after,
            before,
            after_cursor,
            limit: limit + 1,
        };
        Ok((
            store.entities.list_events(project, &filter)?,
            store.catalog.group_types(project)?,
        ))
    })
    .await?;
    let next = (events.len() > limit).then(|| {
        page_url(
            &uri,
            &headers,
            &[("cursor", encode_cursor(&events[limit - 1]))],
        )
    });
    let results: Vec<Value> = events
        .iter()
        .take(limit)
        .map(|event| {
            let groups: Map<String, Value> = types
                .iter()
                .filter_map(|t| {
                    let key = event.groups.get(t.group_type_index as usize)?.as_ref()?;
                    Some((t.group_type.clone(), Value::String(key.clone())))
                })
                .collect();
            json!({
                "id": event.uuid,
                "uuid": event.uuid,
                "event": event.event,
                "distinct_id": event.distinct_id,
                "person_id": event.person_id,
                "timestamp": event.timestamp,
                "properties": event.properties,
                "groups": groups,
                "elements": [],
                "elements_chain": "",
            })
        })
        .collect();
    Ok(Json(json!({"next": next, "results": results})))
}
