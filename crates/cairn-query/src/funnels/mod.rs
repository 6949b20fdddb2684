//! Funnels (spec/insights.md §2): which actors went through the steps in
//! order within the conversion window, by persons or by group (one merged
//! event stream per group), with breakdown attribution, conversion times,
//! time-to-convert histograms and conversion trends.

pub mod engine;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use arrow_array::{Array, Int32Array, Int64Array, StringArray, UInt64Array};
use cairn_store::dialect::Dialect;
use cairn_store::EventScanner;

use crate::actors::{resolve, ActorFilter, ActorSet, Cell, Fact, Facts};
use crate::breakdown::{Breakdown, OTHER_LABEL};
use crate::context::ProjectContext;
use crate::dates::{self, day_string, instant, Range};
use crate::error::{QueryError, Result};
use crate::limits;
use crate::nodes::{
    Attribution, EventsNode, FunnelOrder, FunnelViz, FunnelsQuery, Interval, Math, WindowUnit,
};
use crate::sql::{column, earliest_event, for_each_batch, Actor, Interner, Scan};
use crate::{number, quantile};
use engine::{Event, Funnel, Outcome};

/// One row of an actor's stream, with its breakdown value (interned).
#[derive(Debug, Clone, Copy)]
struct Row {
    event: Event,
    value: Option<u32>,
}

/// Actors' outcomes, each with the actor's hash.
type Outcomes = Vec<(u64, Outcome)>;

/// What a funnel query asks, checked.
struct Setup {
    funnel: Funnel,
    actor: Actor,
    range: Range,
    breakdown: Option<Breakdown>,
    attribution: Attribution,
}

impl Setup {
    fn new(db: &dyn EventScanner, ctx: &ProjectContext, query: &FunnelsQuery) -> Result<Self> {
        let steps = &query.series;
        if steps.len() < 2 {
            return Err(QueryError::invalid(
                "series",
                "a funnel needs at least two steps",
            ));
        }
        limits::check_count(
            "series",
            "funnel steps",
            steps.len(),
            limits::MAX_FUNNEL_STEPS,
        )?;
        let filter = &query.funnels_filter;
        limits::check_count(
            "funnelsFilter.exclusions",
            "funnel exclusions",
            filter.exclusions.len(),
            limits::MAX_FUNNEL_EXCLUSIONS,
        )?;
        let order = filter.order.unwrap_or(FunnelOrder::Ordered);
        let funnel = Funnel {
            steps: steps.len(),
            optional: optional_steps(steps, order)?,
            // Saturating: an absurd window is just "forever", never an overflow.
            window_us: i64::from(filter.window_interval.unwrap_or(14))
                .saturating_mul(filter.window_unit.unwrap_or(WindowUnit::Day).seconds())
                .saturating_mul(1_000_000),
            order,
            exclusions: exclusions(query, order)?,
        };
        let actor = Actor::of(ctx, query.aggregation_group_type_index)?;
        let interval = query.interval.unwrap_or(Interval::Day);
        let events: Vec<Option<&str>> = steps.iter().map(|s| s.event.as_deref()).collect();
        let range = Range::resolve(ctx, &query.date_range, interval, || {
            earliest_event(db, ctx, &events)
        })?;
        let breakdown = Breakdown::parse(&query.breakdown_filter)?;
        let attribution = filter.attribution.unwrap_or(Attribution::FirstTouch);
        if attribution == Attribution::Step {
            let step = filter.attribution_step.unwrap_or(0);
            if step >= steps.len() {
                return Err(QueryError::invalid(
                    "funnelsFilter.breakdownAttributionValue",
                    "no such step",
                ));
            }
            if order == FunnelOrder::Unordered && step != 0 {
                return Err(QueryError::invalid(
                    "funnelsFilter.breakdownAttributionValue",
                    "unordered funnels attribute breakdowns to the first step only",
                ));
            }
        }
        Ok(Self {
            funnel,
            actor,
            range,
            breakdown,
            attribution,
        })
    }

