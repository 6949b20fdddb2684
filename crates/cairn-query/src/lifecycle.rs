//! Lifecycle (spec/insights.md §4): in each period, which actors are new,
//! returning, resurrecting or (negative) dormant; by persons or a group
//! type, "new" meaning created in that period.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime};
use serde_json::{json, Value};

use cairn_store::duckdb::arrow::array::{Int64Array, UInt64Array};
use cairn_store::duckdb::Connection;

use crate::context::ProjectContext;
use crate::dates::{self, align, day_string, instant, shift, Range};
use crate::error::{QueryError, Result};
use crate::nodes::{Interval, LifecycleQuery};
use crate::sql::{column, earliest_event, for_each_batch, Actor, Scan};

const STATUSES: [&str; 4] = ["new", "returning", "resurrecting", "dormant"];

pub fn run(conn: &Connection, ctx: &ProjectContext, query: &LifecycleQuery) -> Result<Value> {
    let Some(series) = query.series.first() else {
        return Err(QueryError::invalid("series", "lifecycle needs one series"));
    };
    let actor = match query.aggregation_group_type_index {
        Some(i) => Actor::Group(ctx.group_type(i, "aggregation_group_type_index")?),
        None => Actor::Person,
    };
    let interval = query.interval.unwrap_or(Interval::Day);
    let range = Range::resolve(ctx, &query.date_range, interval, || {
        earliest_event(conn, ctx, &[series.event.as_deref()])
    })?;
    let buckets = range.buckets(ctx);
    dates::check_buckets(&buckets)?;
    let first = buckets[0];
    let last = buckets[buckets.len() - 1];
    // One period either side: to tell returning from resurrecting at the
    // start, and dormancy after the end.
    let (from, to) = (
        instant(ctx, shift(first, interval, -1)),
        instant(ctx, shift(last, interval, 1)),
    );
    let mut scan = Scan::new(ctx, from, to);
    scan.condition(format!("e.timestamp < {}", crate::sql::timestamp(to)));
    scan.event(series.event.as_deref());
    scan.properties(&query.properties, "properties")?;
    scan.properties(&series.properties, "series[0].properties")?;
    scan.require_actor(actor);
    scan.condition(
        "coalesce(json_extract_string(e.properties, '/$process_person_profile'), '') <> 'false'",
    );
    let a = scan.actor(actor);
    let created = scan.actor_created_at(actor);
    let sql = format!(
        "SELECT hash({a}), epoch_us({bucket}), epoch_us(min(coalesce({created}, e.timestamp))) {fw} GROUP BY 1, 2 ORDER BY 1, 2",
        bucket = scan.bucket(interval),
        fw = scan.from_where(),
    );
    let index: HashMap<NaiveDateTime, usize> =
        buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut counts = [
        vec![0i64; buckets.len()],
        vec![0; buckets.len()],
        vec![0; buckets.len()],
        vec![0; buckets.len()],
    ];
    let mut tally = |status: usize, period: NaiveDateTime| {
        if let Some(&i) = index.get(&period) {
            counts[status][i] += if status == 3 { -1 } else { 1 };
        }
    };
    // Rows arrive grouped by actor, periods ascending.
    let mut current: Option<(u64, NaiveDateTime, Vec<NaiveDateTime>)> = None;
    let mut classify = |created: NaiveDateTime, periods: &[NaiveDateTime]| {
        for (j, &p) in periods.iter().enumerate() {
            let previous = if j == 0 { created } else { periods[j - 1] };
            let status = if j == 0 && previous == p {
                0
            } else if j > 0 && shift(p, interval, -1) == previous {
                1
            } else {
                2
            };
            tally(status, p);
            let next = shift(p, interval, 1);
            if periods.get(j + 1) != Some(&next) {
                tally(3, next);
            }
        }
    };
    let naive = |micros: i64| {
        DateTime::from_timestamp_micros(micros)
            .unwrap_or_default()
            .naive_utc()
    };
    for_each_batch(conn, &sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let periods = column::<Int64Array>(batch, 1)?;
        let created = column::<Int64Array>(batch, 2)?;
        for i in 0..batch.num_rows() {
            let id = ids.value(i);
            let created_local = align(
                dates::local(
                    ctx,
                    DateTime::from_timestamp_micros(created.value(i)).unwrap_or_default(),
                ),
                interval,
                ctx.week_start,
            );
            match &mut current {
                Some((current_id, c, periods_seen)) if *current_id == id => {
                    *c = (*c).min(created_local);
                    periods_seen.push(naive(periods.value(i)));
                }
                _ => {
                    if let Some((_, c, seen)) = current.take() {
                        classify(c, &seen);
                    }
                    current = Some((id, created_local, vec![naive(periods.value(i))]));
                }
            }
        }
        Ok(())
    })?;
    if let Some((_, c, seen)) = current.take() {
        classify(c, &seen);
    }

    let name = series
        .custom_name
        .clone()
        .or_else(|| series.event.clone())
        .unwrap_or_else(|| "All events".into());
    let results: Vec<Value> = STATUSES
        .iter()
        .zip(counts)
        .map(|(status, data)| {
            json!({
                "action": {"id": series.event, "type": "events", "order": 0, "name": name},
                "label": format!("{name} - {status}"),
                "status": status,
                "count": data.iter().sum::<i64>(),
                "data": data,
                "days": buckets.iter().map(|b| day_string(*b, interval)).collect::<Vec<_>>(),
                "labels": buckets.iter().map(|b| dates::label(*b, interval)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({"results": results, "is_cached": false, "timezone": ctx.timezone.name()}))
}
