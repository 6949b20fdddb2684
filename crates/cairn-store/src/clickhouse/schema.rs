//! The ClickHouse layout. Events sort by project, day and event name, the
//! predicates every insight has, and partition by month. Persons, groups
//! and person overrides are mirrored as versioned `ReplacingMergeTree`
//! tables (`*_versions`); views of the same names the DuckDB store uses
//! keep each row's newest version (`FINAL`), so insights join them as they
//! join DuckDB's tables. Statements are idempotent: they run at every open.

use super::ClickHouse;
use crate::schema::{group_column, MATERIALIZED};
use crate::Result;

/// Group columns of the events table (PostHog's five group types).
pub const GROUP_COLUMNS: usize = 5;

fn statements() -> Vec<String> {
    let mut extra = String::new();
    for index in 0..GROUP_COLUMNS {
        extra.push_str(&format!(",\n    {} Nullable(String)", group_column(index)));
    }
    for (_, column) in MATERIALIZED {
        extra.push_str(&format!(",\n    {column} Nullable(String)"));
    }
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS events (
    project_id Int64,
    uuid UUID,
    event String,
    distinct_id String,
    person_id Nullable(UUID),
    timestamp DateTime64(6, 'UTC'),
    inserted_at DateTime64(6, 'UTC'),
    properties String{extra}
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, toDate(timestamp), event, uuid)"
        ),
        "CREATE TABLE IF NOT EXISTS persons_versions (
    project_id Int64,
    id UUID,
    properties String,
    is_identified Bool,
    created_at DateTime64(6, 'UTC'),
    version Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, id)"
            .into(),
        "CREATE VIEW IF NOT EXISTS persons AS SELECT * FROM persons_versions FINAL".into(),
        "CREATE TABLE IF NOT EXISTS groups_versions (
    project_id Int64,
    group_type_index Int16,
    group_key String,
    properties String,
    created_at DateTime64(6, 'UTC'),
    version Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, group_type_index, group_key)"
            .into(),
        "CREATE VIEW IF NOT EXISTS groups AS SELECT * FROM groups_versions FINAL".into(),
        // Flattened like DuckDB's: each old person leads straight to a
        // surviving one; a later merge re-points it with a higher version.
        "CREATE TABLE IF NOT EXISTS person_overrides_versions (
    project_id Int64,
    old_person_id UUID,
    person_id UUID,
    version Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, old_person_id)"
            .into(),
        "CREATE VIEW IF NOT EXISTS person_overrides AS SELECT * FROM person_overrides_versions FINAL"
            .into(),
    ]
}

/// Creates whatever of the layout is missing.
pub(crate) fn migrate(clickhouse: &ClickHouse) -> Result<()> {
    for statement in statements() {
        clickhouse.execute(&statement)?;
    }
    Ok(())
}
