//! Retention (spec/insights.md §3): cohorts of actors by the period they did
//! the start event, and how many came back in each later period; by
//! persons or a group type, recurring or first-time, with breakdowns.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use arrow_array::{Array, BooleanArray, Int64Array, StringArray, UInt64Array};
use cairn_store::dialect::Dialect;
use cairn_store::EventScanner;

use crate::actors::{resolve, ActorFilter, ActorSet, Cell, Fact, Facts};
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
    let scanned = Scanned::read(db, ctx, query)?;
    let cohorts = scanned.cohorts();
    let grid = &scanned.grid;
    let (kept, rest) = cohorts.ranked_values(grid.breakdown.as_ref());
    let tables = cohorts.tables(ctx, grid, &kept, scanned.minimum, query)?;
    Ok(answer(ctx, grid, &kept, &rest, &tables))
}

/// The actors of one cohort row (under one breakdown value), or of one
/// cell of it with `column`; each with the columns it came back in.
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &RetentionQuery,
    cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let (row, column) = cell.retention_cell()?;
    let scanned = Scanned::read(db, ctx, query)?;
    let grid = &scanned.grid;
    if row >= grid.periods.len() {
        return Err(QueryError::invalid(
            "query.source.interval",
            format!("the insight has {} cohort rows", grid.periods.len()),
        ));
    }
    if column.is_some_and(|c| c >= grid.total) {
        return Err(QueryError::invalid(
            "query.source.column",
            format!("the insight has {} columns", grid.total),
        ));
    }
    let cohorts = scanned.cohorts();
    let (kept, _) = cohorts.ranked_values(grid.breakdown.as_ref());
    // Which values the row is of: one kept value, or every other one.
    let wanted: Option<(String, bool)> =
        cell.breakdown_value(grid.breakdown.as_ref())?.map(|text| {
            let other = text == OTHER_LABEL;
            (text, other)
        });
    let cumulative = query.retention_filter.cumulative.unwrap_or(false);
    let mut chosen = HashMap::new();
    for (cohort, later_periods) in cohorts.each() {
        if cohort.period != row {
            continue;
        }
        if let Some((value, other)) = &wanted {
            let text = cohorts.text(cohort.value);
            let matches = if *other {
                !kept.iter().any(|k| k == text)
            } else {
                text == value
            };
            if !matches {
                continue;
            }
        }
        let mut appearances = vec![false; grid.total];
        appearances[0] = true;
        for k in returns(cohort, later_periods, grid.total, scanned.minimum) {
            appearances[k] = true;
        }
        let counted = match column {
            None => true,
            // Cumulative retention counts an actor in every column up to
            // its last return.
            Some(c) if cumulative => appearances[c..].iter().any(|a| *a),
            Some(c) => appearances[c],
        };
        if counted {
            chosen.insert(
                cohort.actor,
                Facts {
                    appearances: Some(appearances),
                    ..Facts::default()
                },
            );
        }
    }
    Ok(ActorSet {
        actor: grid.actor,
        rows: resolve(db, ctx, grid.actor, (grid.from, grid.to), chosen, filter)?,
        facts: vec![Fact::Appearances],
    })
}

/// Every actor's activity in the grid, as the insight reads it.
struct Scanned {
    grid: Grid,
    minimum: u64,
    activity: Vec<Activity>,
    /// First-time retention: each actor's only cohort period.
    anchors: Option<HashMap<u64, usize>>,
    values: Vec<String>,
}

impl Scanned {
    fn read(db: &dyn EventScanner, ctx: &ProjectContext, query: &RetentionQuery) -> Result<Self> {
        let grid = Grid::plan(ctx, query)?;
        let plan = activity_sql(db.dialect(), ctx, query, &grid)?;
        let merges = if plan.follows_merges {
            person_merges(db, ctx)?
        } else {
            Merges::default()
        };
        let mut values = Interner::default();
        let activity = if plan.by_masks {
            period_masks(db, &plan, &grid, &merges)?
        } else {
            period_rows(db, &plan.grouped, &grid, &mut values)?
        };
        // First-time retention: an actor's only cohort is its first-ever start.
        let anchors = match grid.kind {
            RetentionType::RetentionRecurring => None,
            _ => Some(first_starts(db, ctx, query, &grid)?),
        };
        Ok(Self {
            grid,
            minimum: plan.minimum,
            activity,
            anchors,
            values: values.into_texts(),
        })
    }

    fn cohorts(&self) -> Cohorts<'_> {
        Cohorts {
            activity: &self.activity,
            anchors: self.anchors.as_ref(),
            values: &self.values,
        }
    }
}

/// The columns (periods after its start) a cohort's actor came back in.
fn returns<'a>(
    cohort: &Activity,
    later_periods: &'a [Activity],
    total: usize,
    minimum: u64,
) -> impl Iterator<Item = usize> + 'a {
    let row = cohort.period;
    later_periods
        .iter()
        .take_while(move |later| later.period < row + total)
        .filter(move |later| later.returns >= minimum)
        .map(move |later| later.period - row)
}