    /// Each actor's outcomes per breakdown value, with the actor's hash.
    fn outcomes(
        &self,
        ctx: &ProjectContext,
        query: &FunnelsQuery,
        streams: &Streams,
    ) -> Result<HashMap<String, Outcomes>> {
        // By value id first: no text per actor.
        let mut by_id: foldhash::HashMap<Option<u32>, Vec<(u64, Outcome)>> = Default::default();
        for (n, rows) in streams.rows.iter().enumerate() {
            // Every 1024 actors, and before each long stream (attribution may
            // run the funnel once per breakdown value in it).
            if n % 1024 == 0 || rows.len() >= 4096 {
                ctx.budget.check()?;
            }
            attribute(
                &self.funnel,
                rows,
                self.attribution,
                query.funnels_filter.attribution_step.unwrap_or(0),
                &mut |value, outcome| {
                    by_id
                        .entry(value)
                        .or_default()
                        .push((streams.hashes[n], outcome))
                },
            );
        }
        // No value is "", as a stored "" is.
        let mut by_value: HashMap<String, Vec<(u64, Outcome)>> = HashMap::new();
        for (id, outcomes) in by_id {
            let text = id.map_or("", |id| streams.values[id as usize].as_str());
            by_value
                .entry(text.to_string())
                .or_default()
                .extend(outcomes);
        }
        Ok(by_value)
    }

    /// Each actor's outcomes under the breakdown values kept, in rank order,
    /// then under "Other" (the rest, as one value).
    fn ranked(
        &self,
        ctx: &ProjectContext,
        query: &FunnelsQuery,
        streams: &Streams,
        limit: usize,
    ) -> Result<Vec<(String, Outcomes)>> {
        let by_value = self.outcomes(ctx, query, streams)?;
        let mut ranked = rank(by_value, &self.funnel, limit, |(_, o)| o);
        if self.attribution != Attribution::AllEvents
            || ranked.last().is_none_or(|(v, _)| v != OTHER_LABEL)
        {
            return Ok(ranked);
        }
        // Under all_events an actor has an outcome per value. The values
        // folded into "Other" are one value there: an actor with several
        // goes through the funnel once, over their events together.
        let kept: std::collections::HashSet<String> = ranked[..ranked.len() - 1]
            .iter()
            .map(|(v, _)| v.clone())
            .collect();
        let Some((_, other)) = ranked.last_mut() else {
            return Ok(ranked);
        };
        let mut seen = std::collections::HashSet::new();
        let repeated: std::collections::HashSet<u64> = other
            .iter()
            .filter(|(hash, _)| !seen.insert(*hash))
            .map(|(hash, _)| *hash)
            .collect();
        if repeated.is_empty() {
            return Ok(ranked);
        }
        other.retain(|(hash, _)| !repeated.contains(hash));
        let text = |v: Option<u32>| v.map_or("", |v| streams.values[v as usize].as_str());
        for (n, hash) in streams.hashes.iter().enumerate() {
            if !repeated.contains(hash) {
                continue;
            }
            let events = streams.rows[n]
                .iter()
                .filter(|r| !kept.contains(text(r.value)))
                .map(|r| r.event);
            if let Some(outcome) = self.funnel.run(events) {
                other.push((*hash, outcome));
            }
        }
        Ok(ranked)
    }
}

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &FunnelsQuery) -> Result<Value> {
    let setup = Setup::new(db, ctx, query)?;
    let Setup {
        funnel,
        actor,
        range,
        breakdown,
        ..
    } = &setup;
    let (funnel, actor, breakdown) = (funnel, *actor, breakdown.as_ref());
    let steps = &query.series;
    let filter = &query.funnels_filter;
    let streams = actor_streams(db, ctx, query, funnel, actor, range, breakdown)?;
    let viz = filter.viz.unwrap_or(FunnelViz::Steps);
    if viz == FunnelViz::Trends {
        return trends(ctx, query, funnel, range, &streams.rows);
    }
    let strip = |outcomes: Vec<(u64, Outcome)>| -> Vec<Outcome> {
        outcomes.into_iter().map(|(_, o)| o).collect()
    };
    if viz == FunnelViz::TimeToConvert {
        let by_value = setup.outcomes(ctx, query, &streams)?;
        let outcomes: Vec<Outcome> = by_value.into_values().flat_map(strip).collect();
        return time_to_convert(query, funnel, &outcomes);
    }
    let names = step_names(steps, funnel.order);
    let Some(breakdown) = breakdown else {
        let mut by_value = setup.outcomes(ctx, query, &streams)?;
        let outcomes = strip(by_value.remove("").unwrap_or_default());
        return Ok(
            json!({"results": step_results(&names, steps, funnel, &outcomes, None), "is_cached": false}),
        );
    };
    let ranked = setup.ranked(ctx, query, &streams, breakdown.limit)?;
    let results: Vec<Value> = ranked
        .into_iter()
        .map(|(value, outcomes)| {
            let shown = breakdown_json(breakdown, &value);
            Value::Array(step_results(
                &names,
                steps,
                funnel,
                &strip(outcomes),
                Some(&shown),
            ))
        })
        .collect();
    Ok(json!({"results": results, "is_cached": false}))
}

