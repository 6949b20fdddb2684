use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The engine failed (DuckDB's errors convert in `duck.rs`).
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the ingestion journal {path}: {source}")]
    Journal {
        path: String,
        source: std::io::Error,
    },
    /// The store cannot answer now; the request may be retried.
    #[error("{0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(format!("stored JSON does not parse: {e}"))
    }
}

impl From<uuid::Error> for StoreError {
    fn from(e: uuid::Error) -> Self {
        Self::Corrupt(format!("stored uuid does not parse: {e}"))
    }
}
