//! What every engine's tables share, because `cairn-query`'s SQL names it:
//! the events table's group columns and its materialised properties. The
//! rest of the layout (tables `events`, `persons`, `groups`,
//! `person_overrides` and their columns) is spelled out by the DuckDB
//! engine's migrations (`duck/schema.rs`), which a new engine follows.

/// Event properties kept in columns of their own as well (PostHog's
/// materialised columns): paths, sessions and URL breakdowns read them for
/// every event, and a column is far cheaper than parsing the JSON.
pub const MATERIALIZED: &[(&str, &str)] = &[
    ("$current_url", "mat_current_url"),
    ("$screen_name", "mat_screen_name"),
    ("$session_id", "mat_session_id"),
];

/// The events column holding property `key`, if it is materialised.
pub fn materialized_column(key: &str) -> Option<&'static str> {
    MATERIALIZED
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, c)| *c)
}

/// The name of the events column holding the key of group type `index`.
pub fn group_column(index: usize) -> String {
    format!("group_{index}")
}

/// One column of the events table, in table order (DuckDB's appender is
/// positional; ClickHouse's Arrow input matches by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventColumn {
    /// An index into [`FIXED_COLUMNS`].
    Fixed(usize),
    Group(usize),
    /// A materialised property, by key.
    Materialized(&'static str),
}

/// The columns every events table starts with.
pub(crate) const FIXED_COLUMNS: &[&str] = &[
    "project_id",
    "uuid",
    "event",
    "distinct_id",
    "person_id",
    "timestamp",
    "inserted_at",
    "properties",
];

impl EventColumn {
    pub fn name(&self) -> String {
        match self {
            Self::Fixed(i) => FIXED_COLUMNS[*i].to_string(),
            Self::Group(i) => group_column(*i),
            Self::Materialized(key) => materialized_column(key)
                .expect("a materialised key")
                .to_string(),
        }
    }
}