/// The actors of one funnel step (`funnelStep` n: reached step n; −n:
/// reached the step before n and not n) under one breakdown value, or of
/// one entrance period of conversion trends.
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &FunnelsQuery,
    cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let setup = Setup::new(db, ctx, query)?;
    let funnel = &setup.funnel;
    let streams = actor_streams(
        db,
        ctx,
        query,
        funnel,
        setup.actor,
        &setup.range,
        setup.breakdown.as_ref(),
    )?;
    let mut chosen: HashMap<u64, Facts> = HashMap::new();
    // Only actors who converted to a later step have a time to convert.
    let converted;
    let viz = query.funnels_filter.viz.unwrap_or(FunnelViz::Steps);
    if let Some((start, drop_off)) = cell.funnel_trends()? {
        if viz != FunnelViz::Trends {
            return Err(QueryError::invalid(
                "query.source.funnelTrendsEntrancePeriodStart",
                "only a conversion trends funnel (funnelVizType trends) has entrance periods",
            ));
        }
        let (from_step, to_step) = trend_steps(query, funnel)?;
        converted = !drop_off;
        let buckets = setup.range.buckets(ctx);
        dates::check_buckets(&buckets)?;
        let period = buckets
            .iter()
            .position(|b| {
                day_string(*b, setup.range.interval) == start
                    || b.format("%Y-%m-%dT%H:%M:%S").to_string() == start
            })
            .ok_or_else(|| {
                QueryError::invalid(
                    "query.source.funnelTrendsEntrancePeriodStart",
                    format!("`{start}` is not one of the insight's `days`"),
                )
            })?;
        entrances(
            ctx,
            funnel,
            &setup.range,
            &buckets,
            &streams.rows,
            |p, n, outcome| {
                // The period's entrants: those who converted, or (drop-offs)
                // those who entered and did not.
                if p == period
                    && outcome.reached >= from_step
                    && (outcome.reached >= to_step) != drop_off
                {
                    chosen.insert(
                        streams.hashes[n],
                        Facts {
                            seconds_to_convert: (!drop_off)
                                .then(|| seconds_between(outcome, from_step, to_step))
                                .flatten(),
                            ..Facts::default()
                        },
                    );
                }
            },
        )?;
    } else {
        let Some(step) = cell.funnel_step() else {
            return Err(QueryError::invalid(
                "query.source.funnelStep",
                "name the step: n for the actors who reached step n, -n for those who dropped off before it",
            ));
        };
        let n = funnel.steps as i64;
        if step == 0 || step.abs() > n {
            return Err(QueryError::invalid(
                "query.source.funnelStep",
                format!("must be between 1 and {n}, or -{n} and -2 for drop-offs"),
            ));
        }
        let at = step.unsigned_abs() as usize - 1;
        converted = step > 1;
        // Drop-offs reached the last required step before this one.
        let before = if step < 0 {
            let before = (0..at)
                .rev()
                .find(|j| !funnel.optional[*j])
                .ok_or_else(|| {
                    QueryError::invalid(
                        "query.source.funnelStep",
                        "nobody drops off before the first step",
                    )
                })?;
            Some(before)
        } else {
            None
        };
        let outcomes: Vec<(u64, Outcome)> = match (&setup.breakdown, cell.funnel_step_breakdown()) {
            (_, None) => setup
                .outcomes(ctx, query, &streams)?
                .into_values()
                .flatten()
                .collect(),
            (None, Some(_)) => {
                return Err(QueryError::invalid(
                    "query.source.funnelStepBreakdown",
                    "the insight has no breakdown",
                ))
            }
            (Some(b), Some(value)) => {
                let mut text = b.text_of(value, "query.source.funnelStepBreakdown")?;
                let ranked = setup.ranked(ctx, query, &streams, b.limit)?;
                // The response shows "Other" for the values past the limit.
                if text == "Other" && !ranked.iter().any(|(v, _)| v == "Other") {
                    text = OTHER_LABEL.to_string();
                }
                ranked
                    .into_iter()
                    .find(|(v, _)| *v == text)
                    .map(|(_, outcomes)| outcomes)
                    .unwrap_or_default()
            }
        };
        for (hash, outcome) in outcomes {
            let counted = match before {
                None => outcome.counts_at(at, &funnel.optional),
                Some(before) => {
                    outcome.counts_at(before, &funnel.optional)
                        && !outcome.counts_at(at, &funnel.optional)
                }
            };
            if counted {
                let seconds = (before.is_none() && at > 0)
                    .then(|| seconds_between(&outcome, 0, at))
                    .flatten();
                chosen.insert(
                    hash,
                    Facts {
                        seconds_to_convert: seconds,
                        ..Facts::default()
                    },
                );
            }
        }
    }
    let (from, to) = (instant(ctx, setup.range.from), instant(ctx, setup.range.to));
    Ok(ActorSet {
        actor: setup.actor,
        rows: resolve(db, ctx, setup.actor, (from, to), chosen, filter)?,
        facts: if converted {
            vec![Fact::TimeToConvert]
        } else {
            Vec::new()
        },
    })
}

