//! Feature-flag definitions in DuckDB: rows with the filters as JSON, and
//! the hash keys of experience continuity.

use std::collections::HashMap;

use chrono::Utc;
use duckdb::{params, Connection, OptionalExt};
use serde_json::Value;
use uuid::Uuid;

use cairn_core::ProjectId;

use super::{timestamp_from_micros, timestamp_value};
use crate::catalog::StoredFlag;
use crate::{Result, StoreError};

const COLUMNS: &str = "id, project_id, key, name, filters::VARCHAR, active, deleted,
    ensure_experience_continuity, version, epoch_us(created_at), epoch_us(updated_at)";

fn from_row(row: &duckdb::Row<'_>) -> duckdb::Result<(StoredFlag, String)> {
    Ok((
        StoredFlag {
            id: row.get(0)?,
            project_id: ProjectId(row.get(1)?),
            key: row.get(2)?,
            name: row.get(3)?,
            filters: Value::Null,
            active: row.get(5)?,
            deleted: row.get(6)?,
            ensure_experience_continuity: row.get(7)?,
            version: row.get(8)?,
            created_at: timestamp_from_micros(row.get(9)?),
            updated_at: timestamp_from_micros(row.get(10)?),
        },
        row.get(4)?,
    ))
}

fn parsed((mut flag, filters): (StoredFlag, String)) -> Result<StoredFlag> {
    flag.filters = serde_json::from_str(&filters)
        .map_err(|e| StoreError::Corrupt(format!("filters of flag {}: {e}", flag.id)))?;
    Ok(flag)
}

/// The project's flags that are not deleted, oldest first.
pub(crate) fn list_flags(conn: &Connection, project: ProjectId) -> Result<Vec<StoredFlag>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM feature_flags WHERE project_id = ? AND NOT deleted ORDER BY id"
    ))?;
    let rows = statement.query_map(params![project.0], from_row)?;
    rows.map(|row| parsed(row?)).collect()
}

pub(crate) fn get_flag(
    conn: &Connection,
    project: ProjectId,
    id: i64,
) -> Result<Option<StoredFlag>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM feature_flags WHERE project_id = ? AND id = ? AND NOT deleted"
        ),
        params![project.0, id],
        from_row,
    )
    .optional()?
    .map(parsed)
    .transpose()
}

fn key_taken(conn: &Connection, project: ProjectId, key: &str, except: i64) -> Result<bool> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM feature_flags WHERE project_id = ? AND key = ? AND NOT deleted AND id <> ?",
        params![project.0, key, except],
        |r| r.get(0),
    )?;
    Ok(count > 0)
}

/// Saves a new flag (its `id`, `version` and times are assigned) and returns it.
pub(crate) fn create_flag(conn: &Connection, mut flag: StoredFlag) -> Result<StoredFlag> {
    if key_taken(conn, flag.project_id, &flag.key, -1)? {
        return Err(StoreError::Conflict(format!(
            "a flag with key {:?} already exists",
            flag.key
        )));
    }
    flag.id = conn.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM feature_flags",
        [],
        |r| r.get(0),
    )?;
    flag.version = 1;
    flag.created_at = Utc::now();
    flag.updated_at = flag.created_at;
    conn.execute(
        "INSERT INTO feature_flags VALUES (?, ?, ?, ?, ?::JSON, ?, false, ?, ?, ?, ?)",
        params![
            flag.id,
            flag.project_id.0,
            flag.key,
            flag.name,
            flag.filters.to_string(),
            flag.active,
            flag.ensure_experience_continuity,
            flag.version,
            timestamp_value(flag.created_at),
            timestamp_value(flag.updated_at),
        ],
    )?;
    Ok(flag)
}

/// Replaces a flag's definition; the version goes up by one.
pub(crate) fn update_flag(conn: &Connection, flag: &StoredFlag) -> Result<StoredFlag> {
    if key_taken(conn, flag.project_id, &flag.key, flag.id)? {
        return Err(StoreError::Conflict(format!(
            "a flag with key {:?} already exists",
            flag.key
        )));
    }
    let changed = conn.execute(
        "UPDATE feature_flags SET key = ?, name = ?, filters = ?::JSON, active = ?, deleted = ?,
            ensure_experience_continuity = ?, version = version + 1, updated_at = ?
         WHERE project_id = ? AND id = ? AND NOT deleted",
        params![
            flag.key,
            flag.name,
            flag.filters.to_string(),
            flag.active,
            flag.deleted,
            flag.ensure_experience_continuity,
            timestamp_value(Utc::now()),
            flag.project_id.0,
            flag.id,
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!(
            "feature flag {} not found",
            flag.id
        )));
    }
    // A deleted flag is no longer readable; report what was written.
    let mut stored = flag.clone();
    stored.version += 1;
    Ok(get_flag(conn, flag.project_id, flag.id)?.unwrap_or(stored))
}

/// Experience continuity (spec/flags.md §3.8): the hash key each of
/// `flag_keys` uses for `person`. With `anon_distinct_id`, flags without a
/// stored key first get that one, so the variant seen before identification
/// stays.
pub(crate) fn continuity_overrides(
    conn: &Connection,
    project: ProjectId,
    person: Uuid,
    anon_distinct_id: Option<&str>,
    flag_keys: &[String],
) -> Result<HashMap<String, String>> {
    let person = person.to_string();
    if let Some(anon) = anon_distinct_id {
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO flag_hash_key_overrides VALUES (?, ?::UUID, ?, ?)",
        )?;
        for key in flag_keys {
            insert.execute(params![project.0, person, key, anon])?;
        }
    }
    let mut select = conn.prepare_cached(
        "SELECT feature_flag_key, hash_key FROM flag_hash_key_overrides WHERE project_id = ? AND person_id = ?::UUID",
    )?;
    let rows = select.query_map(params![project.0, person], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
