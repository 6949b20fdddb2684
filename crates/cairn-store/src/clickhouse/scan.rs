//! Insights on ClickHouse: each statement streams back as Arrow record
//! batches (`FORMAT ArrowStream`), read as they arrive.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow_ipc::reader::StreamReader;

use super::{schema, ClickHouse, ClickHouseDialect};
use crate::dialect::Dialect;
use crate::scan::{EventScanner, EventStore, Interrupt, RecordBatch, ScanError};
use crate::{Result, StoreError};

impl ClickHouse {
    /// Opens the store, creating the layout if need be.
    pub fn open(config: super::ClickHouseConfig) -> Result<Self> {
        let clickhouse = Self::new(config);
        schema::migrate(&clickhouse)?;
        Ok(clickhouse)
    }
}

impl EventStore for ClickHouse {
    fn scanner(&self) -> Result<Box<dyn EventScanner>> {
        self.wait_for_loads()?;
        Ok(Box::new(ClickHouseScanner {
            clickhouse: self.clone(),
            query_id: Arc::new(std::sync::Mutex::new(None)),
        }))
    }

    fn has_person_overrides(&self, project: cairn_core::ProjectId) -> Result<bool> {
        self.wait_for_loads()?;
        let found = self.execute(&format!(
            "SELECT count() > 0 FROM person_overrides WHERE project_id = {}",
            project.0
        ))?;
        Ok(found.trim() == "1" || found.trim() == "true")
    }

    fn memory_used(&self) -> Result<Vec<(String, u64)>> {
        // The server's memory is its own (and its operator's) to watch.
        Ok(Vec::new())
    }
}

/// One scanning session: each statement gets a fresh query id, which the
/// interrupter kills.
struct ClickHouseScanner {
    clickhouse: ClickHouse,
    query_id: Arc<std::sync::Mutex<Option<String>>>,
}

impl EventScanner for ClickHouseScanner {
    fn dialect(&self) -> &dyn Dialect {
        &ClickHouseDialect
    }

    fn scan(
        &self,
        sql: &str,
        each: &mut dyn FnMut(RecordBatch) -> ControlFlow<()>,
    ) -> Result<(), ScanError> {
        let id = uuid::Uuid::new_v4().to_string();
        *self.query_id.lock().expect("query id lock") = Some(id.clone());
        let body = self
            .clickhouse
            .send(&format!("{sql}\nFORMAT ArrowStream"), Some(&id))
            .map_err(refused)?;
        let reader = StreamReader::try_new(std::io::BufReader::new(body), None)
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::Database(Box::new(e)))?;
            if each(batch).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        Arc::new(ClickHouseInterrupt {
            clickhouse: self.clickhouse.clone(),
            query_id: self.query_id.clone(),
        })
    }
}

/// ClickHouse's own refusals of a value (a regular expression it cannot
/// compile) are the query's fault; anything else is the store's.
fn refused(error: StoreError) -> ScanError {
    match &error {
        StoreError::Database(e) if e.to_string().contains("CANNOT_COMPILE_REGEXP") => {
            ScanError::Rejected(e.to_string())
        }
        _ => ScanError::Store(error),
    }
}

struct ClickHouseInterrupt {
    clickhouse: ClickHouse,
    query_id: Arc<std::sync::Mutex<Option<String>>>,
}

impl Interrupt for ClickHouseInterrupt {
    fn interrupt(&self) {
        let id = self.query_id.lock().expect("query id lock").clone();
        if let Some(id) = id {
            let sql = format!("KILL QUERY WHERE query_id = '{id}' ASYNC");
            if let Err(e) = self.clickhouse.execute(&sql) {
                tracing::warn!(error = %e, "could not stop a ClickHouse query");
            }
        }
    }
}