/// The periods of a retention query and what is asked about them.
struct Grid {
    interval: Interval,
    period_name: &'static str,
    /// Columns of the table: periods after a cohort's start, counted.
    total: usize,
    kind: RetentionType,
    target: Entity,
    returning: Entity,
    actor: Actor,
    breakdown: Option<Breakdown>,
    /// The local start of the grid's first period.
    start: NaiveDateTime,
    /// The cohort periods' local starts, ascending.
    periods: Vec<NaiveDateTime>,
    /// The instants the grid spans.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// The periods' starts as epoch µs (a period's index is a binary search
    /// away).
    starts: Vec<i64>,
}

impl Grid {
    fn plan(ctx: &ProjectContext, query: &RetentionQuery) -> Result<Self> {
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
        let starts = periods
            .iter()
            .map(|p| p.and_utc().timestamp_micros())
            .collect();
        Ok(Self {
            interval,
            period_name,
            total,
            kind,
            target,
            returning,
            actor,
            breakdown,
            start,
            periods,
            from: instant(ctx, start),
            to: instant(ctx, end),
            starts,
        })
    }

    /// The index of the period starting at `local`, if it is one.
    fn period_of(&self, local: NaiveDateTime) -> Option<usize> {
        self.starts
            .binary_search(&local.and_utc().timestamp_micros())
            .ok()
    }
}

/// The per actor and period statement: did it start there, how often did
/// it return.
struct ActivityPlan {
    grouped: String,
    /// Each actor's periods as one mask, straight from the events (every
    /// row both starts and returns, once is enough).
    masks: Option<String>,
    /// Read as per-actor bit masks of periods (no breakdown needs values
    /// and the grid fits in 64 bits).
    by_masks: bool,
    /// Returns a period needs to count.
    minimum: u64,
    /// Actors are stored persons; merges are folded in Rust.
    follows_merges: bool,
}

fn activity_sql(
    d: &dyn Dialect,
    ctx: &ProjectContext,
    query: &RetentionQuery,
    grid: &Grid,
) -> Result<ActivityPlan> {
    let mut scan = Scan::new(ctx, d, grid.from, grid.to);
    scan.condition(format!("e.timestamp < {}", timestamp(d, grid.to)));
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(grid.actor);
    let is_target = condition(&mut scan, &grid.target, "retentionFilter.targetEntity")?;
    let is_return = condition(
        &mut scan,
        &grid.returning,
        "retentionFilter.returningEntity",
    )?;
    let value = match &grid.breakdown {
        Some(b) => d.first_by(&b.sql(&mut scan)?, "e.timestamp", Some(&is_target)),
        None => d.null_text().into(),
    };
    let minimum = u64::from(
        query
            .retention_filter
            .minimum_occurrences
            .unwrap_or(1)
            .max(1),
    );
    let by_masks = grid.breakdown.is_none() && grid.periods.len() <= 64;
    // When one return is enough, a merged person's period masks simply OR
    // together: merges are folded in Rust instead of joining every event
    // to person_overrides.
    let follows_merges = by_masks && minimum == 1 && grid.actor == Actor::Person;
    let a = if follows_merges {
        "e.person_id".to_string()
    } else {
        scan.actor(grid.actor)
    };
    let bucket = scan.bucket(grid.interval);
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
    let same_event = is_target == is_return;
    scan.condition(wanted);
    let hash = d.hash(&[&a]);
    let grouped = format!(
        "SELECT {hash} AS a, {bucket} AS b, {started} AS started, {returns} AS returns, {value} AS value {fw} GROUP BY 1, 2",
        fw = scan.from_where(),
    );
    // When every row both starts and returns once, an actor's periods are
    // one mask read straight off its events, in one grouping.
    let masks = (by_masks && same_event && minimum == 1).then(|| {
        let index = d.integer(&scan.bucket_index(grid.interval, grid.start));
        format!(
            "SELECT {hash} AS a, {mask} AS m {fw} GROUP BY 1",
            mask = d.bit_mask(&index, "TRUE"),
            fw = scan.from_where(),
        )
    });
    Ok(ActivityPlan {
        grouped,
        masks,
        by_masks,
        minimum,
        follows_merges,
    })
}

/// Every actor's activity, sorted by actor then period; the cohorts it
/// starts.
struct Cohorts<'a> {
    activity: &'a [Activity],
    /// First-time retention: each actor's only cohort period.
    anchors: Option<&'a HashMap<u64, usize>>,
    /// Interned breakdown values.
    values: &'a [String],
}

