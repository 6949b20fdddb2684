//! `ActorsQuery` with a `source`: the persons or groups behind one number of
//! an insight (see `cairn_query::actors`), in PostHog's shape `{columns,
//! results, types, hasMore, limit, offset}`, or as CSV.
//!
//! Each row is an actor with the columns `select` asks for: the actor
//! object, its id, display name, creation time, a property, or what the
//! insight knows of it (matching events, first and last event, time to
//! convert, members, retention appearances). Rows come in a stable order
//! (`orderBy`, then the actor's id), so paging never repeats or skips one;
//! PostHog pages without an order when the client sends `orderBy: []`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use cairn_core::{Group, Person, ProjectId};
use cairn_query::actors::{ActorRow, ActorSet, Fact};
use cairn_query::nodes::Properties;
use cairn_query::sql::Actor;
use cairn_query::{Budget, QueryError};
use cairn_store::EntityState;

use super::actor_lists::group_actor_json;
use super::persons::person_json;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The `ActorsQuery` node if `query` is a drill-down (one with a `source`).
pub fn drill_down(query: &Value) -> Option<&serde_json::Map<String, Value>> {
    let node = query.as_object()?;
    let is_actors = node.get("kind").and_then(Value::as_str) == Some("ActorsQuery");
    (is_actors && node.get("source").is_some_and(|s| !s.is_null())).then_some(node)
}

/// A column of the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// The person or group object.
    Actor,
    Id,
    DisplayName,
    CreatedAt,
    Property(String),
    Fact(Fact),
}

impl Column {
    pub fn parse(text: &str, field: &str) -> ApiResult<Self> {
        // PostHog's modal writes `person_display_name -- Person`.
        let text = text.split(" -- ").next().unwrap_or(text).trim();
        Ok(match text {
            "actor" | "person" | "group" => Column::Actor,
            "id" | "actor_id" | "key" => Column::Id,
            "person_display_name" | "display_name" | "group_name" => Column::DisplayName,
            "created_at" => Column::CreatedAt,
            "matched_recordings" => {
                return Err(ApiError::field(field, "Cairn keeps no session recordings"))
            }
            other => {
                let property = other
                    .strip_prefix("properties.")
                    .or_else(|| other.strip_prefix("person.properties."))
                    .or_else(|| other.strip_prefix("group.properties."));
                match (property, Fact::parse(other)) {
                    (Some(key), _) if !key.is_empty() => Column::Property(key.to_string()),
                    (_, Some(fact)) => Column::Fact(fact),
                    _ => {
                        return Err(ApiError::field(
                            field,
                            format!("`{other}` is not a column: select actor, id, display_name, created_at, properties.<key>, event_count, first_event_time, last_event_time, time_to_convert, members or appearances"),
                        ))
                    }
                }
            }
        })
    }

    /// The name in `columns` and in the CSV header.
    pub fn name(&self) -> String {
        match self {
            Column::Actor => "actor".into(),
            Column::Id => "id".into(),
            Column::DisplayName => "display_name".into(),
            Column::CreatedAt => "created_at".into(),
            Column::Property(key) => format!("properties.{key}"),
            Column::Fact(fact) => fact.name().into(),
        }
    }

    fn needs_entity(&self) -> bool {
        matches!(
            self,
            Column::Actor | Column::DisplayName | Column::CreatedAt | Column::Property(_)
        )
    }
}

/// What a drill-down asks for, besides the cell.
#[derive(Debug)]
pub struct Request {
    pub source: Value,
    pub properties: Properties,
    /// `None`: the actor and every fact the insight knows.
    pub select: Option<Vec<Column>>,
    pub search: Option<String>,
    /// `(column, descending)`, most significant first.
    pub order: Option<Vec<(Column, bool)>>,
    pub limit: usize,
    pub offset: usize,
}

/// The fields of a drill-down's `ActorsQuery`.
const DRILL_DOWN_FIELDS: &[&str] = &[
    "kind",
    "source",
    "select",
    "search",
    "properties",
    "fixedProperties",
    "orderBy",
    "limit",
    "offset",
];

