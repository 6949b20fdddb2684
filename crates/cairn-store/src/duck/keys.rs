//! Personal API keys in DuckDB, kept as hashes (see [`crate::keys`]).

use chrono::Utc;
use duckdb::{params, Connection};
use uuid::Uuid;

use cairn_core::ProjectId;

use super::{timestamp_from_micros, timestamp_value};
use crate::catalog::{KeyGrant, PersonalKey};
use crate::keys;
use crate::Result;

/// Stores a personal key for `project`, acting for the account `owner`
/// (none: the operator's); `secret` is generated unless given.
/// Returns the key's record and its secret, which is shown only this once.
pub(crate) fn create_personal_key(
    conn: &Connection,
    project: ProjectId,
    label: &str,
    secret: Option<String>,
    owner: Option<Uuid>,
) -> Result<(PersonalKey, String)> {
    let secret = keys::personal_key(secret)?;
    let key = PersonalKey {
        id: Uuid::now_v7(),
        project_id: project,
        label: label.to_string(),
        mask_value: keys::mask(&secret),
        created_at: Utc::now(),
    };
    conn.execute(
        "INSERT INTO personal_api_keys (id, project_id, label, secret_hash, mask_value, created_at, user_id)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            key.id.to_string(),
            project.0,
            key.label,
            keys::hash_secret(&secret),
            key.mask_value,
            timestamp_value(key.created_at),
            owner.map(|id| id.to_string())
        ],
    )?;
    Ok((key, secret))
}

pub(crate) fn list_personal_keys(
    conn: &Connection,
    project: ProjectId,
) -> Result<Vec<PersonalKey>> {
    let mut statement = conn.prepare(
        "SELECT id::VARCHAR, label, mask_value, epoch_us(created_at) FROM personal_api_keys
         WHERE project_id = ? ORDER BY created_at",
    )?;
    let rows = statement.query_map(params![project.0], |row| {
        let id: String = row.get(0)?;
        Ok(PersonalKey {
            id: id.parse().unwrap_or_default(),
            project_id: project,
            label: row.get(1)?,
            mask_value: row.get(2)?,
            created_at: timestamp_from_micros(row.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a key; false when the project has no key with that id.
pub(crate) fn delete_personal_key(conn: &Connection, project: ProjectId, id: Uuid) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM personal_api_keys WHERE project_id = ? AND id = ?",
        params![project.0, id.to_string()],
    )?;
    Ok(deleted > 0)
}

/// Every personal key's hash with what it grants.
pub(crate) fn personal_key_grants(conn: &Connection) -> Result<Vec<(String, KeyGrant)>> {
    let mut statement =
        conn.prepare("SELECT secret_hash, project_id, user_id::VARCHAR FROM personal_api_keys")?;
    let rows = statement.query_map([], |row| {
        let owner: Option<String> = row.get(2)?;
        Ok((
            row.get(0)?,
            KeyGrant {
                project: ProjectId(row.get(1)?),
                owner: owner.and_then(|id| id.parse().ok()),
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
