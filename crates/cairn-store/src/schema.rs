//! Tables of the embedded store. Migrations are idempotent statements run at
//! every start; the events table gets one column per allowed group type.

use duckdb::Connection;

use crate::Result;

const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS projects (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL,
    api_token VARCHAR NOT NULL UNIQUE,
    timezone VARCHAR NOT NULL DEFAULT 'UTC',
    week_start_day SMALLINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS personal_api_keys (
    id UUID PRIMARY KEY,
    project_id BIGINT NOT NULL,
    label VARCHAR NOT NULL,
    secret_hash VARCHAR NOT NULL UNIQUE,
    mask_value VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    project_id BIGINT NOT NULL,
    uuid UUID NOT NULL,
    event VARCHAR NOT NULL,
    distinct_id VARCHAR NOT NULL,
    person_id UUID,
    timestamp TIMESTAMP NOT NULL,
    inserted_at TIMESTAMP NOT NULL,
    properties JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS persons (
    project_id BIGINT NOT NULL,
    id UUID NOT NULL,
    properties JSON NOT NULL,
    is_identified BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE TABLE IF NOT EXISTS person_distinct_ids (
    project_id BIGINT NOT NULL,
    distinct_id VARCHAR NOT NULL,
    person_id UUID NOT NULL,
    PRIMARY KEY (project_id, distinct_id)
);
CREATE TABLE IF NOT EXISTS group_types (
    project_id BIGINT NOT NULL,
    group_type_index SMALLINT NOT NULL,
    group_type VARCHAR NOT NULL,
    name_singular VARCHAR,
    name_plural VARCHAR,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, group_type_index)
);
CREATE TABLE IF NOT EXISTS groups (
    project_id BIGINT NOT NULL,
    group_type_index SMALLINT NOT NULL,
    group_key VARCHAR NOT NULL,
    properties JSON NOT NULL,
    created_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (project_id, group_type_index, group_key)
);
CREATE TABLE IF NOT EXISTS feature_flags (
    id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    filters JSON NOT NULL,
    active BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    ensure_experience_continuity BOOLEAN NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS ingestion_warnings (
    project_id BIGINT NOT NULL,
    type VARCHAR NOT NULL,
    details JSON NOT NULL,
    timestamp TIMESTAMP NOT NULL
);
"#;

/// The name of the events column holding the key of group type `index`.
pub fn group_column(index: usize) -> String {
    format!("group_{index}")
}

pub fn migrate(conn: &Connection, group_columns: usize) -> Result<()> {
    conn.execute_batch(TABLES)?;
    for index in 0..group_columns {
        conn.execute_batch(&format!(
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS {} VARCHAR",
            group_column(index)
        ))?;
    }
    Ok(())
}

/// How many `group_N` columns the events table has.
pub fn count_group_columns(conn: &Connection) -> Result<usize> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM information_schema.columns
         WHERE table_name = 'events' AND regexp_matches(column_name, '^group_[0-9]+$')",
        [],
        |row| row.get(0),
    )?;
    Ok(count as usize)
}