impl Request {
    /// Reads a drill-down's list options.
    pub fn parse(node: &serde_json::Map<String, Value>) -> ApiResult<Self> {
        Self::parse_fields(node, DRILL_DOWN_FIELDS)
    }

    /// Reads a node's list options, refusing any field not in `known`
    /// (those it does not read, like `kind`, are the caller's).
    pub fn parse_fields(node: &serde_json::Map<String, Value>, known: &[&str]) -> ApiResult<Self> {
        cairn_query::limits::reject_nul(&Value::Object(node.clone()))?;
        if let Some(name) = node.keys().find(|n| !known.contains(&n.as_str())) {
            return Err(QueryError::unsupported_field(format!("query.{name}"), name).into());
        }
        let strings = |name: &str| -> ApiResult<Option<Vec<String>>> {
            match node.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_string).ok_or_else(|| {
                            ApiError::field(format!("query.{name}"), "must be a list of text")
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()
                    .map(Some),
                Some(_) => Err(ApiError::field(
                    format!("query.{name}"),
                    "must be a list of text",
                )),
            }
        };
        let select = strings("select")?
            .map(|items| {
                items
                    .iter()
                    .map(|s| Column::parse(s, "query.select"))
                    .collect::<ApiResult<Vec<_>>>()
            })
            .transpose()?;
        // Each entry may hold several terms: PostHog's modal sends
        // "event_count DESC, actor_id DESC".
        let order = strings("orderBy")?
            .map(|items| {
                items
                    .iter()
                    .flat_map(|item| item.split(','))
                    .filter(|term| !term.trim().is_empty())
                    .map(|term| {
                        let term = term.trim();
                        let (expr, desc) = match term.rsplit_once(' ') {
                            Some((expr, dir)) if dir.eq_ignore_ascii_case("desc") => (expr, true),
                            Some((expr, dir)) if dir.eq_ignore_ascii_case("asc") => (expr, false),
                            _ => (term, false),
                        };
                        let column = match Column::parse(expr.trim(), "query.orderBy")? {
                            // Ordering "by the actor" is by its name.
                            Column::Actor => Column::DisplayName,
                            Column::Fact(Fact::Appearances) => {
                                return Err(ApiError::field(
                                    "query.orderBy",
                                    "appearances are a list: order by another column",
                                ))
                            }
                            other => other,
                        };
                        Ok((column, desc))
                    })
                    .collect::<ApiResult<Vec<_>>>()
            })
            .transpose()?;
        let search = match node.get("search") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if !text.contains('\0') => {
                Some(text.trim().to_lowercase()).filter(|t| !t.is_empty())
            }
            Some(_) => {
                return Err(ApiError::field(
                    "query.search",
                    "must be text (without NUL)",
                ))
            }
        };
        // `fixedProperties` (PostHog's filters the user cannot remove) are
        // ANDed with `properties`.
        let given: Vec<&Value> = ["properties", "fixedProperties"]
            .iter()
            .filter_map(|name| node.get(*name).filter(|v| !v.is_null()))
            .collect();
        let properties = match given.as_slice() {
            [] => Value::Null,
            [one] => (*one).clone(),
            both => json!({"type": "AND", "values": both}),
        };
        let properties: Properties = serde_json::from_value(properties)
            .map_err(|e| ApiError::field("query.properties", e.to_string()))?;
        let integer = |name: &str| -> ApiResult<Option<i64>> {
            match node.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ApiError::field(format!("query.{name}"), "must be an integer")),
            }
        };
        let limit = super::checked_page_size(integer("limit")?)
            .map_err(|e| ApiError::field("query.limit", e))?;
        let offset = usize::try_from(integer("offset")?.unwrap_or(0))
            .map_err(|_| ApiError::field("query.offset", "must not be negative"))?;
        Ok(Self {
            source: node.get("source").cloned().unwrap_or(Value::Null),
            properties,
            select,
            search,
            order,
            limit,
            offset,
        })
    }
}

/// The cell's actors, with the columns and order the request asks for.
pub struct Listing {
    pub columns: Vec<Column>,
    pub set: ActorSet,
    lookup: Lookup,
    search: Option<String>,
}