/// Seconds from step `from` to step `to` of the attempt, if it took both.
fn seconds_between(outcome: &Outcome, from: usize, to: usize) -> Option<f64> {
    Some((outcome.times.get(to).copied()?? - outcome.times.get(from).copied()??) as f64 / 1e6)
}

fn optional_steps(steps: &[EventsNode], order: FunnelOrder) -> Result<Vec<bool>> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let optional = s.optional_in_funnel.unwrap_or(false);
            if optional && (i == 0 || order == FunnelOrder::Unordered) {
                return Err(QueryError::invalid(
                    format!("series[{i}].optionalInFunnel"),
                    "only later steps of ordered or strict funnels can be optional",
                ));
            }
            Ok(optional)
        })
        .collect()
}

fn exclusions(query: &FunnelsQuery, order: FunnelOrder) -> Result<Vec<(usize, usize)>> {
    let n = query.series.len();
    query
        .funnels_filter
        .exclusions
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let field = format!("funnelsFilter.exclusions[{i}]");
            if x.from_step >= x.to_step || x.to_step >= n {
                return Err(QueryError::invalid(
                    field,
                    format!(
                        "funnelFromStep must be before funnelToStep, both within the {n} steps"
                    ),
                ));
            }
            if order == FunnelOrder::Unordered && (x.from_step != 0 || x.to_step != n - 1) {
                return Err(QueryError::invalid(
                    field,
                    "exclusions of unordered funnels span the whole funnel",
                ));
            }
            Ok((x.from_step, x.to_step))
        })
        .collect()
}

/// SQL that is true when an event matches a step or exclusion node.
fn node_sql(scan: &mut Scan<'_>, node: &EventsNode, field: &str) -> Result<String> {
    scan.matches(node.event.as_deref(), &node.properties, field)
}

/// SQL true when an event matches a step. With `first_time_for_user`, as
/// PostHog: only the actor's first-ever event of the step's name (over all
/// time up to `to`, whoever of a merged person sent it; a group's first for
/// groups), and only if that event passes the step's filters; so an actor
/// whose first one precedes the range never enters at that step.
fn step_sql(
    scan: &mut Scan<'_>,
    node: &EventsNode,
    field: &str,
    actor: Actor,
    to: DateTime<Utc>,
) -> Result<String> {
    let matches = node_sql(scan, node, field)?;
    match node.math {
        None | Some(Math::Total) => Ok(matches),
        Some(Math::FirstTimeForUser) => {
            let d = scan.dialect();
            let mut first = Scan::new(scan.ctx(), d, DateTime::UNIX_EPOCH, to);
            first.event(node.event.as_deref());
            first.require_actor(actor);
            let ok = first
                .predicate(&node.properties, &format!("{field}.properties"))?
                .unwrap_or_else(|| "TRUE".into());
            let a = first.actor(actor);
            Ok(format!(
                "({matches} AND e.uuid IN (SELECT u FROM (SELECT {u} AS u, \
                 {ok} AS ok {fw} GROUP BY {a}) WHERE ok))",
                u = d.first_by("e.uuid", "e.timestamp", None),
                ok = d.first_by(&format!("coalesce({ok}, FALSE)"), "e.timestamp", None),
                fw = first.from_where(),
            ))
        }
        Some(other) => Err(QueryError::invalid(
            format!("{field}.math"),
            format!(
                "funnel steps take math total or first_time_for_user, not {}",
                serde_json::to_value(other).unwrap_or_default()
            ),
        )),
    }
}

