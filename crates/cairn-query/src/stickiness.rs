//! Stickiness (spec/insights.md §5): how many actors were active in exactly
//! (or at least) k of the range's intervals; by persons or a group type.

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use arrow_array::{Int64Array, StringArray};
use cairn_store::dialect::Dialect;
use cairn_store::EventScanner;

use crate::actors::{ActorFilter, ActorRow, ActorSet, Cell, Facts};
use crate::context::ProjectContext;
use crate::dates::{self, Range};
use crate::error::{QueryError, Result};
use crate::limits;
use crate::nodes::{Interval, Math, StickinessComputation, StickinessOperator, StickinessQuery};
use crate::sql::{column, earliest_event, for_each_batch, Actor, Scan};

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &StickinessQuery) -> Result<Value> {
    if query.series.is_empty() {
        return Err(QueryError::invalid(
            "series",
            "stickiness needs at least one series",
        ));
    }
    limits::check_count("series", "series", query.series.len(), limits::MAX_SERIES)?;
    if query.interval_count == Some(0) {
        return Err(QueryError::invalid(
            "intervalCount",
            "must be at least 1: it is how many intervals make one period",
        ));
    }
    let interval = query.interval.unwrap_or(Interval::Day);
    let periods = periods(db, ctx, query)?;
    let criteria = query.stickiness_filter.criteria;
    if let Some(c) = criteria.filter(|c| c.value == 0 && c.operator != StickinessOperator::Gte) {
        return Err(QueryError::invalid(
            "stickinessFilter.stickinessCriteria.value",
            format!("must be at least 1 with operator {:?}: no interval has 0 matching events and still counts", c.operator).to_lowercase(),
        ));
    }
    let cumulative = query.stickiness_filter.computed_as == Some(StickinessComputation::Cumulative);
    let unit = match interval {
        Interval::Minute => "minute",
        Interval::Hour => "hour",
        Interval::Day => "day",
        Interval::Week => "week",
        Interval::Month => "month",
    };
    let bucket_count = periods_in(periods[0].0.buckets(ctx).len(), query.interval_count);
    limits::check_cells(
        "query",
        &[
            ("intervals", bucket_count),
            ("series", query.series.len()),
            ("periods", periods.len()),
        ],
        limits::MAX_TREND_CELLS,
    )?;
    let mut results = Vec::new();
    for (range, compare_label) in periods {
        let buckets = range.buckets(ctx);
        dates::check_buckets(&buckets)?;
        let n = periods_in(buckets.len(), query.interval_count);
        for (i, series) in query.series.iter().enumerate() {
            let per_actor = per_actor_sql(
                db.dialect(),
                ctx,
                query,
                i,
                &range,
                &buckets,
                &ActorFilter::default(),
            )?;
            let sql = format!("SELECT k, count(*) FROM ({per_actor}) GROUP BY 1");
            let mut exactly = vec![0i64; n];
            for_each_batch(db, &sql, |batch| {
                let (k, actors) = (
                    column::<Int64Array>(batch, 0)?,
                    column::<Int64Array>(batch, 1)?,
                );
                for i in 0..batch.num_rows() {
                    let k = k.value(i);
                    if (1..=n as i64).contains(&k) {
                        exactly[k as usize - 1] += actors.value(i);
                    }
                }
                Ok(())
            })?;
            let count: i64 = exactly.iter().sum();
            let data: Vec<i64> = if cumulative {
                (0..n).map(|k| exactly[k..].iter().sum()).collect()
            } else {
                exactly
            };
            let labels: Vec<String> = (1..=n)
                .map(|k| {
                    let plural = if k == 1 { "" } else { "s" };
                    let more = if cumulative { " or more" } else { "" };
                    format!("{k} {unit}{plural}{more}")
                })
                .collect();
            let name = series.display_name();
            let mut result = json!({
                "action": {"id": series.event, "type": "events", "order": i, "name": name,
                           "math": series.math, "math_group_type_index": series.math_group_type_index},
                "label": name,
                "count": count,
                "data": data,
                "days": (1..=n).collect::<Vec<_>>(),
                "labels": labels,
            });
            if let Some(label) = compare_label {
                result["compare"] = json!(true);
                result["compare_label"] = json!(label);
            }
            results.push(result);
        }
    }
    Ok(json!({"results": results, "is_cached": false, "timezone": ctx.timezone.name()}))
}

/// The periods the query shows: its range, and with a comparison the one
/// before.
fn periods(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &StickinessQuery,
) -> Result<Vec<(Range, Option<&'static str>)>> {
    let interval = query.interval.unwrap_or(Interval::Day);
    let events: Vec<Option<&str>> = query.series.iter().map(|s| s.event.as_deref()).collect();
    let range = Range::resolve(ctx, &query.date_range, interval, || {
        earliest_event(db, ctx, &events)
    })?;
    dates::compare_periods(ctx, &range, &query.compare_filter)
}

/// Whom series `index` counts: the groups of its type for unique groups
/// (or uniques with a group type), else persons.
pub(crate) fn actor_of_series(
    ctx: &ProjectContext,
    query: &StickinessQuery,
    index: usize,
) -> Result<Actor> {
    let series = &query.series[index];
    let field = format!("series[{index}]");
    match (series.math, series.math_group_type_index) {
        (Some(Math::UniqueGroup | Math::Dau) | None, Some(index)) => Ok(Actor::Group(
            ctx.group_type(index, &format!("{field}.math_group_type_index"))?,
        )),
        (Some(Math::UniqueGroup), None) => Err(QueryError::invalid(
            format!("{field}.math_group_type_index"),
            "unique_group counts groups of one type; name it with math_group_type_index",
        )),
        _ => Ok(Actor::Person),
    }
}

