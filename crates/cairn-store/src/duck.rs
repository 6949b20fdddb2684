//! The embedded DuckDB store: one database file in the data directory, a
//! pool of connections for reads, and one dedicated connection for the
//! ingestion writer. It implements the [`crate::Catalog`] and the
//! [`crate::EntityReader`] (in [`boundary`], over the per-table SQL of the
//! modules below), the [`crate::EventStore`] (in [`scan`], spelling SQL with
//! [`dialect::DuckDialect`]) and, through [`DuckWriter`], the [`BulkLoader`]
//! behind the journal. Everything in the crate that speaks DuckDB is here.

mod boundary;
mod clustering;
mod dialect;
mod entities;
mod flags;
mod insights;
mod keys;
mod projects;
mod scan;
mod schema;
mod users;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection, DuckdbConnectionManager};

use cairn_core::{Event, Group, IngestionWarning, Person, ProjectId};
use uuid::Uuid;

use crate::barrier::ReadBarrier;
use crate::bulk::{BulkLoader, LoadTarget};
use crate::commit::EntityChanges;
use crate::event_batch::{self, Uuids};
use crate::{Commit, IngestStore, Result, SnapshotVisitor, StoreError};

pub use clustering::{Clustering, Pass};

pub type PooledConnection = r2d2::PooledConnection<DuckdbConnectionManager>;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "cairn.duckdb";

/// WAL size that triggers a checkpoint inside a commit. DuckDB's 16 MB
/// default means a checkpoint every fraction of a second under load.
const CHECKPOINT_THRESHOLD: &str = "256MB";

#[derive(Clone)]
pub struct DuckStore {
    pool: r2d2::Pool<DuckdbConnectionManager>,
    group_columns: usize,
    path: PathBuf,
    /// Where reads of ingested data wait for the loader, once ingestion
    /// writes through the journal (see [`DuckStore::with_read_barrier`]).
    barrier: Option<ReadBarrier>,
}

