//! Trends (spec/insights.md §1): one value per bucket (or per range) for each
//! series, counted as events, persons, groups, sessions or property math,
//! with breakdowns, formulas, comparison and cumulative displays.

use std::collections::HashMap;

use arrow_array::{Array, Float64Array, Int64Array, StringArray};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use cairn_core::names;
use cairn_store::dialect::Dialect;
use cairn_store::EventScanner;

use crate::actors::{ActorFilter, ActorRow, ActorSet, Cell, Fact, Facts};
use crate::breakdown::{one_of, top_values, Breakdown, NULL_LABEL, OTHER_LABEL};
use crate::context::ProjectContext;
use crate::dates::{self, day_string, instant, Range};
use crate::error::{QueryError, Result};
use crate::formula::Formula;
use crate::limits;
use crate::nodes::{
    Display, EventsNode, Interval, Math, MathPropertyType, PropertyKind, TrendsQuery,
};
use crate::number;
use crate::sql::{
    bucket_sql, column, earliest_event, for_each_batch, local_time_sql, timestamp, Actor, Scan,
};

/// One series' values: per breakdown value (in rank order), one per bucket.
struct SeriesValues {
    rows: Vec<(String, Vec<f64>)>,
    has_more: bool,
}

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &TrendsQuery) -> Result<Value> {
    if query.series.is_empty() {
        return Err(QueryError::invalid(
            "series",
            "a trend needs at least one series",
        ));
    }
    limits::check_count("series", "series", query.series.len(), limits::MAX_SERIES)?;
    let formulas = formulas(query)?;
    let frame = Frame::new(db, ctx, query)?;
    let (display, total_value) = (frame.display, frame.total_value);
    let (breakdown, periods) = (&frame.breakdown, &frame.periods);
    let all_buckets = frame.range.buckets(ctx);
    dates::check_buckets(&all_buckets)?;
    let bucket_count = all_buckets.len();
    limits::check_cells(
        "query",
        &[
            ("buckets", if total_value { 1 } else { bucket_count }),
            (
                "breakdown values (breakdown_limit and Other)",
                breakdown.as_ref().map_or(1, |b| b.limit.saturating_add(1)),
            ),
            ("series and formulas", query.series.len() + formulas.len()),
            ("periods", periods.len()),
        ],
        limits::MAX_TREND_CELLS,
    )?;

    let mut results = Vec::new();
    let mut has_more = false;
    for (range, compare_label) in periods {
        let buckets = frame.buckets(ctx, range);
        let mut all = Vec::new();
        for (i, series) in query.series.iter().enumerate() {
            let values = series_values(
                db,
                ctx,
                query,
                i,
                series,
                range,
                &buckets,
                breakdown.as_ref(),
                display,
            )?;
            has_more |= values.has_more;
            all.push(values);
        }
        let shape = Shape {
            ctx,
            range,
            buckets: &buckets,
            total_value,
            compare_label: *compare_label,
            breakdown: breakdown.as_ref(),
        };
        if formulas.is_empty() {
            for (i, (series, values)) in query.series.iter().zip(&all).enumerate() {
                for (value, data) in &values.rows {
                    let label = series_label(
                        &series.display_name(),
                        breakdown.as_ref(),
                        value,
                        query.series.len(),
                    );
                    results.push(shape.result(label, action_json(series, i), value, data.clone()));
                }
            }
        } else {
            for (order, (formula, text, custom_name)) in formulas.iter().enumerate() {
                for (value, data) in formula_rows(formula, &all, buckets.len()) {
                    let name = custom_name
                        .clone()
                        .unwrap_or_else(|| format!("Formula ({text})"));
                    // PostHog labels a formula row by the formula alone; the
                    // breakdown value stays in `breakdown_value`.
                    let mut result = shape.result(name, Value::Null, &value, data);
                    result["order"] = json!(order);
                    results.push(result);
                }
            }
        }
    }
    Ok(json!({
        "results": results,
        "hasMore": has_more,
        "timezone": ctx.timezone.name(),
        "is_cached": false,
        "last_refresh": ctx.now,
    }))
}

