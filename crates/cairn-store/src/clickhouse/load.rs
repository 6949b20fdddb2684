//! The journal's loads into ClickHouse ([`ClickHouseLoader`]). ClickHouse
//! has no transactions: each insert lands on its own. A load is made safe
//! to redo instead: the journal follower fixes its range of records before
//! the first insert (see [`crate::follower`]), every insert carries a token
//! derived from that range, so ClickHouse stores a redone insert once, and
//! persons, groups and overrides are versioned rows whose newest version
//! wins. `cairn_loads` gets the range's last record at the end.

use arrow_ipc::writer::StreamWriter;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use cairn_core::{Event, IngestionWarning, ProjectId};

use super::{schema, ClickHouse};
use crate::bulk::LoadTarget;
use crate::commit::EntityChanges;
use crate::event_batch::{self, Uuids};
use crate::schema::EventColumn;
use crate::{Result, StoreError};

/// Loads journal records into a ClickHouse server, or a cluster's nodes:
/// events go in through the first node (on a cluster, its `Distributed`
/// table shards them), persons, groups and overrides into every node.
pub struct ClickHouseLoader {
    nodes: Vec<ClickHouse>,
    layout: Vec<EventColumn>,
    /// The first journal record of the open load: its inserts' tokens and
    /// its rows' version.
    first: u64,
    /// Event inserts made in the open load.
    inserts: usize,
    /// Whether every node's layout is known to be in place.
    migrated: bool,
}

/// How ClickHouse reads a `DateTime64(6, 'UTC')` from JSON.
fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

impl ClickHouseLoader {
    /// `nodes`: the server, or every node of the cluster (the first takes
    /// the events).
    pub fn new(nodes: Vec<ClickHouse>) -> Result<Self> {
        if nodes.is_empty() {
            return Err(StoreError::Unavailable("no ClickHouse server given".into()));
        }
        Ok(Self {
            nodes,
            layout: schema::event_layout(),
            first: 0,
            inserts: 0,
            migrated: false,
        })
    }

    fn token(&self, part: &str) -> String {
        format!("cairn-load-{}-{part}", self.first)
    }

    /// Inserts JSON rows into `table` on every node.
    fn insert_everywhere(&self, table: &str, rows: &[serde_json::Value]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut body, row)?;
            body.push(b'\n');
        }
        let token = self.token(table);
        for node in &self.nodes {
            node.insert(table, "JSONEachRow", &body, &token)?;
        }
        Ok(())
    }

    /// The overrides `changes` leaves, flattened as DuckDB keeps them: a
    /// person merged into one that is merged later leads straight to the
    /// last. Earlier overrides into a person merged now are read back.
    fn flattened_overrides(&self, changes: &EntityChanges) -> Result<Vec<(ProjectId, Uuid, Uuid)>> {
        let merged: Vec<String> = changes
            .person_overrides
            .iter()
            .map(|(project, merged, _)| format!("({}, '{merged}')", project.0))
            .collect();
        let mut leads: indexmap::IndexMap<(ProjectId, Uuid), Uuid> = indexmap::IndexMap::new();
        let earlier = self.nodes[0].execute(&format!(
            "SELECT project_id, old_person_id, person_id FROM person_overrides
             WHERE (project_id, toString(person_id)) IN ({}) FORMAT TSV",
            merged.join(", ")
        ))?;
        for line in earlier.lines() {
            let mut fields = line.split('\t');
            let parsed = (|| {
                let project = ProjectId(fields.next()?.parse().ok()?);
                let old = fields.next()?.parse().ok()?;
                let person = fields.next()?.parse().ok()?;
                Some((project, old, person))
            })();
            let (project, old, person) = parsed.ok_or_else(|| {
                StoreError::Corrupt(format!("unexpected person_overrides row {line:?}"))
            })?;
            leads.insert((project, old), person);
        }
        for (project, merged, person) in &changes.person_overrides {
            for (key, lead) in leads.iter_mut() {
                if key.0 == *project && lead == merged {
                    *lead = *person;
                }
            }
            leads.insert((*project, *merged), *person);
        }
        Ok(leads
            .into_iter()
            .map(|((project, old), person)| (project, old, person))
            .collect())
    }
}

