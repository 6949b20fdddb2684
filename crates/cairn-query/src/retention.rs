//! Retention (spec/insights.md §3): cohorts of actors by the period they did
//! the start event, and how many came back in each later period; by
//! persons or a group type, recurring or first-time, with breakdowns.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use arrow_array::{Array, BooleanArray, Int64Array, StringArray, UInt64Array};
use cairn_store::EventScanner;

use crate::breakdown::{top_values, Breakdown, OTHER_LABEL};
use crate::context::ProjectContext;
use crate::dates::{self, align, instant, shift, Range};
use crate::error::{QueryError, Result};
use crate::limits;
use crate::nodes::{
    Interval, Properties, RetentionEntity, RetentionPeriod, RetentionQuery, RetentionType,
};
use crate::sql::{
    bucket_index_sql, column, for_each_batch, person_merges, timestamp, Actor, Interner, Merges,
    Scan,
};

/// Schema default of `totalIntervals`.
const DEFAULT_INTERVALS: usize = 11;

/// What one actor did in one period of the grid.
#[derive(Debug, Clone, Copy)]
struct Activity {
    actor: u64,
    period: usize,
    started: bool,
    returns: u64,
    /// Interned breakdown value of its first start event.
    value: u32,
}

const NO_VALUE: u32 = u32::MAX;

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &RetentionQuery) -> Result<Value> {
    let filter = &query.retention_filter;
    let (interval, period_name) = match filter.period.unwrap_or(RetentionPeriod::Day) {
        RetentionPeriod::Hour => (Interval::Hour, "Hour"),
        RetentionPeriod::Day => (Interval::Day, "Day"),
        RetentionPeriod::Week => (Interval::Week, "Week"),
        RetentionPeriod::Month => (Interval::Month, "Month"),
    };
    let total = filter.total_intervals.unwrap_or(DEFAULT_INTERVALS);
    if total == 0 || total > 1000 {
        return Err(QueryError::invalid(
            "retentionFilter.totalIntervals",
            "must be between 1 and 1000",
        ));
    }
    let kind = filter
        .retention_type
        .unwrap_or(RetentionType::RetentionRecurring);
    let target = entity(
        filter.target_entity.as_ref(),
        "retentionFilter.targetEntity",
    )?;
    let returning = entity(
        filter.returning_entity.as_ref(),
        "retentionFilter.returningEntity",
    )?;
    let actor = Actor::of(ctx, query.aggregation_group_type_index)?;
    let breakdown = Breakdown::parse(&query.breakdown_filter)?;

    // The grid: periods from date_from's up to (excluding) the one after date_to.
    // Without date_from the grid counts back from date_to, so the generic
    // default (a week before now) must not be checked against it.
    let mut date_range = query.date_range.clone();
    if date_range.date_from.is_none() {
        date_range.date_from = date_range.date_to.clone();
    }
    let range = Range::resolve(ctx, &date_range, interval, || Ok(None))?;
    let end = align(shift(range.to, interval, 1), interval, ctx.week_start);
    let start = match &query.date_range.date_from {
        Some(_) => align(range.from, interval, ctx.week_start),
        None => align(
            shift(end, interval, -(total as i64)),
            interval,
            ctx.week_start,
        ),
    };
    let mut periods: Vec<NaiveDateTime> = Vec::new();
    let mut p = start;
    while p < end && periods.len() < dates::MAX_BUCKETS {
        periods.push(p);
        p = shift(p, interval, 1);
    }
    dates::check_buckets(&periods)?;
    limits::check_cells(
        "retentionFilter.totalIntervals",
        &[
            ("cohorts", periods.len()),
            ("intervals", total),
            (
                "breakdown values (breakdown_limit and Other)",
                breakdown.as_ref().map_or(1, |b| b.limit.saturating_add(1)),
            ),
        ],
        limits::MAX_RETENTION_CELLS,
    )?;
    let index: HashMap<i64, usize> = periods
        .iter()
        .enumerate()
        .map(|(i, p)| (p.and_utc().timestamp_micros(), i))
        .collect();
    let (grid_from, grid_to) = (instant(ctx, start), instant(ctx, end));
    // Ascending, so a period's index is a binary search away.
    let starts: Vec<i64> = periods
        .iter()
        .map(|p| p.and_utc().timestamp_micros())
        .collect();

    // Per actor and period: did it start there, how often did it return.
    let d = db.dialect();
    let mut scan = Scan::new(ctx, d, grid_from, grid_to);
    scan.condition(format!("e.timestamp < {}", timestamp(d, grid_to)));
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    let is_target = condition(&mut scan, &target, "retentionFilter.targetEntity")?;
    let is_return = condition(&mut scan, &returning, "retentionFilter.returningEntity")?;
    let value = match &breakdown {
        Some(b) => d.first_by(&b.sql(&mut scan)?, "e.timestamp", Some(&is_target)),
        None => d.null_text().into(),
    };
    let minimum = u64::from(filter.minimum_occurrences.unwrap_or(1).max(1));
    // Per-actor bit masks of periods, when no breakdown needs values and the grid fits.
    let by_masks = breakdown.is_none() && periods.len() <= 64;
    // When one return is enough, a merged person's period masks simply OR
    // together: merges are folded in Rust instead of joining every event
    // to person_overrides.
    let (a, merges) = if by_masks && minimum == 1 && actor == Actor::Person {
        ("e.person_id".to_string(), person_merges(db, ctx)?)
    } else {
        (scan.actor(actor), Merges::default())
    };
    let bucket = scan.bucket(interval);
    // Usually the same event starts and returns: then every row does both.
    let (started, returns, wanted) = if is_target == is_return {
        (
            "TRUE".to_string(),
            "count(*)".to_string(),
            is_target.clone(),
        )
    } else {
        (
            d.bool_or(&is_target),
            d.count_if(&is_return),
            format!("(({is_target}) OR ({is_return}))"),
        )
    };
    scan.condition(wanted);
    let mut values = Interner::default();
    let grouped = format!(
        "SELECT {hash} AS a, {bucket} AS b, {started} AS started, {returns} AS returns, {value} AS value {fw} GROUP BY 1, 2",
        hash = d.hash(&[&a]),
        fw = scan.from_where(),
    );
    let activity = if by_masks {
        period_masks(
            db,
            &grouped,
            start,
            interval,
            periods.len(),
            minimum,
            &merges,
        )?
    } else {
        period_rows(db, &grouped, &starts, &mut values)?
    };

    // First-time retention: an actor's only cohort is its first-ever start.
    let anchors = match kind {
        RetentionType::RetentionRecurring => None,
        _ => Some(first_starts(
            db, ctx, query, &target, actor, kind, grid_to, &index, interval,
        )?),
    };

    let cumulative = filter.cumulative.unwrap_or(false);
    let values = values.into_texts();
    let text = |v: u32| values.get(v as usize).map_or("", String::as_str);
    // Each cohort an actor starts: (its activity, the actor's later periods).
    let (activity, anchors) = (activity.as_slice(), anchors.as_ref());
    let cohorts = move || {
        activity
            .chunk_by(|a, b| a.actor == b.actor)
            .flat_map(move |periods_of_actor| {
                let anchor = anchors.map(|a| a.get(&periods_of_actor[0].actor).copied());
                periods_of_actor
                    .iter()
                    .enumerate()
                    .filter(move |(_, cohort)| match anchor {
                        None => cohort.started,
                        Some(anchor) => anchor == Some(cohort.period),
                    })
                    .map(move |(j, cohort)| (cohort, &periods_of_actor[j + 1..]))
            })
    };
    // Cohort sizes rank the breakdown values first, so that only the kept
    // values (and Other) get a table, however many values the data holds.
    let mut sizes: HashMap<&str, f64> = HashMap::new();
    for (cohort, _) in cohorts() {
        *sizes.entry(text(cohort.value)).or_default() += 1.0;
    }
    let (kept, rest) = match &breakdown {
        None => (vec![String::new()], Vec::new()),
        Some(b) => top_values(
            sizes.into_iter().map(|(v, n)| (v.to_string(), n)).collect(),
            b.limit,
        ),
    };
    let slot_of: HashMap<&str, usize> = kept
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_str(), i))
        .collect();
    let other = kept.len();
    // slot (kept values in order, then Other) → cohort row → column → actors
    let mut tables: Vec<Vec<Vec<u64>>> = vec![Vec::new(); kept.len() + 1];
    for (n, (cohort, later_periods)) in cohorts().enumerate() {
        if n % 4096 == 0 {
            ctx.budget.check()?;
        }
        let slot = slot_of.get(text(cohort.value)).copied().unwrap_or(other);
        let counts = &mut tables[slot];
        if counts.is_empty() {
            *counts = vec![vec![0; total]; periods.len()];
        }
        let row = cohort.period;
        counts[row][0] += 1;
        let came_back = later_periods
            .iter()
            .take_while(|later| later.period < row + total)
            .filter(|later| later.returns >= minimum)
            .map(|later| later.period - row);
        if cumulative {
            if let Some(last) = came_back.last() {
                (1..=last).for_each(|k| counts[row][k] += 1);
            }
        } else {
            came_back.for_each(|k| counts[row][k] += 1);
        }
    }

    let rows = |counts: &[Vec<u64>], value: Option<Value>| -> Vec<Value> {
        periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let values: Vec<Value> = (0..total)
                    .map(|k| json!({"count": counts[i][k], "label": format!("{period_name} {k}")}))
                    .collect();
                let mut row = json!({
                    "label": format!("{period_name} {i}"),
                    "date": instant(ctx, *p).with_timezone(&ctx.timezone).to_rfc3339(),
                    "values": values,
                });
                if let Some(value) = &value {
                    row["breakdown_value"] = value.clone();
                }
                row
            })
            .collect()
    };
    let empty = vec![vec![0; total]; periods.len()];
    let table = |slot: usize| -> &[Vec<u64>] {
        if tables[slot].is_empty() {
            &empty
        } else {
            &tables[slot]
        }
    };
    let results: Vec<Value> = match &breakdown {
        None => rows(table(0), None),
        Some(b) => {
            let mut out: Vec<Value> = kept
                .iter()
                .enumerate()
                .flat_map(|(slot, v)| rows(table(slot), Some(b.value_json(v))))
                .collect();
            if !rest.is_empty() {
                out.extend(rows(table(other), Some(b.value_json(OTHER_LABEL))));
            }
            out
        }
    };
    Ok(json!({"results": results, "is_cached": false, "timezone": ctx.timezone.name()}))
}