/// What every series of a trend shares: how it is shown, its breakdown
/// and its periods (the range, and the one it is compared to).
struct Frame {
    display: Display,
    total_value: bool,
    interval: Interval,
    breakdown: Option<Breakdown>,
    range: Range,
    periods: Vec<(Range, Option<&'static str>)>,
}

impl Frame {
    fn new(db: &dyn EventScanner, ctx: &ProjectContext, query: &TrendsQuery) -> Result<Self> {
        let display = query
            .trends_filter
            .display
            .unwrap_or(Display::ActionsLineGraph);
        let total_value = display.is_total_value();
        let interval = if total_value {
            Interval::Day
        } else {
            query.interval.unwrap_or(Interval::Day)
        };
        let breakdown = Breakdown::parse(&query.breakdown_filter)?;
        let events: Vec<Option<&str>> = query.series.iter().map(|s| s.event.as_deref()).collect();
        let range = Range::resolve(ctx, &query.date_range, interval, || {
            earliest_event(db, ctx, &events)
        })?;
        let periods = dates::compare_periods(ctx, &range, &query.compare_filter)?;
        Ok(Self {
            display,
            total_value,
            interval,
            breakdown,
            range,
            periods,
        })
    }

    /// The local starts of `range`'s buckets (one for total values).
    fn buckets(&self, ctx: &ProjectContext, range: &Range) -> Vec<NaiveDateTime> {
        if self.total_value {
            vec![range.from]
        } else {
            range.buckets(ctx)
        }
    }
}

/// `(formula, its text, custom name)` from `formula`, `formulas` or `formulaNodes`.
fn formulas(query: &TrendsQuery) -> Result<Vec<(Formula, String, Option<String>)>> {
    let filter = &query.trends_filter;
    let n = query.series.len();
    let mut out = Vec::new();
    if let Some(nodes) = &filter.formula_nodes {
        for (i, node) in nodes.iter().enumerate() {
            let field = format!("trendsFilter.formulaNodes[{i}].formula");
            out.push((
                Formula::parse(&node.formula, n, &field)?,
                node.formula.clone(),
                node.custom_name.clone(),
            ));
        }
    } else if let Some(texts) = &filter.formulas {
        for (i, text) in texts.iter().enumerate() {
            out.push((
                Formula::parse(text, n, &format!("trendsFilter.formulas[{i}]"))?,
                text.clone(),
                None,
            ));
        }
    } else if let Some(text) = filter.formula.as_deref().filter(|t| !t.trim().is_empty()) {
        out.push((
            Formula::parse(text, n, "trendsFilter.formula")?,
            text.to_string(),
            None,
        ));
    }
    Ok(out)
}

/// Applies a formula per breakdown value; a series without that value
/// contributes zeros.
fn formula_rows(formula: &Formula, all: &[SeriesValues], points: usize) -> Vec<(String, Vec<f64>)> {
    // Each series' rows by value, and every value in first-seen order
    // (maps, so thousands of breakdown values cost no quadratic search).
    let by_value: Vec<HashMap<&str, &Vec<f64>>> = all
        .iter()
        .map(|s| s.rows.iter().map(|(v, d)| (v.as_str(), d)).collect())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let values: Vec<&str> = all
        .iter()
        .flat_map(|s| &s.rows)
        .map(|(value, _)| value.as_str())
        .filter(|value| seen.insert(*value))
        .collect();
    values
        .into_iter()
        .map(|value| {
            let per_series: Vec<Option<&&Vec<f64>>> =
                by_value.iter().map(|rows| rows.get(value)).collect();
            let data = (0..points)
                .map(|k| {
                    let point: Vec<f64> =
                        per_series.iter().map(|d| d.map_or(0.0, |d| d[k])).collect();
                    formula.eval(&point)
                })
                .collect();
            (value.to_string(), data)
        })
        .collect()
}

fn series_label(name: &str, breakdown: Option<&Breakdown>, value: &str, series: usize) -> String {
    match breakdown {
        None => name.to_string(),
        Some(b) if series == 1 => b.label(value),
        Some(b) => format!("{name} - {}", b.label(value)),
    }
}

fn action_json(series: &EventsNode, order: usize) -> Value {
    json!({
        "id": series.event,
        "type": "events",
        "order": order,
        "name": series.event.clone().unwrap_or_else(|| "All events".into()),
        "custom_name": series.custom_name,
        "math": series.math.unwrap_or(Math::Total),
        "math_property": series.math_property,
        "math_group_type_index": series.math_group_type_index,
    })
}

/// What every result of one period shares.
struct Shape<'a> {
    ctx: &'a ProjectContext,
    range: &'a Range,
    buckets: &'a [NaiveDateTime],
    total_value: bool,
    compare_label: Option<&'static str>,
    breakdown: Option<&'a Breakdown>,
}

