//! Insight queries in PostHog's query JSON, each counted by persons or by any
//! group type, answered through a store's [`EventScanner`]. SQL, spelled by
//! the scanner's dialect, does the scanning and grouping; per-actor state
//! machines (funnels, retention, lifecycle, paths) run in Rust over the
//! compact Arrow batches it returns. Each insight plans its statements,
//! scans, then computes.

pub mod accepted;
pub mod actors;
pub mod breakdown;
pub mod budget;
pub mod context;
pub mod dates;
pub mod error;
pub mod formula;
pub mod funnels;
pub mod lifecycle;
pub mod limits;
pub mod nodes;
pub mod paths;
pub mod retention;
pub mod sql;
pub mod stickiness;
pub mod trends;

use serde_json::Value;

use cairn_store::EventScanner;

pub use budget::{Budget, CancelOnDrop};
pub use context::{ProjectContext, WeekStart};
pub use error::{QueryError, Result};
use nodes::InsightQuery;

/// Answers `{"kind": …}` (or an `InsightVizNode` wrapping one) from the
/// events `scanner` reads, within the time `ctx.budget` allows.
pub fn run(scanner: &dyn EventScanner, ctx: &ProjectContext, query: Value) -> Result<Value> {
    limits::reject_nul(&query)?;
    let query = parse_insight(query)?;
    ctx.budget.watch(scanner, || match &query {
        InsightQuery::TrendsQuery(q) => trends::run(scanner, ctx, q),
        InsightQuery::FunnelsQuery(q) => funnels::run(scanner, ctx, q),
        InsightQuery::RetentionQuery(q) => retention::run(scanner, ctx, q),
        InsightQuery::LifecycleQuery(q) => lifecycle::run(scanner, ctx, q),
        InsightQuery::StickinessQuery(q) => stickiness::run(scanner, ctx, q),
        InsightQuery::PathsQuery(q) => paths::run(scanner, ctx, q),
    })
}

/// Reads an insight query node (or an `InsightVizNode` wrapping one).
pub fn parse_insight(query: Value) -> Result<InsightQuery> {
    let mut query = match query {
        Value::Object(mut node)
            if node.get("kind").and_then(Value::as_str) == Some("InsightVizNode") =>
        {
            node.remove("source").unwrap_or(Value::Null)
        }
        other => other,
    };
    let kind = query
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    accepted::strip(&mut query);
    Ok(match kind.as_str() {
        "TrendsQuery" => InsightQuery::TrendsQuery(parse(query)?),
        "FunnelsQuery" => InsightQuery::FunnelsQuery(parse(query)?),
        "RetentionQuery" => InsightQuery::RetentionQuery(parse(query)?),
        "LifecycleQuery" => InsightQuery::LifecycleQuery(parse(query)?),
        "StickinessQuery" => InsightQuery::StickinessQuery(parse(query)?),
        "PathsQuery" => InsightQuery::PathsQuery(parse(query)?),
        other => {
            return Err(QueryError::invalid(
                "query.kind",
                format!("`{other}` is not one of TrendsQuery, FunnelsQuery, RetentionQuery, LifecycleQuery, StickinessQuery, PathsQuery"),
            ))
        }
    })
}

/// Reads a query node, naming the field of the first problem.
fn parse<T: serde::de::DeserializeOwned>(query: Value) -> Result<T> {
    serde_path_to_error::deserialize(query).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "query".to_string()
        } else {
            format!("query.{path}")
        };
        let message = e.into_inner().to_string();
        let Some((name, _)) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        else {
            return QueryError::invalid(field, message);
        };
        // The path names the unknown field, except inside a node parsed by
        // hand (a funnel exclusion); say why it is refused.
        let suffix = format!(".{name}");
        let field = if field.ends_with(&suffix) {
            field
        } else {
            field + &suffix
        };
        QueryError::unsupported_field(field, name)
    })
}

/// ClickHouse's interpolated quantile of sorted values (§0.5).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = q * (sorted.len() - 1) as f64;
    let low = h.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    Some(sorted[low] + (h - low as f64) * (sorted[high] - sorted[low]))
}

/// A JSON number: integral values as integers, as PostHog returns counts.
pub(crate) fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}
