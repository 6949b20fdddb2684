//! Paths (spec/insights.md §6): the most common sequences of pages, screens
//! and events within sessions, as weighted edges between numbered steps.
//! Unlike PostHog, by persons **or** by a group type (one merged stream
//! per group).

use std::collections::HashMap;

use serde_json::{json, Value};

use cairn_store::duckdb::arrow::array::{Int64Array, StringArray, UInt64Array};
use cairn_store::duckdb::Connection;

use crate::context::ProjectContext;
use crate::dates::{instant, Range};
use crate::error::{QueryError, Result};
use crate::nodes::{Interval, PathEventType, PathsQuery, PropertyKind};
use crate::sql::{column, for_each_batch, person_merges, Actor, Scan};

/// Hashing for the walk's maps, keyed by DuckDB's hashes already.
type FastHash = foldhash::fast::RandomState;

/// A gap this long (or longer) ends a session.
const SESSION_GAP_US: i64 = 30 * 60 * 1_000_000;
const DEFAULT_STEP_LIMIT: usize = 5;
const DEFAULT_EDGE_LIMIT: usize = 50;

#[derive(Default)]
struct Edge {
    count: u64,
    total_us: i64,
}

pub fn run(conn: &Connection, ctx: &ProjectContext, query: &PathsQuery) -> Result<Value> {
    let filter = &query.paths_filter;
    let step_limit = filter.step_limit.unwrap_or(DEFAULT_STEP_LIMIT);
    if !(2..=20).contains(&step_limit) {
        return Err(QueryError::invalid(
            "pathsFilter.stepLimit",
            "must be between 2 and 20",
        ));
    }
    let actor = Actor::of(ctx, query.aggregation_group_type_index)?;
    let range = Range::resolve(ctx, &query.date_range, Interval::Day, || Ok(None))?;
    let mut scan = Scan::new(ctx, instant(ctx, range.from), instant(ctx, range.to));
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    if let Some(types) = filter
        .include_event_types
        .as_ref()
        .filter(|t| !t.is_empty())
    {
        let kinds: Vec<&str> = types
            .iter()
            .map(|t| match t {
                PathEventType::Pageview => "e.event = '$pageview'",
                PathEventType::Screen => "e.event = '$screen'",
                PathEventType::CustomEvent => "NOT starts_with(e.event, '$')",
            })
            .collect();
        scan.condition(format!("({})", kinds.join(" OR ")));
    }
    let url = scan.property(PropertyKind::Event, "$current_url", None, "pathsFilter")?;
    let screen = scan.property(PropertyKind::Event, "$screen_name", None, "pathsFilter")?;
    let item = format!(
        "CASE WHEN e.event = '$pageview' THEN coalesce(nullif(rtrim({url}, '/'), ''), '/')
              WHEN e.event = '$screen' THEN coalesce({screen}, '')
              ELSE e.event END"
    );
    // Naming items needs no actor, so not the join that finds merged persons.
    let names_fw = scan.from_where();
    let (a, merges) = match actor {
        Actor::Person => ("e.person_id".to_string(), person_merges(conn, ctx)?),
        Actor::Group(_) => (scan.actor(actor), HashMap::new()),
    };
    let fw = scan.from_where();
    // Items travel as hashes (strings for millions of rows cost more than
    // the whole walk); a second query names each distinct one.
    let mut items: HashMap<u64, String> = HashMap::new();
    for_each_batch(
        conn,
        &format!("SELECT hash(i), any_value(i) FROM (SELECT {item} AS i {names_fw}) GROUP BY 1"),
        |batch| {
            let ids = column::<UInt64Array>(batch, 0)?;
            let names = column::<StringArray>(batch, 1)?;
            for i in 0..batch.num_rows() {
                items.insert(ids.value(i), names.value(i).to_string());
            }
            Ok(())
        },
    )?;
    let id_of =
        |text: Option<&str>| text.map(|t| items.iter().find(|(_, v)| *v == t).map(|(k, _)| *k));
    let (start, end) = (
        id_of(filter.start_point.as_deref()),
        id_of(filter.end_point.as_deref()),
    );
    if matches!(start, Some(None)) || matches!(end, Some(None)) {
        return Ok(json!({"results": [], "is_cached": false})); // the point never occurs
    }
    let (start, end) = (start.flatten(), end.flatten());
    let excluded: Vec<u64> = items
        .iter()
        .filter(|(_, text)| filter.exclude_events.iter().flatten().any(|x| x == *text))
        .map(|(id, _)| *id)
        .collect();
    // Each actor's events, gathered here rather than sorted by DuckDB: a
    // sort of millions of rows costs more than sorting each actor's few
    // (which arrive mostly in time order already).
    let mut by_actor: HashMap<u64, Vec<(i64, u64)>, FastHash> = HashMap::default();
    let sql = format!("SELECT hash({a}), epoch_us(e.timestamp), hash({item}) {fw}");
    for_each_batch(conn, &sql, |batch| {
        let actors = column::<UInt64Array>(batch, 0)?;
        let times = column::<Int64Array>(batch, 1)?;
        let ids = column::<UInt64Array>(batch, 2)?;
        for i in 0..batch.num_rows() {
            let item = ids.value(i);
            if !excluded.contains(&item) {
                let actor = actors.value(i);
                by_actor
                    .entry(merges.get(&actor).copied().unwrap_or(actor))
                    .or_default()
                    .push((times.value(i), item));
            }
        }
        Ok(())
    })?;
    let mut edges: HashMap<(usize, u64, u64), Edge, FastHash> = HashMap::default();
    let mut session: Vec<(i64, u64)> = Vec::new();
    for events in by_actor.values_mut() {
        events.sort_unstable(); // by time, then item: the same order every run
        session.clear();
        for &(t, item) in events.iter() {
            if session
                .last()
                .is_some_and(|(last, _)| t - last >= SESSION_GAP_US)
            {
                walk(&session, start, end, step_limit, &mut edges);
                session.clear();
            }
            // Repeats of the same item collapse into one step.
            if session.last().map(|(_, last)| *last) != Some(item) {
                session.push((t, item));
            }
        }
        walk(&session, start, end, step_limit, &mut edges);
    }

    let name = |id: &u64| items.get(id).map_or("", String::as_str);
    let mut ranked: Vec<((usize, u64, u64), Edge)> = edges
        .into_iter()
        .filter(|(_, e)| filter.min_edge_weight.is_none_or(|m| e.count >= m))
        .filter(|(_, e)| filter.max_edge_weight.is_none_or(|m| e.count <= m))
        .collect();
    ranked.sort_by(|((sa, fa, ta), a), ((sb, fb, tb), b)| {
        b.count
            .cmp(&a.count)
            .then(sa.cmp(sb))
            .then(name(fa).cmp(name(fb)))
            .then(name(ta).cmp(name(tb)))
    });
    ranked.truncate(filter.edge_limit.unwrap_or(DEFAULT_EDGE_LIMIT));
    let results: Vec<Value> = ranked
        .iter()
        .map(|((step, from, to), edge)| {
            json!({
                "source": format!("{}_{}", step + 1, name(from)),
                "target": format!("{}_{}", step + 2, name(to)),
                "value": edge.count,
                "average_conversion_time": edge.total_us as f64 / edge.count as f64 / 1000.0,
            })
        })
        .collect();
    Ok(json!({"results": results, "is_cached": false}))
}

/// Adds one session's path (cut at the start and end points, at most
/// `limit` steps) to the edge counts.
fn walk(
    session: &[(i64, u64)],
    start: Option<u64>,
    end: Option<u64>,
    limit: usize,
    edges: &mut HashMap<(usize, u64, u64), Edge, FastHash>,
) {
    let mut path = session;
    if let Some(start) = start {
        match path.iter().position(|(_, i)| *i == start) {
            Some(at) => path = &path[at..],
            None => return,
        }
    }
    if let Some(end) = end {
        match path.iter().position(|(_, i)| *i == end) {
            Some(at) => path = &path[..=at],
            None => return,
        }
    }
    // Paths to an end point keep their last steps, others their first.
    path = if end.is_some() && start.is_none() {
        &path[path.len().saturating_sub(limit)..]
    } else {
        &path[..path.len().min(limit)]
    };
    for (step, pair) in path.windows(2).enumerate() {
        let edge = edges.entry((step, pair[0].1, pair[1].1)).or_default();
        edge.count += 1;
        edge.total_us += pair[1].0 - pair[0].0;
    }
}
