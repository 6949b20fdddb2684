//! Lifecycle (spec/insights.md §4): in each period, which actors are new,
//! returning, resurrecting or (negative) dormant; by persons or a group
//! type, "new" meaning created in that period.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use serde_json::{json, Value};

use arrow_array::{Array, Int64Array, UInt64Array};
use cairn_store::EventScanner;

use crate::actors::{resolve, ActorFilter, ActorSet, Cell, Facts};
use crate::context::ProjectContext;
use crate::dates::{self, day_string, instant, shift, Range};
use crate::error::{QueryError, Result};
use crate::nodes::{Interval, LifecycleQuery};
use crate::sql::{
    bucket_sql, column, earliest_event, for_each_batch, local_time_sql, timestamp, Actor, Scan,
};

const STATUSES: [&str; 4] = ["new", "returning", "resurrecting", "dormant"];

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &LifecycleQuery) -> Result<Value> {
    let plan = plan(db, ctx, query)?;
    let rows = scan(db, &plan)?;
    ctx.budget.check()?;
    let counts = tally(&rows, plan.buckets.len());
    Ok(answer(ctx, query, &plan, counts))
}

/// What to scan, and how to read its periods back.
struct Plan {
    sql: String,
    interval: Interval,
    buckets: Vec<NaiveDateTime>,
    /// Period start (epoch µs) → index: 0 is the one before the range,
    /// n + 1 the one after.
    index: HashMap<i64, i64>,
    /// The start of period 0 (epoch µs).
    before: i64,
    /// Whether each row holds an actor's active periods as bits of one
    /// mask, instead of one row per actor and period.
    masks: bool,
    /// The instants scanned.
    scanned: (DateTime<Utc>, DateTime<Utc>),
}

