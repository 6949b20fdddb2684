//! The plain actor lists of `POST query/`: `GroupsQuery` (the groups of one
//! type) and `ActorsQuery` without a `source` (persons), answered in
//! PostHog's shape `{columns, results, types, hasMore, limit, offset}` with
//! the columns of `select` (default one `actor` cell per row), filtered by
//! the actors' own properties, searched, ordered and paged by the store.
//!
//! Order: `orderBy`, else newest first (`created_at DESC`), then the key or
//! person id, so paging by `offset` through an unchanged list never repeats
//! or skips an actor. (PostHog pages without an order when the client sends
//! `orderBy: []`.)

use std::sync::Arc;

use serde_json::{json, Value};

use cairn_core::{Group, GroupTypeIndex, ProjectId};
use cairn_query::actors::ActorFilter;
use cairn_query::nodes::Properties;
use cairn_query::sql::Actor;
use cairn_store::entities::{GroupFilter, ListKey, PersonFilter};

use super::actors::{cell, column_type, Column, Entity, Request};
use super::groups::group_json;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

/// Whether `query` is one of the lists this module answers.
pub fn handles(query: &Value) -> bool {
    matches!(
        query.get("kind").and_then(Value::as_str),
        Some("GroupsQuery" | "ActorsQuery")
    )
}

/// Who is listed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Actors {
    Persons,
    Groups(i64),
}

/// Answers a `GroupsQuery` or a source-less `ActorsQuery`.
pub async fn answer(state: &AppState, project: ProjectId, query: Value) -> ApiResult<Value> {
    let Value::Object(node) = query else {
        return Err(ApiError::field("query", "the query must be an object"));
    };
    let groups = node.get("kind").and_then(Value::as_str) == Some("GroupsQuery");
    let known = if groups {
        GROUPS_QUERY_FIELDS
    } else {
        ACTORS_QUERY_FIELDS
    };
    let request = Request::parse_fields(&node, known)?;
    let actors = match node.get("group_type_index") {
        None | Some(Value::Null) if groups => {
            return Err(ApiError::field(
                "query.group_type_index",
                "a GroupsQuery needs the group_type_index of the groups to list",
            ))
        }
        None | Some(Value::Null) => Actors::Persons,
        Some(value) => Actors::Groups(value.as_i64().ok_or_else(|| {
            ApiError::field(
                "query.group_type_index",
                format!("must be an integer, not {value}"),
            )
        })?),
    };
    let index = match actors {
        Actors::Persons => None,
        Actors::Groups(index) => Some(known_group_type(state, project, index).await?),
    };
    let actor = index.map_or(Actor::Person, Actor::Group);
    let columns = request.select.unwrap_or_else(|| vec![Column::Actor]);
    let order = request.order.unwrap_or_default();
    if let Some(fact) = columns
        .iter()
        .chain(order.iter().map(|(c, _)| c))
        .find(|c| matches!(c, Column::Fact(_)))
    {
        return Err(ApiError::field(
            "query.select",
            format!("`{}` is what an insight knows of its actors: ask for it in a drill-down (an ActorsQuery with a source)", fact.name()),
        ));
    }
    let condition = condition(state, project, actor, request.properties).await?;
    let (limit, offset, search) = (request.limit, request.offset, request.search);
    let rows = with_storage(&state.storage, move |store| {
        let keys: Vec<(ListKey<'_>, bool)> = order
            .iter()
            .map(|(column, desc)| {
                let key = match column {
                    Column::CreatedAt => ListKey::CreatedAt,
                    Column::Id => ListKey::Id,
                    Column::Property(key) => ListKey::Property(key),
                    _ => ListKey::DisplayName,
                };
                (key, *desc)
            })
            .collect();
        let (search, condition) = (search.as_deref(), condition.as_deref());
        // One row more than the page says whether there is another page.
        Ok(match index {
            None => {
                let filter = PersonFilter {
                    search,
                    condition,
                    order: &keys,
                    offset,
                    limit: limit + 1,
                    ..Default::default()
                };
                let persons = store.entities.list_persons(project, &filter)?;
                persons
                    .into_iter()
                    .map(|p| (p.id.to_string(), Entity::Person(Arc::new(p))))
                    .collect::<Vec<_>>()
            }
            Some(group_type_index) => {
                let filter = GroupFilter {
                    group_type_index,
                    name_or_key_contains: search,
                    condition,
                    order: &keys,
                    offset,
                    limit: limit + 1,
                    ..Default::default()
                };
                let groups = store.entities.list_groups(project, &filter)?;
                groups
                    .into_iter()
                    .map(|g| (g.group_key.clone(), Entity::Group(Arc::new(g))))
                    .collect()
            }
        })
    })
    .await?;
    let has_more = rows.len() > limit;
    let results: Vec<Value> = rows
        .iter()
        .take(limit)
        .map(|(id, entity)| {
            columns
                .iter()
                .map(|column| cell(column, actor, id, entity, None))
                .collect()
        })
        .collect();
    let mut body = json!({
        "columns": columns.iter().map(Column::name).collect::<Vec<_>>(),
        "results": results,
        "types": columns.iter().map(|c| column_type(c, actor)).collect::<Vec<_>>(),
        "hasMore": has_more,
        "limit": limit,
        "offset": offset,
    });
    if index.is_some() {
        body["kind"] = json!("GroupsQuery");
    }
    Ok(body)
}

/// A filter on the listed actors' properties as SQL over their stored rows.
async fn condition(
    state: &AppState,
    project: ProjectId,
    actor: Actor,
    properties: Properties,
) -> ApiResult<Option<String>> {
    if properties.0.is_none() {
        return Ok(None);
    }
    let storage = state.storage.clone();
    let now = state.clock.now();
    tokio::task::spawn_blocking(move || -> ApiResult<Option<String>> {
        let filter = ActorFilter::new(&properties, actor)?;
        let ctx = super::query::project_context(&storage, project, now)?
            .ok_or_else(|| ApiError::NotFound(format!("project {project} does not exist")))?;
        let scanner = storage.events.scanner()?;
        Ok(filter.stored_condition(&ctx, scanner.dialect())?)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("list task failed: {e}")))?
}

/// The group as an `actor` cell: the groups API's object, plus PostHog's
/// `id` (the key) and `properties`.
pub fn group_actor_json(group: &Group) -> Value {
    let mut actor = group_json(group);
    actor["id"] = json!(group.group_key);
    actor["properties"] = json!(group.properties);
    actor
}

async fn known_group_type(
    state: &AppState,
    project: ProjectId,
    index: i64,
) -> ApiResult<GroupTypeIndex> {
    let types = with_storage(&state.storage, move |store| {
        store.catalog.group_types(project)
    })
    .await?;
    types
        .iter()
        .map(|t| t.group_type_index)
        .find(|known| i64::from(*known) == index)
        .ok_or_else(|| {
            ApiError::field(
                "query.group_type_index",
                format!("the project has no group type with index {index}"),
            )
        })
}

/// The fields of PostHog's nodes this module reads; any other is refused.
const GROUPS_QUERY_FIELDS: &[&str] = &[
    "kind",
    "group_type_index",
    "search",
    "limit",
    "offset",
    "select",
    "orderBy",
    "properties",
];
const ACTORS_QUERY_FIELDS: &[&str] = &[
    "kind",
    "source",
    "search",
    "limit",
    "offset",
    "select",
    "orderBy",
    "properties",
    "fixedProperties",
];
