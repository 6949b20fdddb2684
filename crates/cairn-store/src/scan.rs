//! Event scanning: what insights read the events table through. A store
//! hands out [`EventScanner`] sessions; a session runs a statement written
//! in its [`Dialect`] and streams the result as Arrow record batches.

use std::ops::ControlFlow;
use std::sync::Arc;

pub use arrow_array::RecordBatch;

use crate::dialect::{Dialect, DuckDialect};
use crate::duck::{DuckStore, PooledConnection};
use crate::{Result, StoreError};

/// A store whose events can be scanned.
pub trait EventStore: Send + Sync {
    /// A session that sees every event acknowledged so far (waiting, if
    /// need be, until they are readable).
    fn scanner(&self) -> Result<Box<dyn EventScanner>>;
    /// Whether any person of `project` was merged into another (without
    /// merges an event's stored person is its person).
    fn has_person_overrides(&self, project: cairn_core::ProjectId) -> Result<bool>;
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

impl EventStore for DuckStore {
    fn scanner(&self) -> Result<Box<dyn EventScanner>> {
        Ok(Box::new(DuckScanner(self.reader()?)))
    }

    fn has_person_overrides(&self, project: cairn_core::ProjectId) -> Result<bool> {
        Ok(self.conn()?.query_row(
            "SELECT count(*) > 0 FROM person_overrides WHERE project_id = ?",
            [project.0],
            |row| row.get(0),
        )?)
    }
}

/// A pooled DuckDB connection scanning.
struct DuckScanner(PooledConnection);

impl EventScanner for DuckScanner {
    fn dialect(&self) -> &dyn Dialect {
        &DuckDialect
    }

    fn scan(
        &self,
        sql: &str,
        each: &mut dyn FnMut(RecordBatch) -> ControlFlow<()>,
    ) -> Result<(), ScanError> {
        let mut statement = self.0.prepare(sql).map_err(scan_error)?;
        for batch in statement.query_arrow([]).map_err(scan_error)? {
            if each(batch).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        Arc::new(DuckInterrupt(self.0.interrupt_handle()))
    }
}

struct DuckInterrupt(Arc<duckdb::InterruptHandle>);

impl Interrupt for DuckInterrupt {
    fn interrupt(&self) {
        self.0.interrupt();
    }
}

/// DuckDB rejects some values only when it meets them (a regex RE2 cannot
/// compile); those are the statement's fault, everything else the store's.
fn scan_error(error: duckdb::Error) -> ScanError {
    let text = error.to_string();
    if text.starts_with("Invalid Input Error") {
        ScanError::Rejected(text)
    } else {
        ScanError::Store(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> (tempfile::TempDir, Box<dyn EventScanner>) {
        let dir = tempfile::tempdir().unwrap();
        let scanner = DuckStore::open(dir.path(), 1).unwrap().scanner().unwrap();
        (dir, scanner)
    }

    #[test]
    fn batches_stream_until_the_reader_stops() {
        let (_dir, scanner) = scanner();
        let sql = "SELECT range FROM range(100000)";
        let (mut batches, mut rows) = (0, 0);
        scanner
            .scan(sql, &mut |batch| {
                batches += 1;
                rows += batch.num_rows();
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(rows, 100_000);
        assert!(batches > 1, "{batches} batches");
        let mut seen = 0;
        scanner
            .scan(sql, &mut |_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_value_the_engine_refuses_is_the_statements_fault() {
        let (_dir, scanner) = scanner();
        let mut ignore = |_| ControlFlow::Continue(());
        // RE2 allows at most 1000 repetitions.
        let refused = scanner.scan("SELECT regexp_matches('a', 'a{1001}')", &mut ignore);
        assert!(
            matches!(refused, Err(ScanError::Rejected(_))),
            "{refused:?}"
        );
        let broken = scanner.scan("SELEC 1", &mut ignore);
        assert!(matches!(broken, Err(ScanError::Store(_))), "{broken:?}");
    }
}