impl<'a> Cohorts<'a> {
    fn text(&self, value: u32) -> &'a str {
        self.values.get(value as usize).map_or("", String::as_str)
    }

    /// Each cohort an actor starts: (its activity, the actor's later periods).
    fn each(&self) -> impl Iterator<Item = (&'a Activity, &'a [Activity])> + 'a {
        let anchors = self.anchors;
        self.activity
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
    }

    /// The breakdown values kept (in rank order) and the rest, ranked by
    /// cohort size first, so that only the kept values (and Other) get a
    /// table, however many values the data holds.
    fn ranked_values(&self, breakdown: Option<&Breakdown>) -> (Vec<String>, Vec<String>) {
        let Some(b) = breakdown else {
            return (vec![String::new()], Vec::new());
        };
        let mut sizes: HashMap<&str, f64> = HashMap::new();
        for (cohort, _) in self.each() {
            *sizes.entry(self.text(cohort.value)).or_default() += 1.0;
        }
        top_values(
            sizes.into_iter().map(|(v, n)| (v.to_string(), n)).collect(),
            b.limit,
        )
    }

    /// slot (`kept` values in order, then Other) → cohort row → column →
    /// actors; a slot without cohorts stays empty.
    fn tables(
        &self,
        ctx: &ProjectContext,
        grid: &Grid,
        kept: &[String],
        minimum: u64,
        query: &RetentionQuery,
    ) -> Result<Vec<Vec<Vec<u64>>>> {
        let cumulative = query.retention_filter.cumulative.unwrap_or(false);
        let total = grid.total;
        let slot_of: HashMap<&str, usize> = kept
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), i))
            .collect();
        let other = kept.len();
        let slot_of_text = |text: &str| slot_of.get(text).copied().unwrap_or(other);
        // Each interned value's slot, looked up once rather than per cohort.
        let slots: Vec<usize> = self.values.iter().map(|v| slot_of_text(v)).collect();
        let unnamed = slot_of_text(self.text(NO_VALUE));
        let mut tables: Vec<Vec<Vec<u64>>> = vec![Vec::new(); kept.len() + 1];
        for (n, (cohort, later_periods)) in self.each().enumerate() {
            if n % 4096 == 0 {
                ctx.budget.check()?;
            }
            let slot = slots.get(cohort.value as usize).copied().unwrap_or(unnamed);
            let counts = &mut tables[slot];
            if counts.is_empty() {
                *counts = vec![vec![0; total]; grid.periods.len()];
            }
            let row = cohort.period;
            counts[row][0] += 1;
            let came_back = returns(cohort, later_periods, total, minimum);
            if cumulative {
                if let Some(last) = came_back.last() {
                    (1..=last).for_each(|k| counts[row][k] += 1);
                }
            } else {
                came_back.for_each(|k| counts[row][k] += 1);
            }
        }
        Ok(tables)
    }
}

fn answer(
    ctx: &ProjectContext,
    grid: &Grid,
    kept: &[String],
    rest: &[String],
    tables: &[Vec<Vec<u64>>],
) -> Value {
    let (total, period_name) = (grid.total, grid.period_name);
    let rows = |counts: &[Vec<u64>], value: Option<Value>| -> Vec<Value> {
        grid.periods
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
    let empty = vec![vec![0; total]; grid.periods.len()];
    let table = |slot: usize| -> &[Vec<u64>] {
        if tables[slot].is_empty() {
            &empty
        } else {
            &tables[slot]
        }
    };
    let results: Vec<Value> = match &grid.breakdown {
        None => rows(table(0), None),
        Some(b) => {
            let mut out: Vec<Value> = kept
                .iter()
                .enumerate()
                .flat_map(|(slot, v)| rows(table(slot), Some(b.value_json(v))))
                .collect();
            if !rest.is_empty() {
                out.extend(rows(table(kept.len()), Some(b.value_json(OTHER_LABEL))));
            }
            out
        }
    };
    json!({"results": results, "is_cached": false, "timezone": ctx.timezone.name()})
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
fn first_starts(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &RetentionQuery,
    grid: &Grid,
) -> Result<HashMap<u64, usize>> {
    let (target, actor) = (&grid.target, grid.actor);
    let d = db.dialect();
    let mut scan = Scan::new(ctx, d, DateTime::UNIX_EPOCH, grid.to);
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    let ok = match grid.kind {
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
            let first = DateTime::from_timestamp_micros(firsts.value(i)).unwrap_or_default();
            let period = align(dates::local(ctx, first), grid.interval, ctx.week_start);
            if let Some(p) = grid.period_of(period) {
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
    grid: &Grid,
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
            let Ok(period) = grid.starts.binary_search(&buckets.value(i)) else {
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
    plan: &ActivityPlan,
    grid: &Grid,
    merges: &Merges,
) -> Result<Vec<Activity>> {
    let d = db.dialect();
    let minimum = plan.minimum;
    let index = d.integer(&bucket_index_sql(d, grid.interval, grid.start, "b"));
    let sql = plan.masks.clone().unwrap_or_else(|| {
        format!(
            "SELECT a, {started},
                    {returned}
             FROM (SELECT a, {index} AS i, started, returns FROM ({grouped}))
             WHERE i BETWEEN 0 AND {last} GROUP BY a",
            grouped = plan.grouped,
            started = d.bit_mask("i", "started"),
            returned = d.bit_mask("i", &format!("returns >= {minimum}")),
            last = grid.periods.len() - 1,
        )
    });
    let mut masks: Vec<(u64, u64, u64)> = Vec::new();
    for_each_batch(db, &sql, |batch| {
        let ids = column::<UInt64Array>(batch, 0)?;
        let started = column::<UInt64Array>(batch, 1)?;
        // One mask: the periods both started and returned in.
        let returned = column::<UInt64Array>(batch, batch.num_columns() - 1)?;
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
