//! What the journal's loaders need of an engine: large loads of appended
//! events and upserted entities, each recording the last journal record it
//! holds, so that a restart knows where to resume ([`LoadTarget`]); and,
//! of the engine ingestion reads back from, lookups ([`BulkLoader`]).
//! [`crate::JournaledWriter`] is generic over it.

use std::collections::HashSet;

use cairn_core::{Event, IngestionWarning, ProjectId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::commit::EntityChanges;
use crate::{Result, SnapshotVisitor};

/// An engine's bulk write path, one open load at a time.
pub trait LoadTarget: Send + 'static {
    /// The last journal record the engine holds (0: none).
    fn loaded_seq(&mut self) -> Result<u64>;
    /// Opens a load whose first journal record is `first`.
    fn begin(&mut self, first: u64) -> Result<()>;
    /// Appends events (each with its properties as JSON, if already
    /// serialized) to the open load; `count` is how many there are.
    fn append_events<'a>(
        &mut self,
        events: &mut dyn Iterator<Item = (&'a Event, Option<&'a str>)>,
        count: usize,
    ) -> Result<()>;
    fn append_warnings(&mut self, warnings: &[IngestionWarning]) -> Result<()>;
    /// Writes persons, groups and the rest of `changes` (each in its final
    /// state) into the open load.
    fn write_changes(&mut self, changes: &EntityChanges) -> Result<()>;
    /// Ends the open load; `loaded` records the last journal record it
    /// holds, with it.
    fn commit_through(&mut self, loaded: Option<u64>) -> Result<()>;
    /// Drops the open load, if any.
    fn rollback(&mut self);
}

/// The engine ingestion reads back from: its bulk write path, in
/// transactions, and lookups. The loader owns one, on its own thread; the
/// journaled writer owns another for its lookups.
pub trait BulkLoader: LoadTarget {
    /// Those of `uuids` that `project` has stored events for.
    fn stored_uuids(&mut self, project: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>>;
    /// Replays the stored persons, groups and group types.
    fn load_entities(&mut self, visitor: &mut dyn SnapshotVisitor) -> Result<()>;
    /// Calls `each` for every stored event inserted at `since` or later.
    fn event_uuids(
        &mut self,
        since: Option<DateTime<Utc>>,
        each: &mut dyn FnMut(ProjectId, Uuid),
    ) -> Result<()>;
}