/// Computes the actors of the request's cell (a blocking query run within
/// the query timeout), checks the columns against what the insight knows,
/// and orders them.
pub async fn list(state: &AppState, project: ProjectId, request: Request) -> ApiResult<Listing> {
    let storage = state.storage.clone();
    let now = state.clock.now();
    let budget = Budget::new(state.config.query_timeout);
    let _cancel_when_dropped = budget.cancel_on_drop();
    let entities = state.entities.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<Listing> {
        let scanner = storage.events.scanner()?;
        let mut ctx = super::query::project_context(&storage, project, now)?
            .ok_or_else(|| ApiError::NotFound(format!("project {project} does not exist")))?;
        ctx.budget = budget;
        let set = cairn_query::actors::run(&*scanner, &ctx, request.source, &request.properties)?;
        let columns = match request.select {
            Some(columns) => columns,
            None => std::iter::once(Column::Actor)
                .chain(set.facts.iter().map(|f| Column::Fact(*f)))
                .collect(),
        };
        let order = request.order.unwrap_or_else(|| {
            set.facts
                .iter()
                .find(|f| **f == Fact::EventCount)
                .map(|f| vec![(Column::Fact(*f), true)])
                .unwrap_or_default()
        });
        for column in columns.iter().chain(order.iter().map(|(c, _)| c)) {
            if let Column::Fact(fact) = column {
                if !set.facts.contains(fact) {
                    return Err(ApiError::field(
                        "query.select",
                        format!("this insight does not tell `{}` of its actors", fact.name()),
                    ));
                }
            }
        }
        let lookup = Lookup {
            entities,
            project,
            actor: set.actor,
        };
        let mut listing = Listing {
            columns,
            set,
            lookup,
            search: request.search,
        };
        listing.sort(&order, &ctx.budget)?;
        Ok(listing)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("actors task failed: {e}")))?
}

/// A person or group as stored, or only its id (events name it, but it
/// has no profile).
#[derive(Debug, Clone)]
pub enum Entity {
    Person(Arc<Person>),
    Group(Arc<Group>),
    Missing,
}

struct Lookup {
    entities: Arc<EntityState>,
    project: ProjectId,
    actor: Actor,
}

impl Lookup {
    fn get(&self, id: &str) -> ApiResult<Entity> {
        Ok(match self.actor {
            Actor::Person => match uuid::Uuid::parse_str(id) {
                Ok(uuid) => self
                    .entities
                    .person(self.project, uuid)?
                    .map_or(Entity::Missing, Entity::Person),
                Err(_) => Entity::Missing,
            },
            Actor::Group(index) => self
                .entities
                .group(self.project, index, id)?
                .map_or(Entity::Missing, Entity::Group),
        })
    }
}

impl Entity {
    pub fn display_name(&self, id: &str) -> String {
        match self {
            Entity::Person(p) => p.display_name(),
            Entity::Group(g) => g.display_name(),
            Entity::Missing => id.to_string(),
        }
    }

    fn properties(&self) -> Option<&cairn_core::Properties> {
        match self {
            Entity::Person(p) => Some(&p.properties),
            Entity::Group(g) => Some(&g.properties),
            Entity::Missing => None,
        }
    }

    fn created_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Entity::Person(p) => Some(p.created_at),
            Entity::Group(g) => Some(g.created_at),
            Entity::Missing => None,
        }
    }

    /// Person search: display name, email, name, id or a distinct id;
    /// group search: name or key. `text` is lower case.
    fn matches(&self, id: &str, text: &str) -> bool {
        let has = |s: &str| s.to_lowercase().contains(text);
        if has(id) || has(&self.display_name(id)) {
            return true;
        }
        let property = |key: &str| {
            self.properties()
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .is_some_and(has)
        };
        match self {
            Entity::Person(p) => {
                property("email") || property("name") || p.distinct_ids.iter().any(|d| has(d))
            }
            Entity::Group(_) => property("name"),
            Entity::Missing => false,
        }
    }

    fn json(&self, id: &str, actor: Actor) -> Value {
        match (self, actor) {
            (Entity::Person(p), _) => person_json(p),
            (Entity::Group(g), _) => group_actor_json(g),
            (Entity::Missing, Actor::Person) => json!({"id": id, "distinct_ids": []}),
            (Entity::Missing, Actor::Group(index)) => json!({
                "id": id,
                "group_key": id,
                "group_type_index": index,
                "properties": {},
                "group_properties": {},
                "display_name": id,
            }),
        }
    }
}

