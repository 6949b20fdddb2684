//! The storage the server runs on, chosen in one place from configuration:
//! the [`Catalog`] and the [`EntityReader`] as trait objects, and
//! ingestion's writer. The embedded DuckDB store in the data directory
//! holds everything; with ClickHouse configured, the journal is loaded into
//! it too and insights run there.

use std::sync::Arc;

use cairn_core::time::Clock;
use cairn_ingest::Pipeline;
use cairn_store::clickhouse::{ClickHouse, ClickHouseLoader};
use cairn_store::{
    Catalog, Clustering, DuckStore, DuckWriter, EntityReader, EntityState, EventStore,
    FollowerSpec, JournaledWriter,
};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};

/// The follower name of the ClickHouse loader.
const CLICKHOUSE: &str = "clickhouse";

#[derive(Clone)]
pub struct Storage {
    pub catalog: Arc<dyn Catalog>,
    pub entities: Arc<dyn EntityReader>,
    /// Where insights scan events.
    pub events: Arc<dyn EventStore>,
}

/// What `cairn serve` and `cairn demo` run on.
pub struct Ingesting {
    pub storage: Storage,
    /// Ingestion's writer, for the pipeline.
    pub writer: JournaledWriter<DuckWriter>,
    /// Persons and groups as ingestion leaves them, which the writer
    /// applies each commit to and `/flags` reads.
    pub entities: Arc<EntityState>,
    /// The embedded store, whose events the background pass sorts.
    embedded: DuckStore,
    data_dir: std::path::PathBuf,
    group_type_limit: usize,
}

impl Storage {
    /// The store of `config`, without ingestion (the CLI's account commands).
    pub fn open(config: &Config) -> cairn_store::Result<Self> {
        Ok(Self::over(config.open_store()?))
    }

    /// The store of `config` with ingestion's writer in front of it; reads
    /// of what ingestion writes wait at the writer's read barrier.
    pub fn open_ingesting(config: &Config) -> cairn_store::Result<Ingesting> {
        let store = config.open_store()?;
        let entities = Arc::new(EntityState::open(
            &config.data_dir,
            config.entity_cache_bytes,
        )?);
        let followers = match &config.clickhouse {
            Some(clickhouse) => vec![FollowerSpec {
                engine: CLICKHOUSE,
                target: Box::new(ClickHouseLoader::new(
                    clickhouse
                        .nodes
                        .iter()
                        .cloned()
                        .map(ClickHouse::new)
                        .collect(),
                )?),
                backlog_limit: clickhouse.backlog_bytes,
            }],
            None => vec![],
        };
        let writer = JournaledWriter::open(
            store.writer()?,
            store.writer()?,
            &config.data_dir,
            entities.clone(),
            followers,
        )?;
        let embedded = store.clone();
        let mut storage = Self::over(store.with_read_barrier(writer.barrier()));
        if let Some(clickhouse) = &config.clickhouse {
            let barrier = writer
                .follower_barrier(CLICKHOUSE)
                .expect("the ClickHouse loader was started");
            let first = ClickHouse::new(clickhouse.nodes[0].clone());
            storage.events = Arc::new(first.with_read_barrier(barrier));
        }
        Ok(Ingesting {
            storage,
            writer,
            entities,
            embedded,
            data_dir: config.data_dir.clone(),
            group_type_limit: config.group_type_limit,
        })
    }

    /// The embedded store behind every trait.
    pub fn over(store: DuckStore) -> Self {
        Self {
            catalog: Arc::new(store.clone()),
            entities: Arc::new(store.clone()),
            events: Arc::new(store),
        }
    }
}

impl Ingesting {
    /// Starts sorting the embedded store's events in the background once
    /// `sort_after_events` have arrived unsorted (never for 0); it stops
    /// when the handle is dropped.
    pub fn start_clustering(
        &self,
        sort_after_events: u64,
    ) -> cairn_store::Result<Option<Clustering>> {
        if sort_after_events == 0 {
            return Ok(None);
        }
        let threshold = i64::try_from(sort_after_events).unwrap_or(i64::MAX);
        self.embedded.start_clustering(threshold).map(Some)
    }

    /// Starts ingestion's writer thread, which reads "now" from `clock`.
    pub fn start_pipeline(
        self,
        clock: Arc<dyn Clock>,
    ) -> cairn_store::Result<(Storage, Arc<EntityState>, Pipeline)> {
        let pipeline = Pipeline::start(
            self.writer,
            self.entities.clone(),
            &self.data_dir,
            self.group_type_limit,
            clock,
        )?;
        Ok((self.storage, self.entities, pipeline))
    }
}

/// Runs blocking store work off the async workers.
pub async fn with_storage<T, F>(storage: &Storage, work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Storage) -> cairn_store::Result<T> + Send + 'static,
{
    let storage = storage.clone();
    tokio::task::spawn_blocking(move || work(&storage))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(ApiError::from)
}