fn mask_sql(d: &dyn Dialect, conditions: &[String]) -> String {
    if conditions.is_empty() {
        return "0".into();
    }
    let terms: Vec<String> = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "CASE WHEN coalesce({c}, FALSE) THEN {} ELSE 0 END",
                1u32 << i
            )
        })
        .collect();
    d.integer(&terms.join(" + "))
}

/// Every actor's rows in time order, read from the events.
struct Streams {
    /// One stream per actor.
    rows: Vec<Vec<Row>>,
    /// The actor of each stream.
    hashes: Vec<u64>,
    /// The interned breakdown values.
    values: Vec<String>,
}

/// Each actor's rows in time order, the actors' hashes, and the interned
/// breakdown values.
fn actor_streams(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &FunnelsQuery,
    funnel: &Funnel,
    actor: Actor,
    range: &Range,
    breakdown: Option<&Breakdown>,
) -> Result<Streams> {
    let (from, to) = (instant(ctx, range.from), instant(ctx, range.to));
    let d = db.dialect();
    let mut scan = Scan::new(ctx, d, from, to);
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    let steps: Vec<String> = query
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| step_sql(&mut scan, s, &format!("series[{i}]"), actor, to))
        .collect::<Result<_>>()?;
    let exclusions: Vec<String> = query
        .funnels_filter
        .exclusions
        .iter()
        .enumerate()
        .map(|(i, x)| {
            node_sql(
                &mut scan,
                &x.node,
                &format!("funnelsFilter.exclusions[{i}]"),
            )
        })
        .collect::<Result<_>>()?;
    // Strict funnels need every event of the actor: any event breaks a chain.
    let names: Vec<&EventsNode> = query
        .series
        .iter()
        .chain(query.funnels_filter.exclusions.iter().map(|x| &x.node))
        .collect();
    let by_name = funnel.order != FunnelOrder::Strict && names.iter().all(|n| n.event.is_some());
    if by_name {
        let list: Vec<String> = names
            .iter()
            .filter_map(|n| n.event.as_deref())
            .map(|name| d.string(name))
            .collect();
        scan.condition(format!("e.event IN ({})", list.join(", ")));
    }
    // Exclusion masks and breakdown values only when asked for: constant
    // columns still cost the sort (1.4 ms of a 9 ms funnel scan). They
    // follow `hash, t, m`, in this order.
    let mut extra: Vec<(&str, String)> = Vec::new();
    if !exclusions.is_empty() {
        extra.push(("x", mask_sql(d, &exclusions)));
    }
    if let Some(b) = breakdown {
        extra.push(("v", b.raw_sql(&mut scan)?));
    }
    let column_of = |name: &str| extra.iter().position(|(n, _)| *n == name).map(|i| 3 + i);
    let (x_column, v_column) = (column_of("x"), column_of("v"));
    let a = scan.actor(actor);
    // Strict funnels keep every event; with the names filtered, the rest
    // match a step or an exclusion already (unless only by name).
    let keep = if funnel.order == FunnelOrder::Strict || by_name {
        "TRUE"
    } else if exclusions.is_empty() {
        "m <> 0"
    } else {
        "m <> 0 OR x <> 0"
    };
    let outer: String = extra.iter().map(|(name, _)| format!(", {name}")).collect();
    let inner: String = extra
        .iter()
        .map(|(name, sql)| format!(", {sql} AS {name}"))
        .collect();
    let sql = format!(
        "SELECT {hash}, t, m{outer} FROM (
           SELECT {a} AS a, {t} AS t, {m} AS m{inner} {fw}
         ) WHERE {keep} ORDER BY 1, 2, m",
        hash = d.hash(&["a"]),
        t = d.epoch_micros("e.timestamp"),
        m = mask_sql(d, &steps),
        fw = scan.from_where(),
    );
    let mut streams: Vec<Vec<Row>> = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    let mut values = Interner::default();
    let mut last_actor = None;
    for_each_batch(db, &sql, |batch| {
        let actors = column::<UInt64Array>(batch, 0)?;
        let times = column::<Int64Array>(batch, 1)?;
        let masks = column::<Int32Array>(batch, 2)?;
        let excluded = x_column
            .map(|i| column::<Int32Array>(batch, i))
            .transpose()?;
        let texts = v_column
            .map(|i| column::<StringArray>(batch, i))
            .transpose()?;
        for i in 0..batch.num_rows() {
            let value = texts
                .as_ref()
                .filter(|texts| !texts.is_null(i))
                .map(|texts| values.id(texts.value(i)));
            if last_actor != Some(actors.value(i)) {
                last_actor = Some(actors.value(i));
                streams.push(Vec::new());
                hashes.push(actors.value(i));
            }
            let event = Event {
                t: times.value(i),
                steps: masks.value(i) as u32,
                exclusions: excluded.as_ref().map_or(0, |x| x.value(i) as u32),
            };
            // A row that only matched by name carries nothing (strict
            // funnels need it: it breaks a chain).
            let inert =
                event.steps == 0 && event.exclusions == 0 && funnel.order != FunnelOrder::Strict;
            if let (Some(stream), false) = (streams.last_mut(), inert) {
                stream.push(Row { event, value });
            }
        }
        Ok(())
    })?;
    // At equal times, earlier steps first (SQL ordered by the mask).
    for stream in &mut streams {
        stream.sort_by_key(|r| (r.event.t, r.event.steps.trailing_zeros()));
    }
    Ok(Streams {
        rows: streams,
        hashes,
        values: values.into_texts(),
    })
}

