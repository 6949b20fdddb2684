//! Event scanning: what insights read the events table through. A store
//! hands out [`EventScanner`] sessions; a session runs a statement written
//! in its [`Dialect`] and streams the result as Arrow record batches.

use std::ops::ControlFlow;
use std::sync::Arc;

pub use arrow_array::RecordBatch;

use crate::dialect::Dialect;
use crate::{Result, StoreError};

/// A store whose events can be scanned.
pub trait EventStore: Send + Sync {
    /// A session that sees every event acknowledged so far (waiting, if
    /// need be, until they are readable).
    fn scanner(&self) -> Result<Box<dyn EventScanner>>;
    /// Whether any person of `project` was merged into another (without
    /// merges an event's stored person is its person).
    fn has_person_overrides(&self, project: cairn_core::ProjectId) -> Result<bool>;
    /// Bytes the engine holds in its caches and query memory, by what
    /// holds them.
    fn memory_used(&self) -> Result<Vec<(String, u64)>>;
}

/// One scanning session: statements run one at a time.
pub trait EventScanner: Send {
    /// How SQL for this engine is spelled.
    fn dialect(&self) -> &dyn Dialect;
    /// Runs `sql`, handing each batch of its result to `each` until it
    /// says [`ControlFlow::Break`]. Columns arrive as the engine types
    /// them; readers expect counts, epoch microseconds and integer casts as
    /// `Int64`, hashes and bit masks as `UInt64`, `Dialect::double` as
    /// `Float64`, text as `Utf8` and conditions as `Boolean`, and NULL for
    /// the columns of an unmatched `LEFT JOIN` row (an engine that differs
    /// converts in its dialect or session settings).
    fn scan(
        &self,
        sql: &str,
        each: &mut dyn FnMut(RecordBatch) -> ControlFlow<()>,
    ) -> Result<(), ScanError>;
    /// A handle that stops the statement running now, from another thread.
    fn interrupter(&self) -> Arc<dyn Interrupt>;
}

/// Stops a session's running statement (a query past its time).
pub trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The engine refused a value of the statement when it met it (a
    /// regular expression it cannot compile): the query's fault.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