/// An entity's event name (`None`: any event) and properties.
struct Entity {
    event: Option<String>,
    properties: Properties,
}

fn entity(entity: Option<&RetentionEntity>, field: &str) -> Result<Entity> {
    let Some(entity) = entity else {
        return Ok(Entity {
            event: Some("$pageview".into()),
            properties: Properties::default(),
        });
    };
    let event = match &entity.id {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Null) | None => entity.name.clone(),
        Some(_) => {
            return Err(QueryError::invalid(
                format!("{field}.id"),
                "an event name (Cairn has no actions)",
            ))
        }
    };
    Ok(Entity {
        event,
        properties: entity.properties.clone(),
    })
}

fn condition(scan: &mut Scan<'_>, entity: &Entity, field: &str) -> Result<String> {
    scan.matches(entity.event.as_deref(), &entity.properties, field)
}

/// The grid period of each actor's first-ever start event.
#[allow(clippy::too_many_arguments)]
fn first_starts(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &RetentionQuery,
    target: &Entity,
    actor: Actor,
    kind: RetentionType,
    before: chrono::DateTime<chrono::Utc>,
    index: &HashMap<i64, usize>,
    interval: Interval,
) -> Result<HashMap<u64, usize>> {
    let d = db.dialect();
    let mut scan = Scan::new(ctx, d, chrono::DateTime::UNIX_EPOCH, before);
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    let ok = match kind {
        // The first event of that name must itself match the properties.
        RetentionType::RetentionFirstEverOccurrence => {
            if let Some(event) = &target.event {
                scan.condition(format!("e.event = {}", d.string(event)));
            }
            condition(&mut scan, target, "retentionFilter.targetEntity")?
        }
        _ => {
            let c = condition(&mut scan, target, "retentionFilter.targetEntity")?;
            scan.condition(c);
            "TRUE".into()
        }
    };
    let a = scan.actor(actor);
    let sql = format!(
        "SELECT {}, {}, {} {} GROUP BY 1",
        d.hash(&[&a]),
        d.epoch_micros("min(e.timestamp)"),
        d.first_by(&ok, "e.timestamp", None),
        scan.from_where()
    );
    let mut anchors = HashMap::new();
    for_each_batch(db, &sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let firsts = column::<Int64Array>(batch, 1)?;
        let oks = column::<BooleanArray>(batch, 2)?;
        for i in 0..batch.num_rows() {
            if oks.is_null(i) || !oks.value(i) {
                continue;
            }
            let first =
                chrono::DateTime::from_timestamp_micros(firsts.value(i)).unwrap_or_default();
            let period = align(dates::local(ctx, first), interval, ctx.week_start);
            if let Some(&p) = index.get(&period.and_utc().timestamp_micros()) {
                anchors.insert(ids.value(i), p);
            }
        }
        Ok(())
    })?;
    Ok(anchors)
}