/// The actor's outcomes per breakdown value (its id; `None`: the events
/// lack the property) under the attribution rule, each given to `each`.
fn attribute(
    funnel: &Funnel,
    rows: &[Row],
    attribution: Attribution,
    step: usize,
    each: &mut dyn FnMut(Option<u32>, Outcome),
) {
    let events = rows.iter().map(|r| r.event);
    match attribution {
        Attribution::FirstTouch => {
            if let Some(outcome) = funnel.run(events) {
                each(rows.iter().find_map(|r| r.value), outcome);
            }
        }
        Attribution::LastTouch => {
            if let Some(outcome) = funnel.run(events) {
                each(rows.iter().rev().find_map(|r| r.value), outcome);
            }
        }
        Attribution::AllEvents => {
            let mut seen: Vec<Option<u32>> = rows.iter().map(|r| r.value).collect();
            seen.sort_unstable();
            seen.dedup();
            for v in seen {
                let events = rows.iter().filter(|r| r.value == v).map(|r| r.event);
                if let Some(outcome) = funnel.run(events) {
                    each(v, outcome);
                }
            }
        }
        Attribution::Step => {
            let mut candidates: Vec<Option<u32>> = rows
                .iter()
                .filter(|r| r.event.matches(step))
                .map(|r| r.value)
                .collect();
            // A step event without the property is the candidate "" (PostHog's
            // `['']`); tried last, so a real value wins a tie.
            candidates.sort_unstable_by_key(|v| (v.is_none(), *v));
            candidates.dedup();
            if candidates.is_empty() {
                candidates.push(None);
            }
            let mut best: Option<(Option<u32>, Outcome)> = None;
            for candidate in candidates {
                // The step's event must carry the candidate value.
                let events = rows.iter().map(|r| {
                    let mut e = r.event;
                    if r.value != candidate {
                        e.steps &= !(1 << step);
                    }
                    e
                });
                if let Some(outcome) = funnel.run(events) {
                    if best
                        .as_ref()
                        .is_none_or(|(_, b)| outcome.reached > b.reached)
                    {
                        best = Some((candidate, outcome));
                    }
                }
            }
            if let Some((value, outcome)) = best {
                each(value, outcome);
            }
        }
    }
}

