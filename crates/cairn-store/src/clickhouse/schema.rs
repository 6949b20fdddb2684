//! The ClickHouse layout. Events sort by project, day and event name, the
//! predicates every insight has, and partition by month. Persons, groups
//! and person overrides are mirrored as versioned `ReplacingMergeTree`
//! tables (`*_versions`); views of the same names the DuckDB store uses
//! keep each row's newest version (`FINAL`), so insights join them as they
//! join DuckDB's tables. Statements are idempotent: they run at every open.
//!
//! On a cluster each node holds its shard of the events (`events_local`)
//! behind a `Distributed` table named `events`, sharded by distinct id, and
//! a whole copy of the persons, groups and overrides, so every shard joins
//! its events to them locally. The statements run on every node (ClickHouse
//! run from `chdb` has no `ON CLUSTER`).

use super::ClickHouse;
use crate::schema::{group_column, MATERIALIZED};
use crate::Result;

/// Group columns of the events table (PostHog's five group types).
pub const GROUP_COLUMNS: usize = 5;

fn statements(cluster: Option<&str>) -> Vec<String> {
    let mut extra = String::new();
    for index in 0..GROUP_COLUMNS {
        extra.push_str(&format!(",\n    {} Nullable(String)", group_column(index)));
    }
    for (_, column) in MATERIALIZED {
        extra.push_str(&format!(",\n    {column} Nullable(String)"));
    }
    let events = if cluster.is_some() {
        "events_local"
    } else {
        "events"
    };
    let mut statements = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {events} (
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
    ];
    if let Some(cluster) = cluster {
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS events AS events_local
             ENGINE = Distributed('{cluster}', currentDatabase(), 'events_local', cityHash64(distinct_id))"
        ));
    }
    statements
}

/// Creates whatever of the layout is missing.
pub(crate) fn migrate(clickhouse: &ClickHouse) -> Result<()> {
    for statement in statements(clickhouse.config().cluster.as_deref()) {
        clickhouse.execute(&statement)?;
    }
    Ok(())
}