/// A value rows are ordered by: numbers before text, missing last.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Number(f64),
    Text(String),
    Missing,
}

impl Listing {
    fn sort(&mut self, order: &[(Column, bool)], budget: &Budget) -> ApiResult<()> {
        let needs_entity = order.iter().any(|(c, _)| c.needs_entity());
        let mut keyed: Vec<(Vec<SortKey>, ActorRow)> = Vec::with_capacity(self.set.rows.len());
        for (n, row) in std::mem::take(&mut self.set.rows).into_iter().enumerate() {
            if n % 4096 == 0 {
                budget.check()?;
            }
            let entity = if needs_entity {
                Some(self.lookup.get(&row.id)?)
            } else {
                None
            };
            let keys = order
                .iter()
                .map(|(column, _)| sort_key(column, &row, entity.as_ref()))
                .collect();
            keyed.push((keys, row));
        }
        keyed.sort_by(|(a, ra), (b, rb)| {
            for (i, (_, desc)) in order.iter().enumerate() {
                let ordering = match (&a[i], &b[i]) {
                    // Missing values last either way.
                    (SortKey::Missing, SortKey::Missing) => std::cmp::Ordering::Equal,
                    (SortKey::Missing, _) => std::cmp::Ordering::Greater,
                    (_, SortKey::Missing) => std::cmp::Ordering::Less,
                    (x, y) => {
                        let o = x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
                        if *desc {
                            o.reverse()
                        } else {
                            o
                        }
                    }
                };
                if ordering != std::cmp::Ordering::Equal {
                    return ordering;
                }
            }
            ra.id.cmp(&rb.id)
        });
        self.set.rows = keyed.into_iter().map(|(_, row)| row).collect();
        Ok(())
    }

    /// Rows `offset..offset + limit` (after the search), their cells, and
    /// whether more follow. Looks up only the actors it needs.
    pub fn page(&self, offset: usize, limit: usize) -> ApiResult<(Vec<Vec<Value>>, bool, usize)> {
        let mut out = Vec::new();
        let mut missing = 0;
        let mut has_more = false;
        for (row, entity) in self.rows(offset) {
            let entity = entity?;
            if out.len() == limit {
                has_more = true;
                break;
            }
            if self.needs_entity() && matches!(entity, Entity::Missing) {
                missing += 1;
            }
            out.push(self.cells(row, &entity));
        }
        Ok((out, has_more, missing))
    }

    /// The rows that pass the search from the `offset`-th on, in order,
    /// each with its entity (looked up as the row is reached).
    pub fn rows(
        &self,
        offset: usize,
    ) -> Box<dyn Iterator<Item = (&ActorRow, ApiResult<Entity>)> + Send + '_> {
        let needs_entity = self.needs_entity();
        let with_entity = move |row| self.with_entity(row, needs_entity);
        match &self.search {
            None => Box::new(self.set.rows.iter().skip(offset).map(with_entity)),
            Some(text) => Box::new(
                self.set
                    .rows
                    .iter()
                    .map(with_entity)
                    .filter(move |(row, entity)| {
                        entity.as_ref().map_or(true, |e| e.matches(&row.id, text))
                    })
                    .skip(offset),
            ),
        }
    }

    /// Whether rows need their person or group (for the search or a column).
    fn needs_entity(&self) -> bool {
        self.search.is_some() || self.columns.iter().any(Column::needs_entity)
    }

    fn with_entity<'a>(
        &self,
        row: &'a ActorRow,
        needs_entity: bool,
    ) -> (&'a ActorRow, ApiResult<Entity>) {
        let entity = if needs_entity {
            self.lookup.get(&row.id)
        } else {
            Ok(Entity::Missing)
        };
        (row, entity)
    }

    /// The row's cells, as JSON.
    pub fn cells(&self, row: &ActorRow, entity: &Entity) -> Vec<Value> {
        self.columns
            .iter()
            .map(|column| cell(column, self.set.actor, &row.id, entity, Some(row)))
            .collect()
    }

    /// ClickHouse-style type names, as PostHog reports them.
    pub fn types(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .map(|column| column_type(column, self.set.actor))
            .collect()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(Column::name).collect()
    }
}

