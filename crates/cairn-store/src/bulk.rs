//! What the journal's loader needs of an engine ([`BulkLoader`]): large
//! transactions of appended events and upserted entities, each recording
//! the last journal record it holds, so that a restart knows where to
//! resume. [`crate::JournaledWriter`] is generic over it.

use std::collections::HashSet;

use cairn_core::{Event, IngestionWarning, ProjectId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::commit::EntityChanges;
use crate::{Result, SnapshotVisitor};

/// An engine's bulk write path, one open transaction at a time. The loader
/// owns one, on its own thread; the journaled writer owns another for its
/// lookups.
pub trait BulkLoader: Send + 'static {
    /// The last journal record the engine holds (0: none).
    fn loaded_seq(&mut self) -> Result<u64>;
    /// Opens a transaction.
    fn begin(&mut self) -> Result<()>;
    /// Appends events (each with its properties as JSON, if already
    /// serialized) to the open transaction; `count` is how many there are.
    fn append_events<'a>(
        &mut self,
        events: &mut dyn Iterator<Item = (&'a Event, Option<&'a str>)>,
        count: usize,
    ) -> Result<()>;
    fn append_warnings(&mut self, warnings: &[IngestionWarning]) -> Result<()>;
    /// Writes persons, groups and the rest of `changes` (each in its final
    /// state) into the open transaction.
    fn write_changes(&mut self, changes: &EntityChanges) -> Result<()>;
    /// Commits the open transaction; `loaded` records the last journal
    /// record it holds, in the same transaction.
    fn commit_through(&mut self, loaded: Option<u64>) -> Result<()>;
    /// Drops the open transaction, if any.
    fn rollback(&mut self);
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
