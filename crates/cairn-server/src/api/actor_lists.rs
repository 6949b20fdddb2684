//! The plain actor lists of `POST query/`: `GroupsQuery` (the groups of one
//! type) and `ActorsQuery` without a `source` (persons), answered in
//! PostHog's shape `{columns, results, types, hasMore, limit, offset}` with
//! one `actor` cell per row.
//!
//! Order: newest first (`created_at DESC`, then the key or person id), the
//! order the store lists in, so paging by `offset` through an unchanged list
//! never repeats or skips an actor. (PostHog pages without an order when
//! the client sends `orderBy: []`.) Whatever part of PostHog's node is not
//! built yet is refused with a 400 naming it, never ignored.

use serde_json::{json, Value};

use cairn_core::{Group, GroupTypeIndex, ProjectId};
use cairn_query::QueryError;
use cairn_store::entities::{GroupFilter, PersonFilter};

use super::groups::group_json;
use super::persons::person_json;
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

#[derive(Debug)]
struct ListQuery {
    actors: Actors,
    search: Option<String>,
    limit: usize,
    offset: usize,
}

/// Answers a `GroupsQuery` or a source-less `ActorsQuery`.
pub async fn answer(state: &AppState, project: ProjectId, query: Value) -> ApiResult<Value> {
    let list = parse(query)?;
    let index = match list.actors {
        Actors::Persons => None,
        Actors::Groups(index) => Some(known_group_type(state, project, index).await?),
    };
    let (limit, offset) = (list.limit, list.offset);
    let rows = with_storage(&state.storage, move |store| {
        let search = list.search.as_deref();
        // One row more than the page says whether there is another page.
        Ok(match index {
            None => {
                let filter = PersonFilter {
                    search,
                    offset,
                    limit: limit + 1,
                    ..Default::default()
                };
                let persons = store.entities.list_persons(project, &filter)?;
                persons.iter().map(person_json).collect::<Vec<_>>()
            }
            Some(group_type_index) => {
                let filter = GroupFilter {
                    group_type_index,
                    name_or_key_contains: search,
                    offset,
                    limit: limit + 1,
                    ..Default::default()
                };
                let groups = store.entities.list_groups(project, &filter)?;
                groups.iter().map(group_actor_json).collect()
            }
        })
    })
    .await?;
    let has_more = rows.len() > limit;
    let results: Vec<Value> = rows.into_iter().take(limit).map(|a| json!([a])).collect();
    let mut body = json!({
        "columns": ["actor"],
        "results": results,
        // The type of the actor's id, as PostHog reports it before it puts
        // the actor object in the cell.
        "types": [if index.is_some() { "String" } else { "UUID" }],
        "hasMore": has_more,
        "limit": limit,
        "offset": offset,
    });
    if index.is_some() {
        body["kind"] = json!("GroupsQuery");
    }
    Ok(body)
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

fn parse(query: Value) -> ApiResult<ListQuery> {
    let Value::Object(node) = query else {
        return Err(ApiError::field("query", "the query must be an object"));
    };
    let groups = node.get("kind").and_then(Value::as_str) == Some("GroupsQuery");
    let known = if groups {
        GROUPS_QUERY_FIELDS
    } else {
        ACTORS_QUERY_FIELDS
    };
    let mut list = ListQuery {
        actors: Actors::Persons,
        search: None,
        limit: 0,
        offset: 0,
    };
    // Unknown fields first, whatever their place in the object.
    if let Some(name) = node.keys().find(|name| !known.contains(&name.as_str())) {
        return Err(QueryError::unsupported_field(format!("query.{name}"), name).into());
    }
    let mut limit = None;
    for (name, value) in &node {
        let field = format!("query.{name}");
        match (name.as_str(), value) {
            ("kind", _) | (_, Value::Null) => {}
            ("group_type_index", _) => list.actors = Actors::Groups(integer(&field, value)?),
            ("search", Value::String(text)) if !text.contains('\0') => {
                let text = text.trim();
                list.search = (!text.is_empty()).then(|| text.to_string());
            }
            ("search", _) => return Err(ApiError::field(field, "must be text (without NUL)")),
            ("limit", _) => limit = Some(integer(&field, value)?),
            ("offset", _) => {
                list.offset = usize::try_from(integer(&field, value)?)
                    .map_err(|_| ApiError::field(field, "must not be negative"))?;
            }
            ("select", _) if value == &json!(["actor"]) => {}
            ("select", _) => return Err(not_yet(field, "a `select` other than [\"actor\"]")),
            ("orderBy", _) if value == &json!([]) || value == &json!(["created_at DESC"]) => {}
            ("orderBy", _) => {
                return Err(not_yet(
                    field,
                    "an `orderBy` other than [\"created_at DESC\"] (newest first, the default)",
                ))
            }
            ("properties" | "fixedProperties", _) if value == &json!([]) => {}
            ("properties" | "fixedProperties", _) => {
                return Err(not_yet(field, "filtering an actor list by properties"))
            }
            // `source`, the only field left.
            _ => {
                return Err(not_yet(
                    field,
                    "listing the actors of an insight (`source`)",
                ))
            }
        }
    }
    if groups && list.actors == Actors::Persons {
        return Err(ApiError::field(
            "query.group_type_index",
            "a GroupsQuery needs the group_type_index of the groups to list",
        ));
    }
    list.limit = super::checked_page_size(limit).map_err(|e| ApiError::field("query.limit", e))?;
    Ok(list)
}

fn integer(field: &str, value: &Value) -> ApiResult<i64> {
    value
        .as_i64()
        .ok_or_else(|| ApiError::field(field, format!("must be an integer, not {value}")))
}

fn not_yet(field: String, what: &str) -> ApiError {
    ApiError::field(field, format!("{what} is not supported yet"))
}
