//! Projects in DuckDB.

use chrono::Utc;
use duckdb::{params, Connection, OptionalExt};

use cairn_core::ProjectId;

use super::{timestamp_from_micros, timestamp_value};
use crate::catalog::Project;
use crate::keys;
use crate::{Result, StoreError};

const COLUMNS: &str = "id, name, api_token, timezone, week_start_day, epoch_us(created_at)";

fn from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Project> {
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        api_token: row.get(2)?,
        timezone: row.get(3)?,
        week_start_day: row.get(4)?,
        created_at: timestamp_from_micros(row.get(5)?),
    })
}

pub(crate) fn list_projects(conn: &Connection) -> Result<Vec<Project>> {
    let mut statement = conn.prepare(&format!("SELECT {COLUMNS} FROM projects ORDER BY id"))?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn get_project(conn: &Connection, id: ProjectId) -> Result<Option<Project>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM projects WHERE id = ?"),
            params![id.0],
            from_row,
        )
        .optional()?)
}

/// Creates a project; its API key is generated unless given.
pub(crate) fn create_project(
    conn: &Connection,
    name: &str,
    api_token: Option<String>,
) -> Result<Project> {
    let api_token = keys::project_key(api_token)?;
    let taken: i64 = conn.query_row(
        "SELECT count(*) FROM projects WHERE api_token = ?",
        params![api_token],
        |r| r.get(0),
    )?;
    if taken > 0 {
        return Err(StoreError::Conflict(
            "another project already has this API key".into(),
        ));
    }
    let id: i64 = conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM projects", [], |r| {
        r.get(0)
    })?;
    let project = Project {
        id: ProjectId(id),
        name: name.to_string(),
        api_token,
        timezone: "UTC".into(),
        week_start_day: 0,
        created_at: Utc::now(),
    };
    conn.execute(
        "INSERT INTO projects VALUES (?, ?, ?, ?, ?, ?)",
        params![
            id,
            project.name,
            project.api_token,
            project.timezone,
            project.week_start_day,
            timestamp_value(project.created_at)
        ],
    )?;
    Ok(project)
}

/// Changes the given settings of a project and returns it.
pub(crate) fn update_project(
    conn: &Connection,
    id: ProjectId,
    name: Option<&str>,
    timezone: Option<&str>,
    week_start_day: Option<i16>,
) -> Result<Project> {
    conn.execute(
        "UPDATE projects SET name = coalesce(?::VARCHAR, name), timezone = coalesce(?::VARCHAR, timezone),
                week_start_day = coalesce(?::SMALLINT, week_start_day) WHERE id = ?",
        params![name, timezone, week_start_day, id.0],
    )?;
    get_project(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("project {id} not found")))
}
