//! The HTTP interface of a ClickHouse server: statements go in the body,
//! settings in the query string, and results come back in the format the
//! statement names.

use std::io::Read;
use std::time::Duration;

use crate::{Result, StoreError};

/// Where the server is, and as whom Cairn signs in.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// `http://host:8123`.
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
    /// A cluster (from the servers' `remote_servers`) whose shards share
    /// the events through a `Distributed` table.
    pub cluster: Option<String>,
}

impl ClickHouseConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_string(),
            user: "default".into(),
            password: String::new(),
            database: "default".into(),
            cluster: None,
        }
    }
}

/// Settings every statement runs with, so that the portable SQL insights
/// write means what it means on DuckDB: a LEFT JOIN's missing side is NULL,
/// text is Arrow text (not binary) and arrives uncompressed.
const SETTINGS: &[(&str, &str)] = &[
    ("join_use_nulls", "1"),
    ("output_format_arrow_string_as_string", "1"),
    ("output_format_arrow_compression_method", "none"),
    ("allow_experimental_join_condition", "1"),
    // Mixed types are an error, not a Variant the readers cannot take.
    ("use_variant_as_common_type", "0"),
    // An insert into a Distributed table returns once the shards hold it.
    ("distributed_foreground_insert", "1"),
    // A subquery over the events inside a query over the events (a
    // person's first-ever event) is computed over the whole cluster once
    // and sent to every shard: a person's events may sit on several.
    ("distributed_product_mode", "global"),
];

/// A connection to one ClickHouse server.
#[derive(Clone)]
pub struct ClickHouse {
    config: ClickHouseConfig,
    agent: ureq::Agent,
    /// Where scans wait until ClickHouse holds every acknowledged event.
    pub(crate) barrier: Option<crate::ReadBarrier>,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .finish()
    }
}

impl ClickHouse {
    pub fn new(config: ClickHouseConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            config,
            agent,
            barrier: None,
        }
    }

    /// The same server, whose scans first wait at `barrier`.
    pub fn with_read_barrier(mut self, barrier: crate::ReadBarrier) -> Self {
        self.barrier = Some(barrier);
        self
    }

    /// Waits at the read barrier, if any.
    pub(crate) fn wait_for_loads(&self) -> Result<()> {
        self.barrier
            .as_ref()
            .map_or(Ok(()), crate::ReadBarrier::wait)
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Runs `sql` (with `query_id`, if given) and returns the response body
    /// as a reader; a statement ClickHouse refuses is an error with its text.
    pub(crate) fn send(
        &self,
        sql: &str,
        query_id: Option<&str>,
    ) -> Result<Box<dyn Read + Send + 'static>> {
        let params: &[(&str, &str)] = match query_id {
            Some(id) => &[("query_id", id)],
            None => &[],
        };
        self.post(params, sql.as_bytes())
    }

    /// Posts `body` with `params` (and the session [`SETTINGS`]).
    fn post(&self, params: &[(&str, &str)], body: &[u8]) -> Result<Box<dyn Read + Send + 'static>> {
        let request = self
            .agent
            .post(&self.config.url)
            .header("X-ClickHouse-User", &self.config.user)
            .header("X-ClickHouse-Key", &self.config.password)
            .header("X-ClickHouse-Database", &self.config.database)
            .query_pairs(SETTINGS.iter().chain(params).copied());
        let response = request.send(body).map_err(|e| {
            StoreError::Unavailable(format!("ClickHouse at {}: {e}", self.config.url))
        })?;
        let status = response.status();
        let reader = response.into_body().into_reader();
        if status.is_success() {
            return Ok(Box::new(reader));
        }
        let mut text = String::new();
        let _ = reader.take(64 * 1024).read_to_string(&mut text);
        Err(StoreError::Database(
            format!("ClickHouse refused a statement ({status}): {}", text.trim()).into(),
        ))
    }

    /// Inserts `data`, in `format`, into `table`. `token` names the insert:
    /// ClickHouse stores a block it has seen under the same token once, so
    /// an insert retried after a failure or a crash is not doubled.
    pub(crate) fn insert(&self, table: &str, format: &str, data: &[u8], token: &str) -> Result<()> {
        let query = format!("INSERT INTO {table} FORMAT {format}");
        let params = [
            ("query", query.as_str()),
            ("insert_deduplication_token", token),
        ];
        let mut answer = self.post(&params, data)?;
        std::io::copy(&mut answer, &mut std::io::sink())
            .map_err(|e| StoreError::Unavailable(format!("reading ClickHouse's answer: {e}")))?;
        Ok(())
    }

    /// Runs `sql` and returns its whole answer as text.
    pub fn execute(&self, sql: &str) -> Result<String> {
        let mut text = String::new();
        self.send(sql, None)?
            .read_to_string(&mut text)
            .map_err(|e| StoreError::Unavailable(format!("reading ClickHouse's answer: {e}")))?;
        Ok(text)
    }

    /// Inserts `rows` (JSON objects, one per line) into `table`.
    pub fn insert_json_rows(&self, table: &str, rows: &str) -> Result<()> {
        let sql = format!("INSERT INTO {table} FORMAT JSONEachRow\n{rows}");
        self.execute(&sql).map(|_| ())
    }
}
