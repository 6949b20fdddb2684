//! Queries behind the private REST API: persons, groups, group types, events
//! and ingestion warnings. All are scoped to one project.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use duckdb::types::Value as SqlValue;
use duckdb::{params, params_from_iter, Connection, OptionalExt, Row};
use serde_json::Value;

use cairn_core::{Group, GroupType, GroupTypeIndex, IngestionWarning, Person, ProjectId};

use super::dialect::{json_pointer, DuckDialect};
use super::{timestamp_from_micros, timestamp_value};
use crate::dialect::Dialect;
use crate::entities::{EventFilter, GroupFilter, ListKey, PersonFilter, StoredEvent};
use crate::identity::{CURRENT_PERSON, OVERRIDES_JOIN};
use crate::schema::group_column;
use crate::Result;

/// Group types of one project (or of all, for the ingestion snapshot).
pub(crate) fn group_types(
    conn: &Connection,
    project: Option<ProjectId>,
) -> Result<Vec<(ProjectId, GroupType)>> {
    let mut statement = conn.prepare(
        "SELECT project_id, group_type_index, group_type, name_singular, name_plural, epoch_us(created_at)
         FROM group_types WHERE ?::BIGINT IS NULL OR project_id = ? ORDER BY project_id, group_type_index",
    )?;
    let project = project.map(|p| p.0);
    let rows = statement.query_map(params![project, project], |row| {
        Ok((
            ProjectId(row.get(0)?),
            GroupType {
                group_type_index: row.get(1)?,
                group_type: row.get(2)?,
                name_singular: row.get(3)?,
                name_plural: row.get(4)?,
                created_at: timestamp_from_micros(row.get(5)?),
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets display names of a group type; `None` leaves a name as it is,
/// `Some(None)` clears it. Returns false when the group type does not exist.
pub(crate) fn update_group_type_names(
    conn: &Connection,
    project: ProjectId,
    index: GroupTypeIndex,
    name_singular: Option<Option<&str>>,
    name_plural: Option<Option<&str>>,
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE group_types SET
            name_singular = CASE WHEN ?::BOOLEAN THEN ?::VARCHAR ELSE name_singular END,
            name_plural = CASE WHEN ?::BOOLEAN THEN ?::VARCHAR ELSE name_plural END
         WHERE project_id = ? AND group_type_index = ?",
        params![
            name_singular.is_some(),
            name_singular.flatten(),
            name_plural.is_some(),
            name_plural.flatten(),
            project.0,
            index
        ],
    )?;
    Ok(changed > 0)
}

const GROUP_COLUMNS: &str =
    "project_id, group_type_index, group_key, properties::VARCHAR, epoch_us(created_at), version";

fn group_from_row(row: &Row<'_>) -> duckdb::Result<Group> {
    let properties: String = row.get(3)?;
    Ok(Group {
        project_id: ProjectId(row.get(0)?),
        group_type_index: row.get(1)?,
        group_key: row.get(2)?,
        properties: serde_json::from_str(&properties).unwrap_or_default(),
        created_at: timestamp_from_micros(row.get(4)?),
        version: row.get(5)?,
    })
}

pub(crate) fn list_groups(
    conn: &Connection,
    project: ProjectId,
    filter: &GroupFilter<'_>,
) -> Result<Vec<Group>> {
    let g = format!("g{}", filter.group_type_index);
    let order = order_sql(filter.order, |key| match key {
        ListKey::CreatedAt => format!("{g}.created_at"),
        ListKey::Id => format!("{g}.group_key"),
        ListKey::DisplayName => {
            format!("lower(coalesce(nullif({g}.properties->>'$.name', ''), {g}.group_key))")
        }
        ListKey::Property(key) => {
            format!(
                "lower({})",
                DuckDialect.json_text(&format!("{g}.properties"), key)
            )
        }
    });
    let mut statement = conn.prepare(&format!(
        "SELECT {GROUP_COLUMNS} FROM groups {g}
         WHERE project_id = ? AND group_type_index = ?
           AND (?::VARCHAR IS NULL OR contains(lower(properties::VARCHAR), lower(?::VARCHAR)) OR contains(lower(group_key), lower(?::VARCHAR)))
           AND (?::VARCHAR IS NULL OR contains(lower(group_key), lower(?::VARCHAR)))
           AND (?::VARCHAR IS NULL OR contains(lower(properties->>'$.name'), lower(?::VARCHAR)) OR contains(lower(group_key), lower(?::VARCHAR)))
           AND {condition}
         ORDER BY {order}{g}.group_key
         LIMIT ? OFFSET ?",
        condition = filter.condition.unwrap_or("TRUE"),
    ))?;
    let rows = statement.query_map(
        params![
            project.0,
            filter.group_type_index,
            filter.search,
            filter.search,
            filter.search,
            filter.key_contains,
            filter.key_contains,
            filter.name_or_key_contains,
            filter.name_or_key_contains,
            filter.name_or_key_contains,
            filter.limit as i64,
            filter.offset as i64
        ],
        group_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn find_group(
    conn: &Connection,
    project: ProjectId,
    index: GroupTypeIndex,
    key: &str,
) -> Result<Option<Group>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {GROUP_COLUMNS} FROM groups WHERE project_id = ? AND group_type_index = ? AND group_key = ?"
            ),
            params![project.0, index, key],
            group_from_row,
        )
        .optional()?)
}

/// Property names used by the groups of each type, most used first.
pub(crate) fn group_property_definitions(
    conn: &Connection,
    project: ProjectId,
) -> Result<BTreeMap<GroupTypeIndex, Vec<(String, i64)>>> {
    let mut statement = conn.prepare(
        "SELECT group_type_index, key, count(*) AS n
         FROM (SELECT group_type_index, unnest(json_keys(properties)) AS key FROM groups WHERE project_id = ?)
         GROUP BY ALL ORDER BY group_type_index, n DESC, key",
    )?;
    let mut definitions: BTreeMap<GroupTypeIndex, Vec<(String, i64)>> = BTreeMap::new();
    let mut rows = statement.query(params![project.0])?;
    while let Some(row) = rows.next()? {
        definitions
            .entry(row.get(0)?)
            .or_default()
            .push((row.get(1)?, row.get(2)?));
    }
    Ok(definitions)
}

/// The most common values of one group property, at most 20.
pub(crate) fn group_property_values(
    conn: &Connection,
    project: ProjectId,
    index: GroupTypeIndex,
    key: &str,
    value_contains: Option<&str>,
) -> Result<Vec<(Value, i64)>> {
    let mut statement = conn.prepare(
        "SELECT value::VARCHAR, count(*) AS n FROM (
            SELECT json_extract(properties, ?::VARCHAR) AS value FROM groups
            WHERE project_id = ? AND group_type_index = ?)
         WHERE value IS NOT NULL AND json_type(value) <> 'NULL'
           AND (?::VARCHAR IS NULL OR contains(lower(trim(value::VARCHAR, '\"')), lower(?::VARCHAR)))
         GROUP BY value ORDER BY n DESC, value::VARCHAR LIMIT 20",
    )?;
    let rows = statement.query_map(
        params![
            json_pointer(key),
            project.0,
            index,
            value_contains,
            value_contains
        ],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
    )?;
    let mut values = Vec::new();
    for row in rows {
        let (text, count) = row?;
        values.push((serde_json::from_str(&text)?, count));
    }
    Ok(values)
}

pub(crate) fn list_persons(
    conn: &Connection,
    project: ProjectId,
    filter: &PersonFilter<'_>,
) -> Result<Vec<Person>> {
    let mut statement = conn.prepare(&format!(
        "SELECT p.project_id, p.id::VARCHAR, p.properties::VARCHAR, p.is_identified, epoch_us(p.created_at), p.version,
                (SELECT to_json(list(d.distinct_id ORDER BY d.rowid))::VARCHAR FROM person_distinct_ids d
                 WHERE d.project_id = p.project_id AND d.person_id = p.id)
         FROM persons p
         WHERE p.project_id = ?
           AND (?::UUID IS NULL OR p.id = ?::UUID)
           AND (?::VARCHAR IS NULL OR EXISTS (SELECT 1 FROM person_distinct_ids d
                WHERE d.project_id = p.project_id AND d.person_id = p.id AND d.distinct_id = ?))
           AND (?::VARCHAR IS NULL
                OR contains(lower(p.properties->>'$.email'), lower(?::VARCHAR))
                OR contains(lower(p.properties->>'$.name'), lower(?::VARCHAR))
                OR p.id::VARCHAR = lower(?::VARCHAR)
                OR EXISTS (SELECT 1 FROM person_distinct_ids d
                    WHERE d.project_id = p.project_id AND d.person_id = p.id AND contains(lower(d.distinct_id), lower(?::VARCHAR))))
           AND {condition}
         ORDER BY {order}p.id
         LIMIT ? OFFSET ?",
        condition = filter.condition.unwrap_or("TRUE"),
        order = order_sql(filter.order, |key| match key {
            ListKey::CreatedAt => "p.created_at".into(),
            ListKey::Id => "p.id".into(),
            ListKey::DisplayName => "lower(coalesce(nullif(p.properties->>'$.email', ''), nullif(p.properties->>'$.name', ''),
                (SELECT d.distinct_id FROM person_distinct_ids d WHERE d.project_id = p.project_id AND d.person_id = p.id ORDER BY d.rowid LIMIT 1),
                p.id::VARCHAR))".into(),
            ListKey::Property(key) => format!("lower({})", DuckDialect.json_text("p.properties", key)),
        }),
    ))?;
    let id = filter.id.map(|id| id.to_string());
    let s = filter.search;
    let rows = statement.query_map(
        params![
            project.0,
            id,
            id,
            filter.distinct_id,
            filter.distinct_id,
            s,
            s,
            s,
            s,
            s,
            filter.limit as i64,
            filter.offset as i64
        ],
        |row| {
            let id: String = row.get(1)?;
            let properties: String = row.get(2)?;
            let distinct_ids: Option<String> = row.get(6)?;
            Ok(Person {
                project_id: ProjectId(row.get(0)?),
                id: id.parse().unwrap_or_default(),
                properties: serde_json::from_str(&properties).unwrap_or_default(),
                is_identified: row.get(3)?,
                created_at: timestamp_from_micros(row.get(4)?),
                version: row.get(5)?,
                distinct_ids: distinct_ids
                    .and_then(|ids| serde_json::from_str(&ids).ok())
                    .unwrap_or_default(),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `ORDER BY` terms for `order` (newest first when empty), each followed by
/// a comma: the caller adds the tie-break.
fn order_sql(order: &[(ListKey<'_>, bool)], key: impl Fn(ListKey<'_>) -> String) -> String {
    if order.is_empty() {
        return key(ListKey::CreatedAt) + " DESC, ";
    }
    order
        .iter()
        .map(|(k, desc)| {
            let direction = if *desc { "DESC" } else { "ASC" };
            format!("{} {direction} NULLS LAST, ", key(*k))
        })
        .collect()
}

/// Newest first. Unless the filter names one person or group (whose
/// events are few and spread out), the table is read in widening windows
/// back from the newest event (or from the page's cursor): a page of recent
/// events reads a day of data, which the timestamp zone maps skip to.
pub(crate) fn list_events(
    conn: &Connection,
    project: ProjectId,
    group_columns: usize,
    filter: &EventFilter<'_>,
) -> Result<Vec<StoredEvent>> {
    let sparse =
        filter.person_id.is_some() || filter.group.is_some() || filter.distinct_id.is_some();
    if sparse {
        return events_since(conn, project, group_columns, filter, None);
    }
    let anchor = match filter.after_cursor.map(|(at, _)| at).or(filter.before) {
        Some(at) => Some(at),
        None => conn
            .query_row(
                "SELECT epoch_us(max(timestamp)) FROM events WHERE project_id = ?",
                params![project.0],
                |row| row.get::<_, Option<i64>>(0),
            )?
            .map(timestamp_from_micros),
    };
    let Some(anchor) = anchor else {
        return Ok(Vec::new());
    };
    for days in [1, 7, 30, 365] {
        let since = anchor - chrono::Duration::days(days);
        if filter.after.is_some_and(|after| after >= since) {
            break;
        }
        let page = events_since(conn, project, group_columns, filter, Some(since))?;
        if page.len() >= filter.limit {
            return Ok(page);
        }
    }
    events_since(conn, project, group_columns, filter, None)
}

fn events_since(
    conn: &Connection,
    project: ProjectId,
    group_columns: usize,
    filter: &EventFilter<'_>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<StoredEvent>> {
    let mut conditions = vec!["e.project_id = ?".to_string()];
    let mut args: Vec<SqlValue> = vec![SqlValue::BigInt(project.0)];
    if let Some(since) = since {
        conditions.push("e.timestamp >= ?".into());
        args.push(timestamp_value(since));
    }
    if let Some(event) = filter.event {
        conditions.push("e.event = ?".into());
        args.push(SqlValue::Text(event.into()));
    }
    if let Some(distinct_id) = filter.distinct_id {
        conditions.push("e.distinct_id = ?".into());
        args.push(SqlValue::Text(distinct_id.into()));
    }
    if let Some(person) = filter.person_id {
        conditions.push(format!("{CURRENT_PERSON} = ?::UUID"));
        args.push(SqlValue::Text(person.to_string()));
    }
    if let Some((index, key)) = filter.group {
        if (index as usize) >= group_columns {
            return Ok(Vec::new());
        }
        conditions.push(format!("e.{} = ?", group_column(index as usize)));
        args.push(SqlValue::Text(key.into()));
    }
    if let Some(after) = filter.after {
        conditions.push("e.timestamp > ?".into());
        args.push(timestamp_value(after));
    }
    if let Some(before) = filter.before {
        conditions.push("e.timestamp < ?".into());
        args.push(timestamp_value(before));
    }
    if let Some((timestamp, uuid)) = filter.after_cursor {
        conditions.push("(e.timestamp < ? OR (e.timestamp = ? AND e.uuid < ?::UUID))".into());
        args.extend([
            timestamp_value(timestamp),
            timestamp_value(timestamp),
            SqlValue::Text(uuid.to_string()),
        ]);
    }
    args.push(SqlValue::BigInt(filter.limit as i64));
    let group_select: String = (0..group_columns)
        .map(|i| format!(", e.{}", group_column(i)))
        .collect();
    let sql = format!(
        "SELECT e.uuid::VARCHAR, e.event, e.distinct_id, {CURRENT_PERSON}::VARCHAR, epoch_us(e.timestamp),
                e.properties::VARCHAR{group_select}
         FROM events e {OVERRIDES_JOIN}
         WHERE {}
         ORDER BY e.timestamp DESC, e.uuid DESC
         LIMIT ?",
        conditions.join(" AND ")
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(args.iter()), |row| {
        let uuid: String = row.get(0)?;
        let person: Option<String> = row.get(3)?;
        let properties: String = row.get(5)?;
        let groups = (0..group_columns)
            .map(|i| row.get(6 + i))
            .collect::<duckdb::Result<_>>()?;
        Ok(StoredEvent {
            uuid: uuid.parse().unwrap_or_default(),
            event: row.get(1)?,
            distinct_id: row.get(2)?,
            person_id: person.and_then(|p| p.parse().ok()),
            timestamp: timestamp_from_micros(row.get(4)?),
            properties: serde_json::from_str(&properties).unwrap_or_default(),
            groups,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest ingestion warnings of a project.
pub(crate) fn list_warnings(
    conn: &Connection,
    project: ProjectId,
    limit: usize,
) -> Result<Vec<IngestionWarning>> {
    let mut statement = conn.prepare(
        "SELECT type, details::VARCHAR, epoch_us(timestamp) FROM ingestion_warnings
         WHERE project_id = ? ORDER BY timestamp DESC LIMIT ?",
    )?;
    let rows = statement.query_map(params![project.0, limit as i64], |row| {
        let kind: String = row.get(0)?;
        let details: String = row.get(1)?;
        Ok((kind, details, row.get::<_, i64>(2)?))
    })?;
    let mut warnings = Vec::new();
    for row in rows {
        let (kind, details, micros) = row?;
        let Some(kind) = cairn_core::WarningKind::parse(&kind) else {
            continue;
        };
        warnings.push(IngestionWarning {
            project_id: project,
            kind,
            details: serde_json::from_str(&details)?,
            timestamp: timestamp_from_micros(micros),
        });
    }
    Ok(warnings)
}