/// Breakdown values ranked by their counts at the last step, then the one
/// before, and so on; those past the limit are merged into "Other".
fn rank<T>(
    by_value: HashMap<String, Vec<T>>,
    funnel: &Funnel,
    limit: usize,
    outcome: impl Fn(&T) -> &Outcome,
) -> Vec<(String, Vec<T>)> {
    let counts = |outcomes: &[T]| -> Vec<usize> {
        (0..funnel.steps)
            .rev()
            .map(|s| {
                outcomes
                    .iter()
                    .filter(|o| outcome(o).counts_at(s, &funnel.optional))
                    .count()
            })
            .collect()
    };
    let mut ranked: Vec<(Vec<usize>, String, Vec<T>)> = by_value
        .into_iter()
        .map(|(v, o)| (counts(&o), v, o))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let rest = ranked.split_off(ranked.len().min(limit));
    let mut kept: Vec<(String, Vec<T>)> = ranked.into_iter().map(|(_, v, o)| (v, o)).collect();
    if !rest.is_empty() {
        kept.push((
            OTHER_LABEL.to_string(),
            rest.into_iter().flat_map(|(_, _, o)| o).collect(),
        ));
    }
    kept
}

/// Funnel breakdown values: arrays for event and person properties,
/// strings for group properties.
fn breakdown_json(breakdown: &Breakdown, value: &str) -> Value {
    let shown = if value == OTHER_LABEL { "Other" } else { value };
    if breakdown.is_group() {
        json!(shown)
    } else if breakdown.is_multi() && value != OTHER_LABEL {
        json!(breakdown.parts_of(value))
    } else {
        json!([shown])
    }
}

fn step_names(steps: &[EventsNode], order: FunnelOrder) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| match order {
            FunnelOrder::Unordered => {
                format!("Completed {} step{}", i + 1, if i == 0 { "" } else { "s" })
            }
            _ => s.event.clone().unwrap_or_else(|| "All events".into()),
        })
        .collect()
}

fn step_results(
    names: &[String],
    steps: &[EventsNode],
    funnel: &Funnel,
    outcomes: &[Outcome],
    breakdown: Option<&Value>,
) -> Vec<Value> {
    (0..funnel.steps)
        .map(|i| {
            let count = outcomes
                .iter()
                .filter(|o| o.counts_at(i, &funnel.optional))
                .count();
            let mut durations: Vec<f64> = if i == 0 {
                Vec::new()
            } else {
                outcomes
                    .iter()
                    .filter_map(|o| o.seconds_to(i))
                    .filter(|d| *d > 0.0)
                    .collect()
            };
            durations.sort_by(f64::total_cmp);
            let average = (!durations.is_empty())
                .then(|| durations.iter().sum::<f64>() / durations.len() as f64);
            let median = quantile(&durations, 0.5);
            let node = &steps[i];
            // Unordered steps are "Completed n steps", not one event.
            let action_id = match funnel.order {
                FunnelOrder::Unordered => None,
                _ => node.event.as_deref(),
            };
            let mut step = json!({
                "action_id": action_id,
                "name": names[i],
                "custom_name": node.custom_name,
                "order": i,
                "count": count,
                "type": "events",
                "average_conversion_time": average,
                "median_conversion_time": median,
                "people": [],
            });
            if let Some(value) = breakdown {
                step["breakdown"] = value.clone();
                step["breakdown_value"] = value.clone();
            }
            step
        })
        .collect()
}

/// The histogram of conversion times between two steps (§2.10).
fn time_to_convert(query: &FunnelsQuery, funnel: &Funnel, outcomes: &[Outcome]) -> Result<Value> {
    let filter = &query.funnels_filter;
    let from = filter.from_step.unwrap_or(0);
    let to = filter.to_step.unwrap_or(funnel.steps - 1);
    if from >= to || to >= funnel.steps {
        return Err(QueryError::invalid(
            "funnelsFilter.funnelToStep",
            "must be after funnelFromStep and within the steps",
        ));
    }
    let times: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.reached >= to)
        .filter_map(|o| Some((o.times[to]? - o.times[from]?) as f64 / 1e6))
        .collect();
    if times.is_empty() {
        return Ok(
            json!({"results": {"bins": [], "average_conversion_time": null}, "is_cached": false}),
        );
    }
    let bins = match filter.bin_count {
        Some(n) => n.clamp(1, 90),
        None => ((times.len() as f64).cbrt().ceil() as usize).clamp(1, 60),
    };
    let min = times.iter().copied().fold(f64::INFINITY, f64::min).floor();
    let max = times
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil();
    let width = match ((max - min) / bins as f64).ceil() {
        w if w > 0.0 => w,
        _ => 60.0,
    };
    let mut counts = vec![0u64; bins + 1];
    for t in &times {
        let k = (((t - min) / width).floor() as usize).min(bins);
        counts[k] += 1;
    }
    let histogram: Vec<Value> = counts
        .iter()
        .enumerate()
        .map(|(k, c)| json!([number(min + k as f64 * width), c]))
        .collect();
    let average = times.iter().sum::<f64>() / times.len() as f64;
    Ok(
        json!({"results": {"bins": histogram, "average_conversion_time": average}, "is_cached": false}),
    )
}

