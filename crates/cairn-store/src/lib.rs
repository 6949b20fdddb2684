//! The storage boundary. Ingestion hands a [`Commit`] to an [`IngestStore`]
//! and is told "ok" only once it is durable (in the [`journal`], loaded
//! into the engine behind it by the [`loader`] through a [`BulkLoader`]);
//! the server administers through the [`Catalog`] and browses what was
//! ingested through the [`EntityReader`]. DuckDB ([`DuckStore`]) is the
//! embedded engine behind all of them.

pub mod barrier;
pub mod bulk;
pub mod catalog;
pub mod clickhouse;
pub mod commit;
pub mod dialect;
pub mod duck;
pub mod entities;
pub mod entity_state;
pub mod error;
mod event_batch;
pub mod follower;
pub mod identity;
pub mod journal;
pub mod keys;
pub mod loader;
pub mod lookup;
pub mod scan;
pub mod schema;

pub use barrier::ReadBarrier;
pub use bulk::{BulkLoader, LoadTarget};
pub use catalog::Catalog;
pub use commit::{Commit, EntityChanges};
pub use duck::{Clustering, DuckStore, DuckWriter, Pass};
pub use entities::EntityReader;
pub use entity_state::{EntityState, EntityStats};
pub use error::StoreError;
pub use follower::FollowerSpec;
pub use loader::JournaledWriter;
pub use lookup::PersonLookup;
pub use scan::{EventScanner, EventStore, RecordBatch, ScanError};

use cairn_core::{Group, GroupType, Person, ProjectId};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The stored persons, groups and group types, as an engine replays them
/// (to build the [`EntityState`] of a data directory made before it).
pub trait SnapshotVisitor {
    fn person(&mut self, person: Person);
    fn group_type(&mut self, project: ProjectId, group_type: GroupType);
    fn group(&mut self, group: Group);
}

/// The write side of a store: one durable transaction per [`Commit`].
pub trait IngestStore: Send + 'static {
    /// Calls `each` with the project and uuid of every stored event
    /// inserted at `since` or later (every event: `None`).
    fn event_uuids(
        &mut self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        each: &mut dyn FnMut(ProjectId, uuid::Uuid),
    ) -> Result<()>;
    /// Writes everything in `commit` atomically; returns once it is durable.
    fn commit(&mut self, commit: std::sync::Arc<Commit>) -> Result<()>;
    /// Those of `uuids` that `project` has stored events for.
    fn stored_uuids(
        &mut self,
        project: ProjectId,
        uuids: &[uuid::Uuid],
    ) -> Result<std::collections::HashSet<uuid::Uuid>>;
}
