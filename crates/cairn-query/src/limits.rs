//! What one query may ask for, checked before any of it runs: each limit
//! is refused with an error that names it, instead of a query that eats
//! the server's memory or time.

use serde_json::Value;

use crate::error::{QueryError, Result};

/// Series of one trend or stickiness query (each is a scan of its own).
pub const MAX_SERIES: usize = 50;
/// Values a trend computes: buckets × breakdown values × series (and
/// formulas, and both periods of a comparison).
pub const MAX_TREND_CELLS: u128 = 500_000;
/// Counts a retention table holds: cohorts × intervals × breakdown values.
pub const MAX_RETENTION_CELLS: u128 = 250_000;
/// Steps of a funnel (each event's steps are a bit mask).
pub const MAX_FUNNEL_STEPS: usize = 20;
/// Exclusions of a funnel (each event's exclusions are a bit mask).
pub const MAX_FUNNEL_EXCLUSIONS: usize = 20;

/// Refuses more than `limit` items at `field`.
pub fn check_count(field: &str, what: &str, count: usize, limit: usize) -> Result<()> {
    if count > limit {
        return Err(QueryError::invalid(
            field,
            format!("{count} {what} is more than the limit of {limit}"),
        ));
    }
    Ok(())
}

/// Refuses a query whose result would need more than `limit` cells;
/// `factors` name what multiplies up to it (`("buckets", 10080)`).
pub fn check_cells(field: &str, factors: &[(&str, usize)], limit: u128) -> Result<()> {
    let cells = factors
        .iter()
        .fold(1u128, |cells, (_, n)| cells.saturating_mul(*n as u128));
    if cells <= limit {
        return Ok(());
    }
    // Factors of one change nothing; naming them would only distract.
    let product: Vec<String> = factors
        .iter()
        .filter(|(_, n)| *n != 1)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    Err(QueryError::invalid(
        field,
        format!(
            "this query would compute {} = {cells} cells, more than the limit of {limit} cells per query; choose a longer interval, a shorter date range, a lower breakdown limit or fewer series",
            product.join(" × ")
        ),
    ))
}

/// Refuses a NUL character anywhere in the query: no event name, property
/// key or value holds one, and SQL text cannot carry it.
pub fn reject_nul(query: &Value) -> Result<()> {
    match nul_at(query) {
        None => Ok(()),
        Some(path) => Err(QueryError::invalid(
            format!("query{path}"),
            "contains a NUL character (\\u0000), which no event name, property key or value may hold; remove it",
        )),
    }
}

/// The path (`.series[0].event`) of the first string holding a NUL.
fn nul_at(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item).map(|path| format!("[{i}]{path}"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(format!(".{}", key.escape_default()));
            }
            nul_at(item).map(|path| format!(".{key}{path}"))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_is_named_by_its_path() {
        let query = json!({"series": [{"event": "a"}, {"event": "b\u{0}"}]});
        let err = reject_nul(&query).unwrap_err().to_string();
        assert!(
            err.starts_with("query.series[1].event: contains a NUL"),
            "{err}"
        );
        assert!(reject_nul(&json!({"k\u{0}": 1})).is_err());
        assert!(reject_nul(&json!({"series": [{"event": "fine"}]})).is_ok());
    }

    #[test]
    fn cells_name_their_factors_and_the_limit() {
        let err = check_cells(
            "query",
            &[("buckets", 10_000), ("breakdown values", 100_001)],
            MAX_TREND_CELLS,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("10000 buckets × 100001 breakdown values"),
            "{err}"
        );
        assert!(err.contains("limit of 500000 cells"), "{err}");
        assert!(check_cells("query", &[("buckets", 8), ("series", 2)], MAX_TREND_CELLS).is_ok());
        assert!(check_cells("q", &[("a", usize::MAX); 3], 1).is_err());
    }
}