/// Conversion rate per entrance period (§2.11): an actor enters in the
/// period of a first-step event and converts if that attempt reaches the
/// target step within the window.
fn trends(
    ctx: &ProjectContext,
    query: &FunnelsQuery,
    funnel: &Funnel,
    range: &Range,
    streams: &[Vec<Row>],
) -> Result<Value> {
    let (from_step, to_step) = trend_steps(query, funnel)?;
    let buckets = range.buckets(ctx);
    dates::check_buckets(&buckets)?;
    let mut entered = vec![0u64; buckets.len()];
    let mut converted = vec![0u64; buckets.len()];
    entrances(
        ctx,
        funnel,
        range,
        &buckets,
        streams,
        |period, _, outcome| {
            if outcome.reached >= from_step {
                entered[period] += 1;
                converted[period] += u64::from(outcome.reached >= to_step);
            }
        },
    )?;
    let rates: Vec<Value> = entered
        .iter()
        .zip(&converted)
        .map(|(e, c)| {
            if *e == 0 {
                json!(0)
            } else {
                number((*c as f64 / *e as f64 * 10_000.0).round() / 100.0)
            }
        })
        .collect();
    Ok(json!({
        "results": [{
            "count": buckets.len(),
            "data": rates,
            "days": buckets.iter().map(|b| day_string(*b, range.interval)).collect::<Vec<_>>(),
            "labels": buckets.iter().map(|b| dates::label(*b, range.interval)).collect::<Vec<_>>(),
            "reached_from_step_count": entered,
            "reached_to_step_count": converted,
        }],
        "is_cached": false,
    }))
}

/// The steps conversion trends convert between.
fn trend_steps(query: &FunnelsQuery, funnel: &Funnel) -> Result<(usize, usize)> {
    let filter = &query.funnels_filter;
    let from_step = filter.from_step.unwrap_or(0);
    let to_step = filter.to_step.unwrap_or(funnel.steps - 1);
    if from_step >= to_step || to_step >= funnel.steps {
        return Err(QueryError::invalid(
            "funnelsFilter.funnelToStep",
            "must be after funnelFromStep and within the steps",
        ));
    }
    Ok((from_step, to_step))
}

/// Calls `each(period, actor index, outcome)` for each entrance period of
/// each actor: the attempt started by its first-step events in that period
/// (`buckets`, `range`'s).
fn entrances(
    ctx: &ProjectContext,
    funnel: &Funnel,
    range: &Range,
    buckets: &[NaiveDateTime],
    streams: &[Vec<Row>],
    mut each: impl FnMut(usize, usize, &Outcome),
) -> Result<()> {
    let index: HashMap<i64, usize> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.and_utc().timestamp_micros(), i))
        .collect();
    let period_of = |t: i64| {
        let local = dates::local(
            ctx,
            chrono::DateTime::from_timestamp_micros(t).unwrap_or_default(),
        );
        index
            .get(
                &dates::align(local, range.interval, ctx.week_start)
                    .and_utc()
                    .timestamp_micros(),
            )
            .copied()
    };
    for (n, rows) in streams.iter().enumerate() {
        if n % 1024 == 0 {
            ctx.budget.check()?;
        }
        let mut periods: Vec<usize> = rows
            .iter()
            .filter(|r| r.event.steps & 1 != 0)
            .filter_map(|r| period_of(r.event.t))
            .collect();
        periods.dedup();
        for period in periods {
            // Only first steps in this period start attempts.
            let events = rows.iter().map(|r| {
                let mut e = r.event;
                if period_of(e.t) != Some(period) {
                    e.steps &= !1;
                }
                e
            });
            if let Some(outcome) = funnel.run(events) {
                each(period, n, &outcome);
            }
        }
    }
    Ok(())
}