impl DuckStore {
    /// Opens (creating if needed) the store in `data_dir`, with room for
    /// `group_type_limit` group types per project.
    pub fn open(data_dir: &Path, group_type_limit: usize) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let manager = DuckdbConnectionManager::file(&path)?;
        let pool = r2d2::Pool::builder().max_size(16).build(manager)?;
        let conn = pool.get()?;
        conn.execute_batch(&format!(
            "SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'"
        ))?;
        schema::migrate(&conn, group_type_limit)?;
        let group_columns = schema::count_group_columns(&conn)?;
        Ok(Self {
            pool,
            group_columns,
            path,
            barrier: None,
        })
    }

    /// Bounds the memory DuckDB uses for its cache and queries (for all
    /// connections); `limit` is a size such as `1GB`.
    pub fn set_memory_limit(&self, limit: &str) -> Result<()> {
        self.conn()?
            .execute_batch(&format!("SET memory_limit = '{}'", limit.replace('\'', "")))?;
        Ok(())
    }

    /// Locks the database down, for every connection of the pool: no SQL
    /// can reach a file (`read_csv`, `COPY`, `ATTACH`, extensions) beyond
    /// the database's own, and no setting can change again, so a quoting
    /// slip in generated SQL cannot read or write files. Call it last:
    /// every `SET` (such as [`DuckStore::set_memory_limit`]) must come before.
    pub fn lock_down(&self) -> Result<()> {
        self.conn()?
            .execute_batch("SET enable_external_access = false; SET lock_configuration = true;")?;
        Ok(())
    }

    /// Bytes DuckDB holds in its buffer pool and query memory, by what
    /// holds them (`BASE_TABLE`, `ART_INDEX`, …).
    pub fn memory_used(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.conn()?;
        let mut statement =
            conn.prepare("SELECT tag, memory_usage_bytes::UBIGINT FROM duckdb_memory()")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sorts the events appended since the last pass in the background,
    /// once there are at least `min_unsorted` (see [`Clustering`]).
    pub fn start_clustering(&self, min_unsorted: i64) -> Result<Clustering> {
        Clustering::start(self.conn()?, min_unsorted)
    }

    /// Sorts the events appended since the last pass now, however few
    /// (one pass of [`Clustering`]); `None` when there were none.
    pub fn sort_events(&self) -> Result<Option<Pass>> {
        clustering::sort_pass(&mut *self.conn()?, 1)
    }

    /// A connection for administrative reads and writes, which need not see
    /// the latest events.
    pub fn conn(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// This store (the same database) with its reads of ingested data
    /// waiting at `barrier`: the journaled writer's, once ingestion starts.
    pub fn with_read_barrier(mut self, barrier: ReadBarrier) -> Self {
        self.barrier = Some(barrier);
        self
    }

    /// A connection for reads that must see every event acknowledged so far:
    /// waits (blocking) until the loader has them in DuckDB.
    pub fn reader(&self) -> Result<PooledConnection> {
        if let Some(barrier) = &self.barrier {
            barrier.wait()?;
        }
        self.conn()
    }

    /// A connection that writes commits straight into DuckDB (the loader's,
    /// and the [`IngestStore`] of tests).
    pub fn writer(&self) -> Result<DuckWriter> {
        DuckWriter::new(self.pool.get()?, self.group_columns)
    }

    pub fn group_columns(&self) -> usize {
        self.group_columns
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Ingestion's writer: applies each [`Commit`] in one transaction.
pub struct DuckWriter {
    conn: PooledConnection,
    /// The events table's columns in order.
    layout: Vec<crate::schema::EventColumn>,
}

pub(crate) fn timestamp_value(ts: DateTime<Utc>) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, ts.timestamp_micros())
}

pub(crate) fn timestamp_from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl From<duckdb::Error> for StoreError {
    fn from(e: duckdb::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

impl From<duckdb::arrow::error::ArrowError> for StoreError {
    fn from(e: duckdb::arrow::error::ArrowError) -> Self {
        Self::Corrupt(format!("cannot build a batch of rows: {e}"))
    }
}

impl DuckWriter {
    fn new(conn: PooledConnection, group_columns: usize) -> Result<Self> {
        for table in &schema::ENTITY_TABLES {
            let name = table.name;
            conn.execute_batch(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS staged_{name} AS SELECT * FROM {name} LIMIT 0"
            ))?;
        }
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS removed_persons (project_id BIGINT, id UUID);
             CREATE TEMP TABLE IF NOT EXISTS unsure_uuids (uuid UUID)",
        )?;
        let layout = schema::event_layout(&conn)?;
        debug_assert_eq!(
            layout
                .iter()
                .filter(|c| matches!(c, crate::schema::EventColumn::Group(_)))
                .count(),
            group_columns
        );
        Ok(Self { conn, layout })
    }

    /// Writes rows of an entity table in bulk: `rows` appends them to a
    /// temporary copy, then the stored rows with the same keys are deleted
    /// (one hash join, the table has no key index) and the new ones
    /// inserted.
    fn upsert_staged(
        &self,
        table: &schema::EntityTable,
        rows: impl FnOnce(&mut duckdb::Appender<'_>) -> Result<()>,
    ) -> Result<()> {
        let name = table.name;
        let staged = format!("staged_{name}");
        append_temp(&self.conn, &staged, rows)?;
        self.conn.execute_batch(&format!(
            "{};
             INSERT INTO {name} SELECT * FROM temp.main.{staged};
             DELETE FROM temp.main.{staged};",
            delete_keyed_in(table, &staged)
        ))?;
        Ok(())
    }

    /// Writes `rows` of `table`, each marked whether it is new. New rows (no
    /// stored row has their key) are appended as they are, sparing the join
    /// that reads every stored key; the others replace the stored rows with
    /// the same keys. A kind without rows costs nothing.
    fn upsert<T>(
        &self,
        table: &schema::EntityTable,
        rows: impl Iterator<Item = (bool, T)> + Clone,
        append: impl Fn(&mut duckdb::Appender<'_>, T) -> Result<()>,
    ) -> Result<()> {
        let of_kind = |new: bool| rows.clone().filter(move |(kind, _)| *kind == new);
        if of_kind(true).next().is_some() {
            let mut appender = self.conn.appender(table.name)?;
            for (_, row) in of_kind(true) {
                append(&mut appender, row)?;
            }
            appender.flush()?;
        }
        if of_kind(false).next().is_some() {
            self.upsert_staged(table, |appender| {
                of_kind(false).try_for_each(|(_, row)| append(appender, row))
            })?;
        }
        Ok(())
    }

    /// Writes one commit's events and changes into the open transaction.
    fn write(&mut self, commit: &Commit) -> Result<()> {
        let mut events = commit.events.iter().map(|event| (event, None));
        self.append_events(&mut events, commit.events.len())?;
        self.append_warnings(&commit.warnings)?;
        let mut changes = EntityChanges::default();
        changes.absorb(commit);
        self.write_changes(&changes)
    }
}

impl LoadTarget for DuckWriter {
    fn begin(&mut self, _first: u64) -> Result<()> {
        Ok(self.conn.execute_batch("BEGIN TRANSACTION")?)
    }

    /// Ends the open transaction; `loaded` records the last journal record
    /// it holds, in the same transaction.
    fn commit_through(&mut self, loaded: Option<u64>) -> Result<()> {
        if let Some(seq) = loaded {
            self.conn
                .prepare_cached("UPDATE journal_loaded SET seq = ?")?
                .execute([seq])?;
        }
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    /// The last journal record the store holds.
    fn loaded_seq(&mut self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT max(seq) FROM journal_loaded", [], |row| row.get(0))?)
    }

    /// Writes persons, groups and the rest of `changes` (each in its final state).
    fn write_changes(&mut self, changes: &EntityChanges) -> Result<()> {
        let conn: &Connection = &self.conn;
        if !changes.group_types.is_empty() {
            let mut insert = conn.prepare_cached(
                "INSERT INTO group_types (project_id, group_type_index, group_type, created_at)
                 VALUES (?, ?, ?, ?)",
            )?;
            for (project, group_type) in &changes.group_types {
                insert.execute(params![
                    project.0,
                    group_type.group_type_index,
                    group_type.group_type,
                    timestamp_value(group_type.created_at)
                ])?;
            }
        }
        let persons = changes.persons.iter().filter_map(|(key, person)| {
            Some((changes.new_persons.contains(key), person.as_ref()?))
        });
        self.upsert(schema::PERSONS, persons, |appender, person| {
            appender.append_row(params![
                person.project_id.0,
                person.id.to_string(),
                serde_json::to_string(&person.properties)?,
                person.is_identified,
                timestamp_value(person.created_at),
                person.version
            ])?;
            Ok(())
        })?;
        let mut deleted = changes
            .persons
            .iter()
            .filter(|(_, person)| person.is_none())
            .peekable();
        if deleted.peek().is_some() {
            append_temp(conn, "removed_persons", |appender| {
                for ((project, id), _) in deleted {
                    appender.append_row(params![project.0, id.to_string()])?;
                }
                Ok(())
            })?;
            conn.execute_batch(&format!(
                "{}; DELETE FROM temp.main.removed_persons;",
                delete_keyed_in(schema::PERSONS, "removed_persons")
            ))?;
        }
        // The flattened-override invariant (see `crate::identity`): every
        // override leads straight to a person not merged away, so one
        // lookup gives an event's current person.
        for (project, merged, person) in &changes.person_overrides {
            // Earlier merges into `merged` now lead to `person` too.
            conn.prepare_cached(
                "UPDATE person_overrides SET person_id = ?::UUID WHERE project_id = ? AND person_id = ?::UUID",
            )?
            .execute(params![person.to_string(), project.0, merged.to_string()])?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO person_overrides VALUES (?, ?::UUID, ?::UUID)",
            )?
            .execute(params![project.0, merged.to_string(), person.to_string()])?;
        }
        let distinct_ids = changes
            .distinct_ids
            .iter()
            .map(|(key, person_id)| (changes.new_distinct_ids.contains(key), (key, person_id)));
        self.upsert(
            schema::DISTINCT_IDS,
            distinct_ids,
            |appender, ((project, distinct_id), person_id)| {
                appender.append_row(params![project.0, distinct_id, person_id.to_string()])?;
                Ok(())
            },
        )?;
        if !changes.groups.is_empty() {
            self.upsert_staged(schema::GROUPS, |appender| {
                for group in changes.groups.values() {
                    appender.append_row(params![
                        group.project_id.0,
                        group.group_type_index,
                        group.group_key,
                        serde_json::to_string(&group.properties)?,
                        timestamp_value(group.created_at),
                        group.version
                    ])?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn append_warnings(&mut self, warnings: &[IngestionWarning]) -> Result<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        let mut appender = self.conn.appender("ingestion_warnings")?;
        for warning in warnings {
            appender.append_row(params![
                warning.project_id.0,
                warning.kind.as_str(),
                warning.details.to_string(),
                timestamp_value(warning.timestamp)
            ])?;
        }
        Ok(appender.flush()?)
    }

    /// Appends events through one Arrow batch: far cheaper per event than
    /// binding each value (which also parsed every uuid from text).
    fn append_events<'a>(
        &mut self,
        events: &mut dyn Iterator<Item = (&'a Event, Option<&'a str>)>,
        count: usize,
    ) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let batch = event_batch::build(&self.layout, events, count, Uuids::Binary)?;
        let mut appender = self.conn.appender("events")?;
        appender.append_record_batch(batch)?;
        Ok(appender.flush()?)
    }
}

impl BulkLoader for DuckWriter {
    fn stored_uuids(&mut self, project: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>> {
        stored_uuids(&self.conn, project, uuids)
    }

    fn load_entities(&mut self, visitor: &mut dyn SnapshotVisitor) -> Result<()> {
        load_entities(&self.conn, visitor)
    }

    fn event_uuids(
        &mut self,
        since: Option<DateTime<Utc>>,
        each: &mut dyn FnMut(ProjectId, Uuid),
    ) -> Result<()> {
        event_uuids(&self.conn, since, each)
    }
}

impl IngestStore for DuckWriter {
    fn event_uuids(
        &mut self,
        since: Option<DateTime<Utc>>,
        each: &mut dyn FnMut(ProjectId, Uuid),
    ) -> Result<()> {
        event_uuids(&self.conn, since, each)
    }

    /// One DuckDB transaction per commit.
    fn commit(&mut self, commit: Arc<Commit>) -> Result<()> {
        if commit.is_empty() {
            return Ok(());
        }
        self.begin(0)?;
        let written = self.write(&commit).and_then(|()| self.commit_through(None));
        if written.is_err() {
            self.rollback();
        }
        written
    }

    fn stored_uuids(&mut self, project: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>> {
        BulkLoader::stored_uuids(self, project, uuids)
    }
}

/// Appends `rows` to the temporary table `table`, for a statement to come.
fn append_temp(
    conn: &Connection,
    table: &str,
    rows: impl FnOnce(&mut duckdb::Appender<'_>) -> Result<()>,
) -> Result<()> {
    let mut appender = conn.appender_to_catalog_and_db(table, "temp", "main")?;
    rows(&mut appender)?;
    Ok(appender.flush()?)
}

/// The statement deleting the rows of `table` whose key is in the
/// temporary table `keys` (one hash join: the table has no key index).
fn delete_keyed_in(table: &schema::EntityTable, keys: &str) -> String {
    let name = table.name;
    let matching = table
        .key
        .iter()
        .map(|column| format!("{name}.{column} = k.{column}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("DELETE FROM {name} USING temp.main.{keys} k WHERE {matching}")
}

/// Those of `uuids` that `project` has stored events for. `conn` must have
/// the temporary table `unsure_uuids` (see [`DuckWriter::new`]).
fn stored_uuids(conn: &Connection, project: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>> {
    if uuids.is_empty() {
        return Ok(HashSet::new());
    }
    // Through a table, so that any number of uuids costs one scan.
    append_temp(conn, "unsure_uuids", |appender| {
        for uuid in uuids {
            appender.append_row([uuid.to_string()])?;
        }
        Ok(())
    })?;
    let stored = (|| {
        let mut statement = conn.prepare_cached(
            "SELECT e.uuid::VARCHAR FROM events e SEMI JOIN temp.main.unsure_uuids u ON e.uuid = u.uuid
             WHERE e.project_id = ?",
        )?;
        let mut rows = statement.query([project.0])?;
        let mut stored = HashSet::new();
        while let Some(row) = rows.next()? {
            stored.insert(row.get::<_, String>(0)?.parse()?);
        }
        Ok(stored)
    })();
    conn.execute_batch("DELETE FROM temp.main.unsure_uuids")?;
    stored
}

fn load_entities(conn: &Connection, visitor: &mut dyn SnapshotVisitor) -> Result<()> {
    let mut distinct_ids: std::collections::HashMap<(i64, String), Vec<String>> =
        Default::default();
    let mut statement = conn.prepare(
        "SELECT project_id, person_id::VARCHAR, distinct_id FROM person_distinct_ids ORDER BY rowid",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        distinct_ids
            .entry((row.get(0)?, row.get(1)?))
            .or_default()
            .push(row.get(2)?);
    }

    let mut statement = conn.prepare(
        "SELECT project_id, id::VARCHAR, properties::VARCHAR, is_identified, epoch_us(created_at), version
         FROM persons",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let project: i64 = row.get(0)?;
        let id: String = row.get(1)?;
        let properties: String = row.get(2)?;
        visitor.person(Person {
            project_id: ProjectId(project),
            id: id.parse()?,
            properties: serde_json::from_str(&properties)?,
            is_identified: row.get(3)?,
            created_at: timestamp_from_micros(row.get(4)?),
            version: row.get(5)?,
            distinct_ids: distinct_ids.remove(&(project, id)).unwrap_or_default(),
        });
    }

    for (project, group_type) in entities::group_types(conn, None)? {
        visitor.group_type(project, group_type);
    }

    let mut statement = conn.prepare(
        "SELECT project_id, group_type_index, group_key, properties::VARCHAR, epoch_us(created_at), version
         FROM groups",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let properties: String = row.get(3)?;
        visitor.group(Group {
            project_id: ProjectId(row.get(0)?),
            group_type_index: row.get(1)?,
            group_key: row.get(2)?,
            properties: serde_json::from_str(&properties)?,
            created_at: timestamp_from_micros(row.get(4)?),
            version: row.get(5)?,
        });
    }

    Ok(())
}

fn event_uuids(
    conn: &Connection,
    since: Option<DateTime<Utc>>,
    each: &mut dyn FnMut(ProjectId, Uuid),
) -> Result<()> {
    use arrow_array::{Array, Int64Array, StringArray};
    // Events are appended in insertion order, and sorted runs hold spans of
    // it: the row groups' zone maps on `inserted_at` skip the older ones.
    // Arrow batches, not rows: a start may read millions of them.
    let sql = "SELECT project_id, uuid::VARCHAR FROM events";
    let mut statement;
    let batches = match since {
        Some(since) => {
            statement = conn.prepare(&format!("{sql} WHERE inserted_at >= ?"))?;
            statement.query_arrow([timestamp_value(since)])?
        }
        None => {
            statement = conn.prepare(sql)?;
            statement.query_arrow([])?
        }
    };
    let corrupt = || StoreError::Corrupt("event uuids did not come back as text".into());
    for batch in batches {
        let projects = batch.column(0).as_any().downcast_ref::<Int64Array>();
        let uuids = batch.column(1).as_any().downcast_ref::<StringArray>();
        let (Some(projects), Some(uuids)) = (projects, uuids) else {
            return Err(corrupt());
        };
        for i in 0..batch.num_rows() {
            each(ProjectId(projects.value(i)), uuids.value(i).parse()?);
        }
    }
    Ok(())
}