impl Shape<'_> {
    fn result(&self, label: String, action: Value, value: &str, data: Vec<f64>) -> Value {
        let interval = self.range.interval;
        let mut result = json!({
            "action": action,
            "label": label,
            "filter": {
                "interval": interval,
                "date_from": instant(self.ctx, self.range.from),
                "date_to": instant(self.ctx, self.range.to),
            },
        });
        if self.total_value {
            let total = data.first().copied().unwrap_or(0.0);
            result["aggregated_value"] = number(total);
            result["count"] = number(total);
            result["data"] = json!([]);
            result["days"] = json!([]);
            result["labels"] = json!([]);
        } else {
            result["count"] = number(data.iter().sum());
            result["days"] = self
                .buckets
                .iter()
                .map(|b| json!(day_string(*b, interval)))
                .collect();
            result["labels"] = self
                .buckets
                .iter()
                .map(|b| json!(dates::label(*b, interval)))
                .collect();
            result["data"] = data.into_iter().map(number).collect();
        }
        if let Some(breakdown) = self.breakdown {
            result["breakdown_value"] = breakdown.value_json(value);
        }
        if let Some(compare_label) = self.compare_label {
            result["compare"] = json!(true);
            result["compare_label"] = json!(compare_label);
        }
        result
    }
}

/// Whom a series counts: the groups of its type for unique or active
/// groups, else persons.
fn series_actor(ctx: &ProjectContext, series: &EventsNode, field: &str) -> Result<Actor> {
    let math = series.math.unwrap_or(Math::Total);
    let group = match series.math_group_type_index {
        Some(i) => Some(ctx.group_type(i, &format!("{field}.math_group_type_index"))?),
        None => None,
    };
    match (math, group) {
        (Math::UniqueGroup, None) => Err(QueryError::invalid(
            format!("{field}.math_group_type_index"),
            "unique_group counts groups of one type; name it with math_group_type_index",
        )),
        (Math::Dau | Math::WeeklyActive | Math::MonthlyActive | Math::UniqueGroup, Some(i)) => {
            Ok(Actor::Group(i))
        }
        _ => Ok(Actor::Person),
    }
}

/// Whom the drill-down's series counts.
pub(crate) fn actor_of_series(
    ctx: &ProjectContext,
    query: &TrendsQuery,
    cell: &Cell,
) -> Result<Actor> {
    let (index, series) = cell.series(&query.series)?;
    series_actor(ctx, series, &format!("series[{index}]"))
}

/// Weekly and monthly active become plain uniques once a bucket is as long
/// as their window.
fn effective_math(math: Math, interval: Interval) -> Math {
    match (math, interval) {
        (Math::WeeklyActive, Interval::Week | Interval::Month) => Math::Dau,
        (Math::MonthlyActive, Interval::Month) => Math::Dau,
        _ => math,
    }
}

/// What one series' statement is built from.
struct SeriesPlan<'a> {
    ctx: &'a ProjectContext,
    d: &'a dyn Dialect,
    query: &'a TrendsQuery,
    series: &'a EventsNode,
    /// `series[i]`, for errors.
    field: String,
    math: Math,
    actor: Actor,
    interval: Interval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    buckets: &'a [NaiveDateTime],
    breakdown: Option<&'a Breakdown>,
    display: Display,
    /// The breakdown values kept: every other one reads as "Other", so that
    /// "Other" counts distinct actors once (see [`series_values`]).
    kept: Option<Vec<String>>,
}

