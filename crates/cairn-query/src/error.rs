//! What can go wrong with a query: the caller's mistake (a field to fix) or
//! the store's failure.

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query names something Cairn cannot answer; `field` is its path in
    /// the query JSON (`series[1].math`).
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// A bug of ours, never the query's fault.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the store failed to answer: {0}")]
    Store(#[from] cairn_store::StoreError),
    /// The query ran past its time limit and was stopped.
    #[error("the query ran longer than the query timeout of {} s and was stopped; narrow its date range, breakdown or filters, or raise --query-timeout (CAIRN_QUERY_TIMEOUT)", .limit.as_secs_f64())]
    TimedOut { limit: std::time::Duration },
    /// Whoever asked stopped waiting (the client disconnected).
    #[error("the query was cancelled: its client went away")]
    Cancelled,
}

impl QueryError {
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// A field of a query node that Cairn does not read, at `field`: the
    /// query is refused, never answered as if the field were absent.
    pub fn unsupported_field(field: impl Into<String>, name: &str) -> Self {
        Self::invalid(
            field,
            format!("`{name}` is not supported by Cairn, so the query is refused rather than answered without it"),
        )
    }
}

impl From<cairn_store::ScanError> for QueryError {
    fn from(error: cairn_store::ScanError) -> Self {
        match error {
            // The engine met a value of the query it cannot take.
            cairn_store::ScanError::Rejected(text) => Self::invalid("query", text),
            cairn_store::ScanError::Store(e) => Self::Store(e),
        }
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