/// Each actor's periods from one row per actor and period (needed when
/// breakdown values differ between an actor's periods).
fn period_rows(
    db: &dyn EventScanner,
    grouped: &str,
    starts: &[i64],
    values: &mut Interner,
) -> Result<Vec<Activity>> {
    let mut activity = Vec::new();
    let sql = format!(
        "SELECT a, {}, started, returns, value FROM ({grouped}) ORDER BY 1, 2",
        db.dialect().epoch_micros("b")
    );
    for_each_batch(db, &sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let buckets = column::<Int64Array>(batch, 1)?;
        let started = column::<BooleanArray>(batch, 2)?;
        let returns = column::<Int64Array>(batch, 3)?;
        let texts = column::<StringArray>(batch, 4)?;
        for i in 0..batch.num_rows() {
            let Ok(period) = starts.binary_search(&buckets.value(i)) else {
                continue;
            };
            let value = if texts.is_null(i) {
                NO_VALUE
            } else {
                values.id(texts.value(i))
            };
            activity.push(Activity {
                actor: ids.value(i),
                period,
                started: started.value(i),
                returns: returns.value(i) as u64,
                value,
            });
        }
        Ok(())
    })?;
    Ok(activity)
}

/// Each actor's periods as two bit masks (started, returned at least
/// `minimum` times) from one row per actor: a fraction of the rows to move
/// when no breakdown needs per-period values and the grid fits in 64 bits.
fn period_masks(
    db: &dyn EventScanner,
    grouped: &str,
    start: NaiveDateTime,
    interval: Interval,
    periods: usize,
    minimum: u64,
    merges: &Merges,
) -> Result<Vec<Activity>> {
    let d = db.dialect();
    let index = d.integer(&bucket_index_sql(d, interval, start, "b"));
    let sql = format!(
        "SELECT a, {started},
                {returned}
         FROM (SELECT a, {index} AS i, started, returns FROM ({grouped}))
         WHERE i BETWEEN 0 AND {last} GROUP BY a",
        started = d.bit_mask("i", "started"),
        returned = d.bit_mask("i", &format!("returns >= {minimum}")),
        last = periods - 1,
    );
    let mut masks: Vec<(u64, u64, u64)> = Vec::new();
    for_each_batch(db, &sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let started = column::<UInt64Array>(batch, 1)?;
        let returned = column::<UInt64Array>(batch, 2)?;
        masks.extend(
            (0..batch.num_rows()).map(|i| (ids.value(i), started.value(i), returned.value(i))),
        );
        Ok(())
    })?;
    if !merges.is_empty() {
        let mut folded: HashMap<u64, (u64, u64)> = HashMap::with_capacity(masks.len());
        for (id, s, r) in masks {
            let person = folded
                .entry(merges.get(&id).copied().unwrap_or(id))
                .or_default();
            (person.0, person.1) = (person.0 | s, person.1 | r);
        }
        masks = folded.into_iter().map(|(id, (s, r))| (id, s, r)).collect();
    }
    let mut activity = Vec::new();
    for (actor, s, r) in masks {
        let mut any = s | r;
        while any != 0 {
            let period = any.trailing_zeros() as usize;
            any &= any - 1;
            activity.push(Activity {
                actor,
                period,
                started: s & (1 << period) != 0,
                returns: if r & (1 << period) != 0 { minimum } else { 0 },
                value: NO_VALUE,
            });
        }
    }
    Ok(activity)
}