impl<'a> SeriesPlan<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        d: &'a dyn Dialect,
        ctx: &'a ProjectContext,
        query: &'a TrendsQuery,
        index: usize,
        series: &'a EventsNode,
        range: &Range,
        buckets: &'a [NaiveDateTime],
        breakdown: Option<&'a Breakdown>,
        display: Display,
    ) -> Result<Self> {
        let field = format!("series[{index}]");
        let math = effective_math(series.math.unwrap_or(Math::Total), range.interval);
        let actor = series_actor(ctx, series, &field)?;
        let (from, to) = range.instants(ctx);
        Ok(Self {
            ctx,
            d,
            query,
            series,
            field,
            math,
            actor,
            interval: range.interval,
            from,
            to,
            buckets,
            breakdown,
            display,
            kept: None,
        })
    }

    fn total_value(&self) -> bool {
        self.display.is_total_value()
    }

    /// The one "bucket" of total-value displays.
    fn whole_range(&self) -> String {
        self.d.timestamp(DateTime::UNIX_EPOCH.naive_utc())
    }

    /// The series' events from `from` to `to`: the event name and, if
    /// `with_filters`, every property filter.
    fn scan(&self, from: DateTime<Utc>, to: DateTime<Utc>, with_filters: bool) -> Result<Scan<'a>> {
        let mut scan = Scan::new(self.ctx, self.d, from, to);
        scan.event(self.series.event.as_deref());
        if with_filters {
            scan.properties(&self.query.properties, "properties")?;
            scan.properties(
                &self.series.properties,
                &format!("{}.properties", self.field),
            )?;
        }
        Ok(scan)
    }

    /// Buckets stay timestamps while grouping; the outer query turns them
    /// into numbers once per group, not per event.
    fn bucket_of(&self, scan: &Scan<'_>) -> String {
        if self.total_value() {
            self.whole_range()
        } else {
            scan.bucket(self.interval)
        }
    }

    fn breakdown_of(&self, scan: &mut Scan<'_>) -> Result<String> {
        let Some(breakdown) = self.breakdown else {
            return Ok("''".to_string());
        };
        let value = breakdown.sql(scan)?;
        Ok(match &self.kept {
            None => value,
            Some(kept) => format!(
                "CASE WHEN {} THEN {value} ELSE {} END",
                one_of(self.d, &value, kept, false),
                self.d.string(OTHER_LABEL)
            ),
        })
    }

    /// The series' values per breakdown value kept, in rank order, and the
    /// rest summed as "Other".
    fn ranked(&self, db: &dyn EventScanner) -> Result<SeriesValues> {
        let total_value = self.total_value();
        let mut by_value = scan_points(db, &self.sql()?, self.buckets, total_value)?;
        if self.breakdown.is_none() && by_value.is_empty() {
            by_value.insert(String::new(), Vec::new());
        }
        self.ctx.budget.check()?;
        Ok(rank(by_value, self.breakdown, self.buckets.len()))
    }

    /// Whether the series counts distinct actors (or sessions), which a sum
    /// over breakdown values would count once per value.
    fn counts_distinct(&self) -> bool {
        matches!(
            self.math,
            Math::Dau
                | Math::UniqueGroup
                | Math::WeeklyActive
                | Math::MonthlyActive
                | Math::UniqueSession
        )
    }

    /// `SELECT bucket (epoch µs), breakdown value, value` for the series;
    /// each kind of math selects `b` (a local bucket start), `bd` and `v`.
    fn sql(&self) -> Result<String> {
        let sql = match self.math {
            Math::WeeklyActive | Math::MonthlyActive => self.active_sql()?,
            Math::FirstTimeForUser | Math::FirstMatchingEventForUser => self.first_time_sql()?,
            Math::AvgCountPerActor
            | Math::MinCountPerActor
            | Math::MaxCountPerActor
            | Math::MedianCountPerActor
            | Math::P75CountPerActor
            | Math::P90CountPerActor
            | Math::P95CountPerActor
            | Math::P99CountPerActor => self.per_actor_sql()?,
            _ => self.plain_sql()?,
        };
        Ok(format!(
            "SELECT {}, r.bd, r.v FROM ({sql}) AS r",
            self.d.epoch_micros("r.b")
        ))
    }

    /// Weekly or monthly active actors: distinct actors over the window
    /// ending at each bucket.
    fn active_sql(&self) -> Result<String> {
        let d = self.d;
        let days = if self.math == Math::WeeklyActive {
            7
        } else {
            30
        };
        let all = d.group_by_all();
        if self.total_value() {
            let mut scan = self.scan(self.to - TimeDelta::days(days), self.to, true)?;
            scan.require_actor(self.actor);
            let (a, bd) = (scan.actor(self.actor), self.breakdown_of(&mut scan)?);
            return Ok(format!(
                "SELECT {} AS b, {bd} AS bd, {} AS v {} {all}",
                self.whole_range(),
                d.double(&format!("count(DISTINCT {a})")),
                scan.from_where()
            ));
        }
        let first = instant(self.ctx, self.buckets[0] - TimeDelta::days(days));
        let mut scan = self.scan(first, self.to, true)?;
        scan.require_actor(self.actor);
        let (a, bd) = (scan.actor(self.actor), self.breakdown_of(&mut scan)?);
        let day = match self.interval {
            Interval::Hour | Interval::Minute => self.interval,
            _ => Interval::Day,
        };
        let t = bucket_sql(d, &scan.local_time(), day, self.ctx.week_start);
        let starts: Vec<String> = self.buckets.iter().map(|b| d.timestamp(*b)).collect();
        Ok(format!(
            "WITH d AS (SELECT DISTINCT {t} AS t, {bd} AS bd, {a} AS a {fw}),
                  w AS (SELECT {starts} AS b)
             SELECT w.b AS b, d.bd AS bd, {count} AS v
             FROM w JOIN d ON d.t > {window_start} AND d.t <= w.b {all}",
            fw = scan.from_where(),
            starts = d.rows_of(&starts),
            count = d.double("count(DISTINCT d.a)"),
            window_start = d.minus_days("w.b", days),
        ))
    }

    /// First time for user: each person counts once, at their first
    /// event (if that one matches the filters, or their first matching
    /// one).
    fn first_time_sql(&self) -> Result<String> {
        let d = self.d;
        let b = if self.total_value() {
            self.whole_range()
        } else {
            bucket_sql(
                d,
                &local_time_sql(self.ctx, d, "f.ts", self.from, self.to),
                self.interval,
                self.ctx.week_start,
            )
        };
        Ok(format!(
            "SELECT {b} AS b, f.bd AS bd, {count} AS v FROM ({firsts}) f
             WHERE f.ok AND f.ts >= {from} AND f.ts <= {to} {all}",
            count = d.double("count(*)"),
            firsts = self.first_times(&ActorFilter::default())?,
            from = timestamp(d, self.from),
            to = timestamp(d, self.to),
            all = d.group_by_all(),
        ))
    }

    /// Each person's first event (`a`, `ts`), whether it counts (`ok`) and
    /// its breakdown value (`bd`).
    fn first_times(&self, filter: &ActorFilter) -> Result<String> {
        let d = self.d;
        let (query, series, field) = (self.query, self.series, &self.field);
        let matching = self.math == Math::FirstMatchingEventForUser;
        let mut scan = self.scan(DateTime::UNIX_EPOCH, self.to, matching)?;
        filter.apply(&mut scan)?;
        let ok = if matching {
            "TRUE".to_string()
        } else {
            let global = scan.predicate(&query.properties, "properties")?;
            let own = scan.predicate(&series.properties, &format!("{field}.properties"))?;
            match (global, own) {
                (Some(a), Some(b)) => format!("({a} AND {b})"),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => "TRUE".into(),
            }
        };
        let (a, bd) = (scan.actor(Actor::Person), self.breakdown_of(&mut scan)?);
        Ok(format!(
            "SELECT {a} AS a, min(e.timestamp) AS ts, {first_ok} AS ok, {first_bd} AS bd {fw} GROUP BY 1",
            first_ok = d.first_by(&format!("coalesce({ok}, FALSE)"), "e.timestamp", None),
            first_bd = d.first_by(&bd, "e.timestamp", None),
            fw = scan.from_where(),
        ))
    }

    /// An aggregate over persons of each one's event count.
    fn per_actor_sql(&self) -> Result<String> {
        let d = self.d;
        let mut scan = self.scan(self.from, self.to, true)?;
        let (a, bd, b) = (
            scan.actor(Actor::Person),
            self.breakdown_of(&mut scan)?,
            self.bucket_of(&scan),
        );
        Ok(format!(
            "SELECT b, bd, {outer} AS v FROM (SELECT {b} AS b, {bd} AS bd, {a} AS a, count(*) AS c {fw} {all}) {all}",
            outer = d.double(&aggregate(d, self.math, "c")),
            fw = scan.from_where(),
            all = d.group_by_all(),
        ))
    }

    /// Events, actors, sessions or property math per bucket.
    fn plain_sql(&self) -> Result<String> {
        let d = self.d;
        let (math, actor, field) = (self.math, self.actor, &self.field);
        let mut scan = self.scan(self.from, self.to, true)?;
        scan.require_actor(actor);
        let bd = self.breakdown_of(&mut scan)?;
        let b = self.bucket_of(&scan);
        let all = d.group_by_all();
        if self.display == Display::ActionsLineGraphCumulative
            && matches!(math, Math::Dau | Math::UniqueGroup)
        {
            // Each actor counts once, in the first bucket it appears in.
            let a = scan.actor(actor);
            return Ok(format!(
                "SELECT b, bd, {count} AS v FROM (SELECT min({b}) AS b, {bd} AS bd, {a} AS a {fw} GROUP BY bd, a) {all}",
                count = d.double("count(*)"),
                fw = scan.from_where()
            ));
        }
        let value = match math {
            Math::Total => "count(*)".to_string(),
            Math::Dau | Math::UniqueGroup => format!("count(DISTINCT {})", scan.actor(actor)),
            Math::UniqueSession => {
                let session = scan.property(
                    PropertyKind::Event,
                    names::property::SESSION_ID,
                    None,
                    field,
                )?;
                format!("count(DISTINCT {session})")
            }
            _ => {
                let Some(key) = self.series.math_property.as_deref() else {
                    return Err(QueryError::invalid(
                        format!("{field}.math_property"),
                        "this math aggregates a property; name it with math_property",
                    ));
                };
                let kind = match self.series.math_property_type {
                    Some(MathPropertyType::PersonProperties) => PropertyKind::Person,
                    _ => PropertyKind::Event,
                };
                let x = scan.property(kind, key, None, field)?;
                format!("coalesce({}, 0)", aggregate(d, math, &d.try_double(&x)))
            }
        };
        Ok(format!(
            "SELECT {b} AS b, {bd} AS bd, {} AS v {} {all}",
            d.double(&value),
            scan.from_where()
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn series_values(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &TrendsQuery,
    index: usize,
    series: &EventsNode,
    range: &Range,
    buckets: &[NaiveDateTime],
    breakdown: Option<&Breakdown>,
    display: Display,
) -> Result<SeriesValues> {
    let plan = SeriesPlan::new(
        db.dialect(),
        ctx,
        query,
        index,
        series,
        range,
        buckets,
        breakdown,
        display,
    )?;
    let total_value = display.is_total_value();
    let mut values = plan.ranked(db)?;
    // "Other" of distinct actors: an actor with two folded values is one
    // actor, not the sum of two counts (PostHog adds them up), so it is
    // counted again with those values read as one.
    let has_other = values.rows.last().is_some_and(|(v, _)| v == OTHER_LABEL);
    if has_other && plan.counts_distinct() {
        let kept: Vec<String> = values.rows[..values.rows.len() - 1]
            .iter()
            .map(|(v, _)| v.clone())
            .collect();
        let mut folded = plan;
        folded.kept = Some(kept);
        let points = scan_points(db, &folded.sql()?, buckets, total_value)?;
        if let (Some(sparse), Some((_, data))) = (points.get(OTHER_LABEL), values.rows.last_mut()) {
            data.iter_mut().for_each(|v| *v = 0.0);
            for &(k, v) in sparse {
                data[k] += v;
            }
        }
    }
    if display == Display::ActionsLineGraphCumulative {
        for (_, data) in &mut values.rows {
            let mut sum = 0.0;
            for v in data.iter_mut() {
                sum += *v;
                *v = sum;
            }
        }
    }
    if let Some(k) = query.trends_filter.smoothing_intervals.filter(|k| *k > 1) {
        for (_, data) in &mut values.rows {
            *data = smooth(data, k);
        }
    }
    Ok(values)
}

/// Sparse points per breakdown value, `(bucket index, value)`: only the
/// kept values (and Other) become a full row of buckets once ranked,
/// however many distinct values the data holds.
fn scan_points(
    db: &dyn EventScanner,
    sql: &str,
    buckets: &[NaiveDateTime],
    total_value: bool,
) -> Result<HashMap<String, Vec<(usize, f64)>>> {
    let index_of: HashMap<i64, usize> = if total_value {
        HashMap::from([(0, 0)])
    } else {
        buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (b.and_utc().timestamp_micros(), i))
            .collect()
    };
    let mut by_value: HashMap<String, Vec<(usize, f64)>> = HashMap::new();
    for_each_batch(db, sql, |batch| {
        let bucket = column::<Int64Array>(batch, 0)?;
        let value = column::<StringArray>(batch, 1)?;
        let v = column::<Float64Array>(batch, 2)?;
        for i in 0..batch.num_rows() {
            if let Some(&k) = index_of.get(&bucket.value(i)) {
                let v = if v.is_null(i) { 0.0 } else { v.value(i) };
                by_value
                    .entry(value.value(i).to_string())
                    .or_default()
                    .push((k, v));
            }
        }
        Ok(())
    })?;
    Ok(by_value)
}

/// An aggregate of `x` for a property or per-actor math.
fn aggregate(d: &dyn Dialect, math: Math, x: &str) -> String {
    let quantile = |q: f64| d.quantile(x, q);
    match math {
        Math::Sum => format!("sum({x})"),
        Math::Avg | Math::AvgCountPerActor => format!("avg({x})"),
        Math::Min | Math::MinCountPerActor => format!("min({x})"),
        Math::Max | Math::MaxCountPerActor => format!("max({x})"),
        Math::Median | Math::MedianCountPerActor => quantile(0.5),
        Math::P75 | Math::P75CountPerActor => quantile(0.75),
        Math::P90 | Math::P90CountPerActor => quantile(0.9),
        Math::P95 | Math::P95CountPerActor => quantile(0.95),
        _ => quantile(0.99),
    }
}

/// Keeps the top breakdown values; the rest are summed into "Other".
/// Values arrive as sparse `(bucket, value)` points over `points` buckets.
fn rank(
    by_value: HashMap<String, Vec<(usize, f64)>>,
    breakdown: Option<&Breakdown>,
    points: usize,
) -> SeriesValues {
    let dense = |sparse: &[(usize, f64)], data: &mut Vec<f64>| {
        data.resize(points, 0.0);
        for &(k, v) in sparse {
            data[k] += v;
        }
    };
    let Some(breakdown) = breakdown else {
        return SeriesValues {
            rows: by_value
                .into_iter()
                .map(|(value, sparse)| {
                    let mut data = Vec::new();
                    dense(&sparse, &mut data);
                    (value, data)
                })
                .collect(),
            has_more: false,
        };
    };
    let totals = by_value
        .iter()
        .filter(|(value, data)| {
            !(value.as_str() == NULL_LABEL && data.iter().all(|(_, v)| *v == 0.0))
        })
        .map(|(value, data)| (value.clone(), data.iter().map(|(_, v)| v).sum()))
        .collect();
    let (kept, rest) = top_values(totals, breakdown.limit);
    let mut by_value = by_value;
    let mut rows: Vec<(String, Vec<f64>)> = kept
        .into_iter()
        .filter_map(|v| {
            let sparse = by_value.remove(&v)?;
            let mut data = Vec::new();
            dense(&sparse, &mut data);
            Some((v, data))
        })
        .collect();
    let has_more = !rest.is_empty();
    if has_more && !breakdown.hide_other {
        let mut other: Option<Vec<f64>> = None;
        for value in rest {
            if let Some(sparse) = by_value.remove(&value) {
                dense(&sparse, other.get_or_insert_with(Vec::new));
            }
        }
        if let Some(data) = other {
            rows.push((OTHER_LABEL.to_string(), data));
        }
    }
    SeriesValues { rows, has_more }
}

/// The moving average of the last `k` points, floored as PostHog does.
fn smooth(data: &[f64], k: usize) -> Vec<f64> {
    (0..data.len())
        .map(|i| {
            let window = &data[i.saturating_sub(k - 1)..=i];
            (window.iter().sum::<f64>() / window.len() as f64).floor()
        })
        .collect()
}

/// The actors behind one point of a series (or its total): those with a
/// matching event in the point's window, under its breakdown value.
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &TrendsQuery,
    cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let actor = actor_of_series(ctx, query, cell)?;
    let (index, series) = cell.series(&query.series)?;
    if !formulas(query)?.is_empty() {
        return Err(QueryError::invalid(
            "query.source.source.trendsFilter",
            "a formula's values are not counts of actors: drill into one of its series",
        ));
    }
    let frame = Frame::new(db, ctx, query)?;
    let (display, breakdown) = (frame.display, frame.breakdown.as_ref());
    let range = cell.period(&frame.periods)?;
    let buckets = frame.buckets(ctx, range);
    dates::check_buckets(&buckets)?;
    let bucket = cell.bucket(&buckets, frame.interval)?;
    match (frame.total_value, bucket) {
        (true, Some(_)) => {
            return Err(QueryError::invalid(
                "query.source.day",
                "a total-value display has one number per series: drill without a day",
            ))
        }
        (false, None) => {
            return Err(QueryError::invalid(
                "query.source.day",
                "name the point: one of the insight's `days`",
            ))
        }
        _ => {}
    }
    let plan = SeriesPlan::new(
        db.dialect(),
        ctx,
        query,
        index,
        series,
        range,
        &buckets,
        breakdown,
        display,
    )?;
    let values = match cell.breakdown_value(breakdown)? {
        None => None,
        // "Other" holds every value the insight did not keep.
        Some(text) if text == OTHER_LABEL => {
            let kept = plan
                .ranked(db)?
                .rows
                .into_iter()
                .map(|(v, _)| v)
                .filter(|v| v != OTHER_LABEL)
                .collect();
            Some((kept, true))
        }
        Some(text) => Some((vec![text], false)),
    };
    let rows = plan.actor_rows(db, bucket, values.as_ref(), filter)?;
    let mut facts = vec![Fact::EventCount, Fact::FirstEvent, Fact::LastEvent];
    if matches!(
        plan.math,
        Math::FirstTimeForUser | Math::FirstMatchingEventForUser
    ) {
        facts = vec![Fact::FirstEvent];
    }
    if matches!(actor, Actor::Group(_)) {
        facts.push(Fact::Members);
    }
    Ok(ActorSet { actor, rows, facts })
}

impl SeriesPlan<'_> {
    /// The instants one point counts events of: its bucket, the week or
    /// month up to it for active users, everything up to it for cumulative
    /// displays, the whole range for total values.
    fn window(&self, bucket: Option<usize>) -> (DateTime<Utc>, DateTime<Utc>) {
        let active_days = match self.math {
            Math::WeeklyActive => Some(7),
            Math::MonthlyActive => Some(30),
            _ => None,
        };
        let Some(k) = bucket else {
            return match active_days {
                Some(days) => (self.to - TimeDelta::days(days), self.to),
                None => (self.from, self.to),
            };
        };
        let b = self.buckets[k];
        let end_of = |start: NaiveDateTime, unit: Interval| {
            (instant(self.ctx, dates::shift(start, unit, 1)) - TimeDelta::microseconds(1))
                .min(self.to)
        };
        if self.display == Display::ActionsLineGraphCumulative {
            return (self.from, end_of(b, self.interval));
        }
        match active_days {
            // Active days (or hours) in (b − days, b], as `active_sql` counts.
            Some(days) => {
                let unit = match self.interval {
                    Interval::Hour | Interval::Minute => self.interval,
                    _ => Interval::Day,
                };
                let first = dates::shift(b - TimeDelta::days(days), unit, 1);
                (instant(self.ctx, first), end_of(b, unit))
            }
            None => (
                instant(self.ctx, b).max(self.from),
                end_of(b, self.interval),
            ),
        }
    }

    /// Each actor of the point `bucket` (None: the total) whose breakdown
    /// value is in `values` (or, for "Other", not in them).
    fn actor_rows(
        &self,
        db: &dyn EventScanner,
        bucket: Option<usize>,
        values: Option<&(Vec<String>, bool)>,
        filter: &ActorFilter,
    ) -> Result<Vec<ActorRow>> {
        let d = self.d;
        let (from, to) = self.window(bucket);
        let select = |bd: &str| {
            values.map_or("TRUE".to_string(), |(values, other)| {
                one_of(d, bd, values, *other)
            })
        };
        let first_time = matches!(
            self.math,
            Math::FirstTimeForUser | Math::FirstMatchingEventForUser
        );
        let group = matches!(self.actor, Actor::Group(_));
        let sql = if first_time {
            format!(
                "SELECT {id}, {first} FROM ({firsts}) f
                 WHERE f.ok AND f.ts >= {from} AND f.ts <= {to} AND {selected}",
                id = d.text("f.a"),
                first = d.epoch_micros("f.ts"),
                firsts = self.first_times(filter)?,
                from = timestamp(d, from),
                to = timestamp(d, to),
                selected = select("f.bd"),
            )
        } else {
            let mut scan = self.scan(from, to, true)?;
            scan.require_actor(self.actor);
            filter.apply(&mut scan)?;
            let bd = self.breakdown_of(&mut scan)?;
            scan.condition(select(&bd));
            let a = scan.actor(self.actor);
            // A company's members: the persons whose events counted it.
            let members = if group {
                format!(", count(DISTINCT {})", scan.actor(Actor::Person))
            } else {
                String::new()
            };
            format!(
                "SELECT {id}, {first}, count(*), {last}{members} {fw} GROUP BY {a}",
                id = d.text(&a),
                first = d.epoch_micros("min(e.timestamp)"),
                last = d.epoch_micros("max(e.timestamp)"),
                fw = scan.from_where(),
            )
        };
        let mut rows = Vec::new();
        for_each_batch(db, &sql, |batch| {
            let ids = column::<StringArray>(batch, 0)?;
            let firsts = column::<Int64Array>(batch, 1)?;
            let counts = (!first_time)
                .then(|| column::<Int64Array>(batch, 2))
                .transpose()?;
            let lasts = (!first_time)
                .then(|| column::<Int64Array>(batch, 3))
                .transpose()?;
            let members = group.then(|| column::<Int64Array>(batch, 4)).transpose()?;
            for i in 0..batch.num_rows() {
                rows.push(ActorRow {
                    id: ids.value(i).to_string(),
                    facts: Facts {
                        first_event: Some(firsts.value(i)),
                        event_count: counts.as_ref().map(|c| c.value(i) as u64),
                        last_event: lasts.as_ref().map(|c| c.value(i)),
                        members: members.as_ref().map(|c| c.value(i) as u64),
                        ..Facts::default()
                    },
                });
            }
            Ok(())
        })?;
        Ok(rows)
    }
}