/// A column's type, as PostHog names it (ClickHouse's names).
pub fn column_type(column: &Column, actor: Actor) -> &'static str {
    match column {
        Column::Actor | Column::Id => match actor {
            Actor::Person => "UUID",
            Actor::Group(_) => "String",
        },
        Column::DisplayName | Column::Property(_) => "String",
        Column::CreatedAt => "DateTime64(6, 'UTC')",
        Column::Fact(Fact::EventCount | Fact::Members) => "UInt64",
        Column::Fact(Fact::FirstEvent | Fact::LastEvent) => "DateTime64(6, 'UTC')",
        Column::Fact(Fact::TimeToConvert) => "Float64",
        Column::Fact(Fact::Appearances) => "Array(Bool)",
    }
}

/// One cell: what `column` says of the actor `id` (its facts, if a
/// drill-down found them).
pub fn cell(
    column: &Column,
    actor: Actor,
    id: &str,
    entity: &Entity,
    row: Option<&ActorRow>,
) -> Value {
    match column {
        Column::Actor => entity.json(id, actor),
        Column::Id => json!(id),
        Column::DisplayName => json!(entity.display_name(id)),
        Column::CreatedAt => json!(entity.created_at()),
        Column::Property(key) => entity
            .properties()
            .and_then(|p| p.get(key))
            .cloned()
            .unwrap_or(Value::Null),
        Column::Fact(fact) => row.map_or(Value::Null, |row| fact_json(*fact, row)),
    }
}

fn micros_json(micros: Option<i64>) -> Value {
    micros
        .and_then(DateTime::from_timestamp_micros)
        .map_or(Value::Null, |t| json!(t))
}

pub fn fact_json(fact: Fact, row: &ActorRow) -> Value {
    let facts = &row.facts;
    match fact {
        Fact::EventCount => json!(facts.event_count),
        Fact::FirstEvent => micros_json(facts.first_event),
        Fact::LastEvent => micros_json(facts.last_event),
        Fact::TimeToConvert => json!(facts.seconds_to_convert),
        Fact::Members => json!(facts.members),
        Fact::Appearances => json!(facts.appearances),
    }
}

fn sort_key(column: &Column, row: &ActorRow, entity: Option<&Entity>) -> SortKey {
    let text = |s: String| SortKey::Text(s.to_lowercase());
    let facts = &row.facts;
    let number = |n: Option<f64>| n.map_or(SortKey::Missing, SortKey::Number);
    match column {
        Column::Actor | Column::DisplayName => {
            text(entity.map_or(row.id.clone(), |e| e.display_name(&row.id)))
        }
        Column::Id => SortKey::Text(row.id.clone()),
        Column::CreatedAt => number(
            entity
                .and_then(Entity::created_at)
                .map(|t| t.timestamp_micros() as f64),
        ),
        Column::Property(key) => match entity.and_then(|e| e.properties()?.get(key)) {
            Some(Value::Number(n)) => number(n.as_f64()),
            Some(Value::String(s)) => text(s.clone()),
            Some(Value::Null) | None => SortKey::Missing,
            Some(other) => text(other.to_string()),
        },
        Column::Fact(fact) => match fact {
            Fact::EventCount => number(facts.event_count.map(|n| n as f64)),
            Fact::FirstEvent => number(facts.first_event.map(|n| n as f64)),
            Fact::LastEvent => number(facts.last_event.map(|n| n as f64)),
            Fact::TimeToConvert => number(facts.seconds_to_convert),
            Fact::Members => number(facts.members.map(|n| n as f64)),
            Fact::Appearances => SortKey::Missing,
        },
    }
}

/// The JSON answer: one page.
pub fn page_json(listing: &Listing, limit: usize, offset: usize) -> ApiResult<Value> {
    let (results, has_more, missing) = listing.page(offset, limit)?;
    Ok(json!({
        "columns": listing.column_names(),
        "results": results,
        "types": listing.types(),
        "hasMore": has_more,
        "limit": limit,
        "offset": offset,
        "missing_actors_count": missing,
    }))
}