fn plan(db: &dyn EventScanner, ctx: &ProjectContext, query: &LifecycleQuery) -> Result<Plan> {
    let Some(series) = query.series.first() else {
        return Err(QueryError::invalid("series", "lifecycle needs one series"));
    };
    let d = db.dialect();
    let actor = Actor::of(ctx, query.aggregation_group_type_index)?;
    let interval = query.interval.unwrap_or(Interval::Day);
    let range = Range::resolve(ctx, &query.date_range, interval, || {
        earliest_event(db, ctx, &[series.event.as_deref()])
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
    let mut scan = Scan::new(ctx, d, from, to);
    scan.condition(format!("e.timestamp < {}", timestamp(d, to)));
    scan.event(series.event.as_deref());
    scan.properties(&query.properties, "properties")?;
    scan.properties(&series.properties, "series[0].properties")?;
    scan.require_actor(actor);
    let mut extended = vec![shift(first, interval, -1)];
    extended.extend(buckets.iter().copied());
    extended.push(shift(last, interval, 1));
    // Up to 64 periods, an actor's active ones are the bits of one number:
    // one row per actor instead of one per actor and period.
    let masks = extended.len() <= 64;
    // Then a merged person's masks simply OR together: events are grouped
    // by the person they were stored with, and merges followed after
    // grouping, instead of joining every event to person_overrides.
    let fold_merges = masks && actor == Actor::Person && ctx.person_overrides;
    let a = if fold_merges {
        "e.person_id".to_string()
    } else {
        scan.actor(actor)
    };
    let p = ctx.project.0;
    // The actor's created-at is joined after grouping: one lookup per actor
    // and period instead of one per event.
    // A group without a profile counts as created at its first event here
    // (with masks, that is its first active period: no column needed);
    // persons count only with a profile, so theirs is not needed.
    let (join, having, (created, first)) = match actor {
        Actor::Person => (
            format!("LEFT JOIN persons c ON c.project_id = {p} AND c.id = x.a"),
            // Only persons with a profile (personless events have none).
            "WHERE c.id IS NOT NULL",
            ("c.created_at", ""),
        ),
        Actor::Group(index) => (
            format!(
                "LEFT JOIN groups c ON c.project_id = {p} AND c.group_type_index = {index} AND c.group_key = x.a"
            ),
            "",
            if masks {
                ("c.created_at", "")
            } else {
                ("coalesce(c.created_at, x.first)", ", min(e.timestamp) AS first")
            },
        ),
    };
    let created_bucket = bucket_sql(
        d,
        &local_time_sql(ctx, d, created, from, to),
        interval,
        ctx.week_start,
    );
    let bucket = scan.bucket(interval);
    let (periods, by) = if masks {
        let index = scan.bucket_index(interval, extended[0]);
        (d.bit_mask(&index, "true"), "1")
    } else {
        (bucket, "1, 2")
    };
    let mut grouped = format!(
        "SELECT {a} AS a, {periods} AS b{first} {fw} GROUP BY {by}",
        fw = scan.from_where(),
    );
    if fold_merges {
        grouped = format!(
            "SELECT coalesce(po.person_id, y.a) AS a, y.b AS b FROM ({grouped}) y
             LEFT JOIN person_overrides po ON po.project_id = {p} AND po.old_person_id = y.a"
        );
    }
    let sql = format!(
        "SELECT {hash}, {b}, {created} FROM ({grouped}) x {join} {having}",
        hash = d.hash(&["x.a"]),
        b = if masks {
            "x.b".to_string()
        } else {
            d.epoch_micros("x.b")
        },
        created = d.epoch_micros(&created_bucket),
    );
    let index = extended
        .iter()
        .enumerate()
        .map(|(i, p)| (p.and_utc().timestamp_micros(), i as i64))
        .collect();
    Ok(Plan {
        sql,
        interval,
        before: extended[0].and_utc().timestamp_micros(),
        masks,
        scanned: (from, to),
        buckets,
        index,
    })
}

/// `(actor, period, period created)` per active actor and period, sorted.
fn scan(db: &dyn EventScanner, plan: &Plan) -> Result<Vec<(u64, i64, i64)>> {
    let mut rows: Vec<(u64, i64, i64)> = Vec::new();
    for_each_batch(db, &plan.sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let created = column::<Int64Array>(batch, 2)?;
        let masks = plan
            .masks
            .then(|| column::<UInt64Array>(batch, 1))
            .transpose()?;
        let starts = (!plan.masks)
            .then(|| column::<Int64Array>(batch, 1))
            .transpose()?;
        for i in 0..batch.num_rows() {
            let created = if created.is_null(i) {
                // A group without a profile (with masks only): created in
                // its first active period.
                masks
                    .as_ref()
                    .map_or(i64::MIN, |m| i64::from(m.value(i).trailing_zeros()))
            } else {
                match plan.index.get(&created.value(i)) {
                    Some(&c) => c,
                    // Created before the window: never "new" here.
                    None if created.value(i) < plan.before => i64::MIN,
                    None => i64::MAX,
                }
            };
            if let Some(masks) = &masks {
                let mask = masks.value(i);
                let periods = (0..64).filter(|p| mask & (1 << p) != 0);
                rows.extend(periods.map(|p| (ids.value(i), p, created)));
            } else if let Some(&period) = starts.as_ref().and_then(|s| plan.index.get(&s.value(i)))
            {
                rows.push((ids.value(i), period, created));
            }
        }
        Ok(())
    })?;
    rows.sort_unstable();
    // Ids merged into one person are active in the same periods.
    rows.dedup_by_key(|(actor, period, _)| (*actor, *period));
    Ok(rows)
}

/// Per status (new, returning, resurrecting, dormant), the actors of each
/// of the `n` periods.
fn tally(rows: &[(u64, i64, i64)], n: usize) -> [Vec<i64>; 4] {
    let mut counts = [vec![0i64; n], vec![0; n], vec![0; n], vec![0; n]];
    each_status(rows, n, |status, period, _| {
        counts[status][period] += if status == DORMANT { -1 } else { 1 };
    });
    counts
}

const DORMANT: usize = 3;

/// Calls `each(status, period index, actor)` for every actor and period of
/// the `n` periods where the actor has a status.
fn each_status(rows: &[(u64, i64, i64)], n: usize, mut each: impl FnMut(usize, usize, u64)) {
    let n = n as i64;
    let mut tally = |status: usize, period: i64, actor: u64| {
        if (1..=n).contains(&period) {
            each(status, period as usize - 1, actor);
        }
    };
    for periods in rows.chunk_by(|a, b| a.0 == b.0) {
        let actor = periods[0].0;
        let created = periods.iter().map(|r| r.2).min().unwrap_or(i64::MIN);
        for (j, &(_, p, _)) in periods.iter().enumerate() {
            let status = if j == 0 && created == p {
                0
            } else if j > 0 && periods[j - 1].1 == p - 1 {
                1
            } else {
                2
            };
            tally(status, p, actor);
            if periods.get(j + 1).map(|r| r.1) != Some(p + 1) {
                tally(DORMANT, p + 1, actor);
            }
        }
    }
}

/// The actors of one status in one period (`day`, as the insight's
/// `days`); each status and period when not named.
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &LifecycleQuery,
    cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let plan = plan(db, ctx, query)?;
    let status = match cell.status() {
        None => None,
        Some(name) => Some(STATUSES.iter().position(|s| *s == name).ok_or_else(|| {
            QueryError::invalid(
                "query.source.status",
                format!("`{name}` is not one of {}", STATUSES.join(", ")),
            )
        })?),
    };
    let period = cell.bucket(&plan.buckets, plan.interval)?;
    let rows = scan(db, &plan)?;
    ctx.budget.check()?;
    let mut chosen = HashMap::new();
    each_status(&rows, plan.buckets.len(), |s, p, actor| {
        if status.is_none_or(|want| want == s) && period.is_none_or(|want| want == p) {
            chosen.insert(actor, Facts::default());
        }
    });
    let actor = Actor::of(ctx, query.aggregation_group_type_index)?;
    Ok(ActorSet {
        actor,
        rows: resolve(db, ctx, actor, plan.scanned, chosen, filter)?,
        facts: Vec::new(),
    })
}

fn answer(
    ctx: &ProjectContext,
    query: &LifecycleQuery,
    plan: &Plan,
    counts: [Vec<i64>; 4],
) -> Value {
    let (buckets, interval) = (&plan.buckets, plan.interval);
    let series = &query.series[0];
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
                "action": {"id": series.event, "type": "events", "order": 0, "name": name, "math": "total"},
                "label": format!("{name} - {status}"),
                "status": status,
                "count": data.iter().sum::<i64>(),
                "data": data,
                "days": buckets.iter().map(|b| day_string(*b, interval)).collect::<Vec<_>>(),
                "labels": buckets.iter().map(|b| dates::label(*b, interval)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"results": results, "is_cached": false, "timezone": ctx.timezone.name()})
}
