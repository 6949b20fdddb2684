//! The ClickHouse layout. Events sort by project, day and event name, the
//! predicates every insight has, and partition by month. Persons, groups
//! and person overrides are mirrored as versioned `ReplacingMergeTree`
//! tables (`*_versions`); views of the same names the DuckDB store uses
//! keep each row's newest version (`FINAL`) and drop deleted ones, so
//! insights join them as they join DuckDB's tables. `cairn_loads` records
//! how far the journal is loaded.
//!
//! Migrations are numbered: `cairn_migrations` records those applied, and
//! each is idempotent besides, so a node that failed half-way can rerun.
//!
//! On a cluster each node holds its shard of the events (`events_local`)
//! behind a `Distributed` table named `events`, sharded by distinct id, and
//! a whole copy of the persons, groups and overrides, so every shard joins
//! its events to them locally. The statements run on every node (ClickHouse
//! run from `chdb` has no `ON CLUSTER`).

use super::ClickHouse;
use crate::schema::{group_column, EventColumn, FIXED_COLUMNS, MATERIALIZED};
use crate::Result;

/// Group columns of the events table (PostHog's five group types).
pub const GROUP_COLUMNS: usize = 5;
/// Inserts each table remembers by token, so that a retried insert (the
/// loader's, after a failure or a crash) is stored once. MergeTree tables
/// that are not replicated remember none unless told to.
const DEDUPLICATION_WINDOW: usize = 1000;

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
ORDER BY (project_id, toDate(timestamp), event, uuid)
SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        ),
        format!("CREATE TABLE IF NOT EXISTS persons_versions (
    project_id Int64,
    id UUID,
    properties String,
    is_identified Bool,
    created_at DateTime64(6, 'UTC'),
    version Int64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project_id, id)
SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        ),
        "CREATE VIEW IF NOT EXISTS persons AS
         SELECT project_id, id, properties, is_identified, created_at, version
         FROM persons_versions FINAL WHERE is_deleted = 0"
            .into(),
        format!("CREATE TABLE IF NOT EXISTS groups_versions (
    project_id Int64,
    group_type_index Int16,
    group_key String,
    properties String,
    created_at DateTime64(6, 'UTC'),
    version Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, group_type_index, group_key)
SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        ),
        "CREATE VIEW IF NOT EXISTS groups AS SELECT * FROM groups_versions FINAL".into(),
        // Flattened like DuckDB's: each old person leads straight to a
        // surviving one; a later merge re-points it with a higher version.
        format!("CREATE TABLE IF NOT EXISTS person_overrides_versions (
    project_id Int64,
    old_person_id UUID,
    person_id UUID,
    version Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, old_person_id)
SETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        ),
        "CREATE VIEW IF NOT EXISTS person_overrides AS SELECT * FROM person_overrides_versions FINAL"
            .into(),
        // One row per load: the last journal record it holds.
        "CREATE TABLE IF NOT EXISTS cairn_loads (
    seq UInt64,
    loaded_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = MergeTree
ORDER BY seq"
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

/// Applies the migrations `clickhouse` has not recorded yet.
pub(crate) fn migrate(clickhouse: &ClickHouse) -> Result<()> {
    clickhouse.execute(
        "CREATE TABLE IF NOT EXISTS cairn_migrations (
    version UInt32,
    applied_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY version",
    )?;
    let applied: usize = clickhouse
        .execute("SELECT count() FROM cairn_migrations")?
        .trim()
        .parse()
        .unwrap_or(0);
    let statements = statements(clickhouse.config().cluster.as_deref());
    for (version, statement) in statements.iter().enumerate().skip(applied) {
        clickhouse.execute(statement)?;
        clickhouse.execute(&format!(
            "INSERT INTO cairn_migrations (version) VALUES ({})",
            version + 1
        ))?;
    }
    Ok(())
}

/// The events table's columns, in order.
pub(crate) fn event_layout() -> Vec<EventColumn> {
    let fixed = (0..FIXED_COLUMNS.len()).map(EventColumn::Fixed);
    let groups = (0..GROUP_COLUMNS).map(EventColumn::Group);
    let materialized = MATERIALIZED
        .iter()
        .map(|(key, _)| EventColumn::Materialized(key));
    fixed.chain(groups).chain(materialized).collect()
}
