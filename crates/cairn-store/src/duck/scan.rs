//! DuckDB as an [`EventStore`]: each scanner session is one pooled
//! connection, past the read barrier.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::dialect::DuckDialect;
use super::{DuckStore, PooledConnection};
use crate::dialect::Dialect;
use crate::scan::{EventScanner, EventStore, Interrupt, RecordBatch, ScanError};
use crate::Result;

impl EventStore for DuckStore {
    fn scanner(&self) -> Result<Box<dyn EventScanner>> {
        Ok(Box::new(DuckScanner(self.reader()?)))
    }

    fn memory_used(&self) -> Result<Vec<(String, u64)>> {
        DuckStore::memory_used(self)
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
