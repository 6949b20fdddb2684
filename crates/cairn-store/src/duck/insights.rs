//! Saved insights in DuckDB, and the event names the insight builder offers.

use chrono::Utc;
use duckdb::{params, Connection};

use cairn_core::ProjectId;

use super::{timestamp_from_micros, timestamp_value};
use crate::catalog::SavedInsight;
use crate::Result;

pub(crate) fn save_insight(
    conn: &Connection,
    project: ProjectId,
    name: &str,
    params: &str,
) -> Result<SavedInsight> {
    let id: i64 = conn.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM insights WHERE project_id = ?",
        params![project.0],
        |row| row.get(0),
    )?;
    let insight = SavedInsight {
        id,
        name: name.to_string(),
        params: params.to_string(),
        created_at: Utc::now(),
    };
    conn.execute(
        "INSERT INTO insights VALUES (?, ?, ?, ?, ?)",
        params![
            id,
            project.0,
            insight.name,
            insight.params,
            timestamp_value(insight.created_at)
        ],
    )?;
    Ok(insight)
}

pub(crate) fn list_insights(conn: &Connection, project: ProjectId) -> Result<Vec<SavedInsight>> {
    let mut statement = conn.prepare(
        "SELECT id, name, params, epoch_us(created_at) FROM insights
         WHERE project_id = ? ORDER BY created_at DESC",
    )?;
    let rows = statement.query_map(params![project.0], |row| {
        Ok(SavedInsight {
            id: row.get(0)?,
            name: row.get(1)?,
            params: row.get(2)?,
            created_at: timestamp_from_micros(row.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete_insight(conn: &Connection, project: ProjectId, id: i64) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM insights WHERE project_id = ? AND id = ?",
        params![project.0, id],
    )? > 0)
}

/// The project's event names, most frequent in the last 30 days first.
pub(crate) fn event_names(
    conn: &Connection,
    project: ProjectId,
    limit: usize,
) -> Result<Vec<String>> {
    let since = Utc::now() - chrono::Duration::days(30);
    let mut statement = conn.prepare(
        "SELECT event FROM events WHERE project_id = ? AND timestamp >= ?
         GROUP BY event ORDER BY count(*) DESC LIMIT ?",
    )?;
    let rows = statement.query_map(
        params![project.0, timestamp_value(since), limit as i64],
        |row| row.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