impl LoadTarget for ClickHouseLoader {
    /// Also brings every node's layout up to date, first: the loader asks
    /// this (again, until it works) before it loads anything.
    fn loaded_seq(&mut self) -> Result<u64> {
        if !self.migrated {
            for node in &self.nodes {
                schema::migrate(node)?;
            }
            self.migrated = true;
        }
        let answer = self.nodes[0].execute("SELECT max(seq) FROM cairn_loads")?;
        answer
            .trim()
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("unexpected cairn_loads answer {answer:?}")))
    }

    fn begin(&mut self, first: u64) -> Result<()> {
        self.first = first;
        self.inserts = 0;
        Ok(())
    }

    fn append_events<'a>(
        &mut self,
        events: &mut dyn Iterator<Item = (&'a Event, Option<&'a str>)>,
        count: usize,
    ) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let batch = event_batch::build(&self.layout, events, count, Uuids::Text)?;
        let mut body = Vec::new();
        let mut writer = StreamWriter::try_new(&mut body, &batch.schema())
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        writer
            .write(&batch)
            .and_then(|()| writer.finish())
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        drop(writer);
        let token = self.token(&format!("events-{}", self.inserts));
        self.nodes[0].insert("events", "ArrowStream", &body, &token)?;
        self.inserts += 1;
        Ok(())
    }

    /// Warnings stay in Cairn's own store, which lists them.
    fn append_warnings(&mut self, _: &[IngestionWarning]) -> Result<()> {
        Ok(())
    }

    fn write_changes(&mut self, changes: &EntityChanges) -> Result<()> {
        let version = self.first;
        let persons: Vec<_> = changes
            .persons
            .iter()
            .map(|((project, id), person)| match person {
                Some(person) => json!({
                    "project_id": project.0,
                    "id": id,
                    "properties": serde_json::to_string(&person.properties).unwrap_or_default(),
                    "is_identified": person.is_identified,
                    "created_at": stamp(person.created_at),
                    "version": version,
                }),
                None => json!({
                    "project_id": project.0,
                    "id": id,
                    "properties": "{}",
                    "is_identified": false,
                    "created_at": stamp(DateTime::UNIX_EPOCH),
                    "version": version,
                    "is_deleted": 1,
                }),
            })
            .collect();
        self.insert_everywhere("persons_versions", &persons)?;
        let groups: Vec<_> = changes
            .groups
            .values()
            .map(|group| {
                json!({
                    "project_id": group.project_id.0,
                    "group_type_index": group.group_type_index,
                    "group_key": group.group_key,
                    "properties": serde_json::to_string(&group.properties).unwrap_or_default(),
                    "created_at": stamp(group.created_at),
                    "version": version,
                })
            })
            .collect();
        self.insert_everywhere("groups_versions", &groups)?;
        if !changes.person_overrides.is_empty() {
            let overrides: Vec<_> = self
                .flattened_overrides(changes)?
                .into_iter()
                .map(|(project, old, person)| {
                    json!({
                        "project_id": project.0,
                        "old_person_id": old,
                        "person_id": person,
                        "version": version,
                    })
                })
                .collect();
            self.insert_everywhere("person_overrides_versions", &overrides)?;
        }
        Ok(())
    }

    fn commit_through(&mut self, loaded: Option<u64>) -> Result<()> {
        if let Some(seq) = loaded {
            let token = self.token("loaded");
            self.nodes[0].insert(
                "cairn_loads (seq)",
                "TSV",
                format!("{seq}\n").as_bytes(),
                &token,
            )?;
        }
        Ok(())
    }

    /// What was inserted stays: redoing the load stores it once.
    fn rollback(&mut self) {}
}