/// `SELECT a, k`: each actor of series `index` with the number of its
/// active intervals (or periods) in `range`.
fn per_actor_sql(
    d: &dyn Dialect,
    ctx: &ProjectContext,
    query: &StickinessQuery,
    index: usize,
    range: &Range,
    buckets: &[NaiveDateTime],
    filter: &ActorFilter,
) -> Result<String> {
    let series = &query.series[index];
    let field = format!("series[{index}]");
    let actor = actor_of_series(ctx, query, index)?;
    let interval = range.interval;
    let n = periods_in(buckets.len(), query.interval_count);
    let (from, to) = range.instants(ctx);
    let mut scan = Scan::new(ctx, d, from, to);
    scan.event(series.event.as_deref());
    scan.properties(&query.properties, "properties")?;
    scan.properties(&series.properties, &format!("{field}.properties"))?;
    scan.require_actor(actor);
    filter.apply(&mut scan)?;
    let a = scan.actor(actor);
    let bucket = match query.interval_count {
        Some(count) => period_sql(d, &scan.local_time(), interval, range.to, count),
        None => scan.bucket(interval),
    };
    // Up to 64 buckets, a person's active ones are bits of one
    // number: OR-ing them costs less than a distinct count's set
    // (22% at 10M events on DuckDB). Groups are few, each with a long run
    // of events, and there the engine says which is cheaper.
    let bits = actor == Actor::Person || d.distinct_small_for_long_runs();
    let active = if n <= 64 && bits {
        let index = match query.interval_count {
            Some(_) => bucket.clone(),
            None => scan.bucket_index(interval, buckets[0]),
        };
        d.distinct_small(&index)
    } else {
        format!("count(DISTINCT {bucket})")
    };
    Ok(match query.stickiness_filter.criteria {
        // An interval counts only if its events satisfy the criterion.
        Some(c) => format!(
            "SELECT a, count(*) AS k FROM \
             (SELECT {a} AS a, {bucket} AS b {fw} GROUP BY 1, 2 HAVING count(*) {op} {v}) \
             GROUP BY 1",
            fw = scan.from_where(),
            op = c.operator.sql(),
            v = c.value,
        ),
        None => format!(
            "SELECT {a} AS a, {active} AS k {fw} GROUP BY 1",
            fw = scan.from_where(),
        ),
    })
}

/// The actors of one bar: active in exactly `day` intervals (at least
/// `day` for cumulative stickiness, or as `operator` says).
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &StickinessQuery,
    cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let (index, _) = cell.series(&query.series)?;
    let actor = actor_of_series(ctx, query, index)?;
    let periods = periods(db, ctx, query)?;
    let range = cell.period(&periods)?;
    let buckets = range.buckets(ctx);
    dates::check_buckets(&buckets)?;
    let n = periods_in(buckets.len(), query.interval_count) as i64;
    let day = cell.day_count()?;
    let cumulative = query.stickiness_filter.computed_as == Some(StickinessComputation::Cumulative);
    let op = match cell.operator() {
        None if cumulative => ">=",
        None | Some("exact" | "eq") => "=",
        Some("gte") => ">=",
        Some("lte") => "<=",
        Some("gt") => ">",
        Some("lt") => "<",
        Some(other) => {
            return Err(QueryError::invalid(
                "query.source.operator",
                format!("`{other}` is not one of exact, gte, lte, gt, lt"),
            ))
        }
    };
    let d = db.dialect();
    let per_actor = per_actor_sql(d, ctx, query, index, range, &buckets, filter)?;
    let sql = format!(
        "SELECT {id} FROM ({per_actor}) WHERE k {op} {day} AND k >= 1 AND k <= {n}",
        id = d.text("a"),
    );
    let mut rows = Vec::new();
    for_each_batch(db, &sql, |batch| {
        let ids = column::<StringArray>(batch, 0)?;
        for i in 0..batch.num_rows() {
            rows.push(ActorRow {
                id: ids.value(i).to_string(),
                facts: Facts::default(),
            });
        }
        Ok(())
    })?;
    Ok(ActorSet {
        actor,
        rows,
        facts: Vec::new(),
    })
}

/// How many periods of `interval_count` buckets the range holds (PostHog:
/// `ceil(buckets / intervalCount)`).
fn periods_in(buckets: usize, interval_count: Option<u32>) -> usize {
    buckets.div_ceil(interval_count.unwrap_or(1).max(1) as usize)
}

/// With `intervalCount` set, PostHog's stickiness runner numbers periods back
/// from the range's end rather than by calendar: `floor(age(interval, t,
/// date_to) / intervalCount)`, `age` counting whole intervals elapsed
/// ([`Dialect::whole_units_between`]). So a period is 0 for the latest
/// events, and the index is the one a person's bit is set at.
fn period_sql(
    d: &dyn Dialect,
    local: &str,
    interval: Interval,
    to: NaiveDateTime,
    count: u32,
) -> String {
    let age = d.whole_units_between(interval.into(), local, &d.timestamp(to));
    d.int_div(&age, &count.to_string())
}
