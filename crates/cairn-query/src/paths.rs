//! Paths (spec/insights.md §6): the most common sequences of pages, screens
//! and events within sessions, as weighted edges between numbered steps.
//! Unlike PostHog, by persons **or** by a group type (one merged stream
//! per group).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use arrow_array::{Int64Array, StringArray, UInt64Array};
use cairn_core::names;
use cairn_store::dialect::Dialect;
use cairn_store::EventScanner;

use crate::actors::{resolve, ActorFilter, ActorSet, Cell, Fact, Facts};
use crate::budget::Budget;
use crate::context::ProjectContext;
use crate::dates::{instant, Range};
use crate::error::{QueryError, Result};
use crate::nodes::{Interval, PathEventType, PathsFilter, PathsQuery, PropertyKind};
use crate::sql::{column, for_each_batch, person_merges, Actor, FastHash, Merges, Scan};

/// A gap this long (or longer) ends a session.
const SESSION_GAP_US: i64 = 30 * 60 * 1_000_000;
const DEFAULT_STEP_LIMIT: usize = 5;
const DEFAULT_EDGE_LIMIT: usize = 50;

#[derive(Default)]
struct Edge {
    count: u64,
    total_us: i64,
}

pub fn run(db: &dyn EventScanner, ctx: &ProjectContext, query: &PathsQuery) -> Result<Value> {
    let filter = &query.paths_filter;
    let plan = plan(db.dialect(), ctx, query)?;
    let items = Items::new(scan_names(db, &plan)?, filter);
    let Some(walk) = Walk::read(db, ctx, &plan, &items, None)? else {
        return Ok(json!({"results": [], "is_cached": false}));
    };
    let (edges, _) = walk.walker().edges(&walk.batches);
    ctx.budget.check()?;
    Ok(answer(filter, &items.names, edges))
}

/// The actors whose paths go through the drill-down's node or edge
/// (`pathsFilter.pathStartKey`, `pathEndKey`, `pathDropoffKey`), each with
/// the number of its paths that do.
pub(crate) fn actors(
    db: &dyn EventScanner,
    ctx: &ProjectContext,
    query: &PathsQuery,
    _cell: &Cell,
    filter: &ActorFilter,
) -> Result<ActorSet> {
    let plan = plan(db.dialect(), ctx, query)?;
    let items = Items::new(scan_names(db, &plan)?, &query.paths_filter);
    let mut chosen = HashMap::new();
    if let Some(target) = Target::parse(&query.paths_filter, &items)? {
        if let Some(walk) = Walk::read(db, ctx, &plan, &items, Some(target))? {
            let (_, hits) = walk.walker().edges(&walk.batches);
            ctx.budget.check()?;
            chosen = hits
                .into_iter()
                .map(|(actor, paths)| {
                    let facts = Facts {
                        event_count: Some(paths),
                        ..Facts::default()
                    };
                    (actor, facts)
                })
                .collect();
        }
    }
    Ok(ActorSet {
        actor: plan.actor,
        rows: resolve(db, ctx, plan.actor, plan.scanned, chosen, filter)?,
        facts: vec![Fact::EventCount],
    })
}

/// What the walk of one paths query reads.
struct Walk<'a> {
    merges: Merges,
    items: &'a Items,
    start: Option<u32>,
    end: Option<u32>,
    limit: usize,
    budget: &'a Budget,
    target: Option<Target>,
    batches: Vec<Batch>,
}

impl<'a> Walk<'a> {
    /// `None` when a start or end point never occurs (no paths).
    fn read(
        db: &dyn EventScanner,
        ctx: &'a ProjectContext,
        plan: &Plan,
        items: &'a Items,
        target: Option<Target>,
    ) -> Result<Option<Self>> {
        let (start, end) = (items.point(&plan.start_point), items.point(&plan.end_point));
        if matches!(start, Some(None)) || matches!(end, Some(None)) {
            return Ok(None); // the point never occurs
        }
        let (start, end) = (start.flatten(), end.flatten());
        let merges = match plan.actor {
            Actor::Person => person_merges(db, ctx)?,
            Actor::Group(_) => Merges::default(),
        };
        Ok(Some(Self {
            merges,
            items,
            start,
            end,
            limit: plan.step_limit,
            budget: &ctx.budget,
            target,
            batches: scan_steps(db, plan)?,
        }))
    }

    fn walker(&self) -> Walker<'_> {
        Walker {
            merges: &self.merges,
            item_of: &self.items.of_key,
            excluded: &self.items.excluded,
            start: self.start,
            end: self.end,
            limit: self.limit,
            budget: self.budget,
            target: self.target,
        }
    }
}

/// The node or edge a drill-down asks about: items at 0-based positions
/// of a path.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Step `at` is `from` and step `at + 1` is `to`.
    Edge { at: usize, from: u32, to: u32 },
    /// Step `at` is `item` (the path reached the node).
    Reached { at: usize, item: u32 },
    /// Step `at` is `item` and the path goes on.
    After { at: usize, item: u32 },
    /// Step `at` is `item`, and the path's last.
    DropOff { at: usize, item: u32 },
}

impl Target {
    /// `None` when a key names an item no event has (nobody is behind it).
    fn parse(filter: &PathsFilter, items: &Items) -> Result<Option<Self>> {
        let node = |key: &str, name: &str| -> Result<Option<(usize, u32)>> {
            let field = format!("query.source.source.pathsFilter.{name}");
            let (position, item) = key.split_once('_').ok_or_else(|| {
                QueryError::invalid(
                    &field,
                    "a node is `<step>_<name>`, as the paths results name them",
                )
            })?;
            let position: usize =
                position.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                    QueryError::invalid(&field, "the step of a node counts from 1")
                })?;
            Ok(items.id(item).map(|id| (position - 1, id)))
        };
        let key = |k: &Option<String>, name: &str| k.as_deref().map(|k| node(k, name)).transpose();
        let start = key(&filter.path_start_key, "pathStartKey")?;
        let end = key(&filter.path_end_key, "pathEndKey")?;
        let drop_off = key(&filter.path_dropoff_key, "pathDropoffKey")?;
        Ok(match (start, end, drop_off) {
            (None, None, None) => {
                return Err(QueryError::invalid(
                    "query.source.source.pathsFilter.pathEndKey",
                    "name the node (pathEndKey, pathStartKey or pathDropoffKey) or the edge (pathStartKey and pathEndKey)",
                ))
            }
            (Some(None), ..) | (_, Some(None), _) | (.., Some(None)) => None,
            (None, None, Some(Some((at, item)))) => Some(Target::DropOff { at, item }),
            (Some(Some((at, from))), Some(Some((next, to))), None) => {
                if next != at + 1 {
                    return Err(QueryError::invalid(
                        "query.source.source.pathsFilter.pathEndKey",
                        "an edge joins a step to the next one",
                    ));
                }
                Some(Target::Edge { at, from, to })
            }
            (None, Some(Some((at, item))), None) => Some(Target::Reached { at, item }),
            (Some(Some((at, item))), None, None) => Some(Target::After { at, item }),
            _ => {
                return Err(QueryError::invalid(
                    "query.source.source.pathsFilter.pathDropoffKey",
                    "a drop-off node is asked about on its own",
                ))
            }
        })
    }

    /// Whether a (cut) path goes through the target.
    fn on(&self, path: &[(i64, u32)]) -> bool {
        let item_at = |at: usize| path.get(at).map(|(_, item)| *item);
        match *self {
            Target::Edge { at, from, to } => {
                item_at(at) == Some(from) && item_at(at + 1) == Some(to)
            }
            Target::Reached { at, item } => item_at(at) == Some(item),
            Target::After { at, item } => item_at(at) == Some(item) && path.len() > at + 1,
            Target::DropOff { at, item } => item_at(at) == Some(item) && path.len() == at + 1,
        }
    }
}

/// The two statements of a paths query.
struct Plan {
    actor: Actor,
    step_limit: usize,
    start_point: Option<String>,
    end_point: Option<String>,
    /// The instants scanned.
    scanned: (DateTime<Utc>, DateTime<Utc>),
    /// Each item key with its name.
    names: String,
    /// Actor hash, time, item key per event.
    steps: String,
}

fn plan(d: &dyn Dialect, ctx: &ProjectContext, query: &PathsQuery) -> Result<Plan> {
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
    let scanned = (instant(ctx, range.from), instant(ctx, range.to));
    let mut scan = Scan::new(ctx, d, scanned.0, scanned.1);
    scan.properties(&query.properties, "properties")?;
    scan.require_actor(actor);
    let (pageview, screen_event) = (
        d.string(names::event::PAGEVIEW),
        d.string(names::event::SCREEN),
    );
    if let Some(types) = filter
        .include_event_types
        .as_ref()
        .filter(|t| !t.is_empty())
    {
        let kinds: Vec<String> = types
            .iter()
            .map(|t| match t {
                PathEventType::Pageview => format!("e.event = {pageview}"),
                PathEventType::Screen => format!("e.event = {screen_event}"),
                PathEventType::CustomEvent => format!("NOT {}", d.starts_with("e.event", "$")),
            })
            .collect();
        scan.condition(format!("({})", kinds.join(" OR ")));
    }
    let url = scan.property(
        PropertyKind::Event,
        names::property::CURRENT_URL,
        None,
        "pathsFilter",
    )?;
    let screen = scan.property(
        PropertyKind::Event,
        names::property::SCREEN_NAME,
        None,
        "pathsFilter",
    )?;
    let item = format!(
        "CASE WHEN e.event = {pageview} THEN coalesce(nullif({}, ''), '/')
              WHEN e.event = {screen_event} THEN coalesce({screen}, '')
              ELSE e.event END",
        d.trim_end(&url, "/")
    );
    // The big scan reads a cheap key per event, a hash of the columns its
    // item is named from (building millions of item strings costs more than
    // the walk); a second query names each key. Keys whose names agree
    // ("/a" and "/a/") are one item.
    let key = match filter.include_event_types.as_deref() {
        Some([PathEventType::Pageview]) => d.hash(&[&url]),
        Some([PathEventType::Screen]) => d.hash(&[&screen]),
        _ => d.hash(&["e.event", &url, &screen]),
    };
    // Naming items needs no actor, so not the join that finds merged persons.
    let names = format!(
        "SELECT {key}, {} {} GROUP BY 1",
        d.any_value(&item),
        scan.from_where()
    );
    // Merged persons are followed in Rust (see `person_merges`).
    let a = match actor {
        Actor::Person => "e.person_id".to_string(),
        Actor::Group(_) => scan.actor(actor),
    };
    let steps = format!(
        "SELECT {}, {}, {key} {}",
        d.hash(&[&a]),
        d.epoch_micros("e.timestamp"),
        scan.from_where()
    );
    Ok(Plan {
        actor,
        step_limit,
        start_point: filter.start_point.clone(),
        end_point: filter.end_point.clone(),
        scanned,
        names,
        steps,
    })
}

/// `(key, name)` of every item the events hold.
fn scan_names(db: &dyn EventScanner, plan: &Plan) -> Result<Vec<(u64, String)>> {
    let mut named = Vec::new();
    for_each_batch(db, &plan.names, |batch| {
        let keys = column::<UInt64Array>(batch, 0)?;
        let names = column::<StringArray>(batch, 1)?;
        named.extend((0..batch.num_rows()).map(|i| (keys.value(i), names.value(i).to_string())));
        Ok(())
    })?;
    Ok(named)
}

fn scan_steps(db: &dyn EventScanner, plan: &Plan) -> Result<Vec<Batch>> {
    let mut batches = Vec::new();
    for_each_batch(db, &plan.steps, |batch| {
        batches.push((
            column::<UInt64Array>(batch, 0)?.into_owned(),
            column::<Int64Array>(batch, 1)?.into_owned(),
            column::<UInt64Array>(batch, 2)?.into_owned(),
        ));
        Ok(())
    })?;
    Ok(batches)
}

/// The items, numbered in name order (so ties sort the same way every run).
struct Items {
    names: Vec<String>,
    of_key: HashMap<u64, u32, FastHash>,
    excluded: Vec<bool>,
}

impl Items {
    fn new(named: Vec<(u64, String)>, filter: &PathsFilter) -> Self {
        let mut names: Vec<String> = named.iter().map(|(_, name)| name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        let exclude: std::collections::HashSet<&str> = filter
            .exclude_events
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let excluded = names
            .iter()
            .map(|name| exclude.contains(name.as_str()))
            .collect();
        let mut items = Self {
            names,
            of_key: HashMap::default(),
            excluded,
        };
        items.of_key = named
            .iter()
            .filter_map(|(key, name)| Some((*key, items.id(name)?)))
            .collect();
        items
    }

    fn id(&self, name: &str) -> Option<u32> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    /// A start or end point: `Some(None)` when it names no item.
    fn point(&self, text: &Option<String>) -> Option<Option<u32>> {
        text.as_deref().map(|name| self.id(name))
    }
}

fn answer(filter: &PathsFilter, names: &[String], edges: Edges) -> Value {
    let name = |id: &u32| names[*id as usize].as_str();
    let mut ranked: Vec<((usize, u32, u32), Edge)> = edges
        .into_iter()
        .filter(|(_, e)| filter.min_edge_weight.is_none_or(|m| e.count >= m))
        .filter(|(_, e)| filter.max_edge_weight.is_none_or(|m| e.count <= m))
        .collect();
    // Items are numbered in name order: comparing ids compares names.
    ranked.sort_by(|(a_key, a), (b_key, b)| b.count.cmp(&a.count).then(a_key.cmp(b_key)));
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
    json!({"results": results, "is_cached": false})
}

type Edges = HashMap<(usize, u32, u32), Edge, FastHash>;

/// One query's rows: actor hash, time, item key.
type Batch = (UInt64Array, Int64Array, UInt64Array);

/// What turns rows into edges, shared by the threads.
struct Walker<'a> {
    merges: &'a Merges,
    item_of: &'a HashMap<u64, u32, FastHash>,
    excluded: &'a [bool],
    start: Option<u32>,
    end: Option<u32>,
    limit: usize,
    /// Checked as actors are walked: a share stops early once time is up.
    budget: &'a Budget,
    /// A drill-down's node or edge: whose paths go through it.
    target: Option<Target>,
}

/// Paths through the drill-down's target, by actor hash.
type Hits = HashMap<u64, u64, FastHash>;

impl Walker<'_> {
    /// Every actor's edges (and the drill-down target's hits): actors are
    /// shared out among the cores, each share grouped and walked on its
    /// own thread.
    fn edges(&self, batches: &[Batch]) -> (Edges, Hits) {
        let shares = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let mut edges = Edges::default();
        let mut hits = Hits::default();
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..shares)
                .map(|share| scope.spawn(move || self.share(batches, share, shares)))
                .collect();
            for thread in threads {
                let (share, share_hits) = thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (k, e) in share {
                    let edge = edges.entry(k).or_default();
                    edge.count += e.count;
                    edge.total_us += e.total_us;
                }
                hits.extend(share_hits);
            }
        });
        (edges, hits)
    }

    /// The edges of the actors whose hash is `share` modulo `shares`.
    fn share(&self, batches: &[Batch], share: u64, shares: u64) -> (Edges, Hits) {
        let (starts, actors, mut events) = self.gather(batches, share, shares);
        let mut edges = Edges::default();
        let mut hits = Hits::default();
        let mut session: Vec<(i64, u32)> = Vec::new();
        for (n, bounds) in starts.windows(2).enumerate() {
            if n % 4096 == 0 && self.budget.check().is_err() {
                break; // the caller reports it
            }
            let events = &mut events[bounds[0]..bounds[1]];
            events.sort_unstable(); // by time, then item: the same order every run
            session.clear();
            let mut through = 0;
            for &(t, item) in events.iter() {
                if session
                    .last()
                    .is_some_and(|(last, _)| t - last >= SESSION_GAP_US)
                {
                    through += self.walk(&session, &mut edges);
                    session.clear();
                }
                // Repeats of the same item collapse into one step.
                if session.last().map(|(_, last)| *last) != Some(item) {
                    session.push((t, item));
                }
            }
            through += self.walk(&session, &mut edges);
            if through > 0 {
                hits.insert(actors[n], through);
            }
        }
        (edges, hits)
    }

    /// The share's `(time, item)` events, actor after actor: actor `n`'s are
    /// `events[starts[n]..starts[n + 1]]`. Gathered by a counting sort into
    /// one array (a vector per actor costs a cache miss per row) and left
    /// for the caller to sort by time: they arrive mostly in order already,
    /// which DuckDB's sort would not exploit.
    fn gather(
        &self,
        batches: &[Batch],
        share: u64,
        shares: u64,
    ) -> (Vec<usize>, Vec<u64>, Vec<(i64, u32)>) {
        let mut actors: HashMap<u64, u32, FastHash> = HashMap::default();
        let mut rows: Vec<(u32, i64, u32)> = Vec::new();
        for (hashes, times, keys) in batches {
            for i in 0..hashes.len() {
                let hash = hashes.value(i);
                let actor = self.merges.get(&hash).copied().unwrap_or(hash);
                if actor % shares != share {
                    continue;
                }
                // A key unnamed arrived after the naming query: left out.
                let Some(&item) = self.item_of.get(&keys.value(i)) else {
                    continue;
                };
                if self.excluded[item as usize] {
                    continue;
                }
                let next = actors.len() as u32;
                let actor = *actors.entry(actor).or_insert(next);
                rows.push((actor, times.value(i), item));
            }
        }
        let mut hashes = vec![0u64; actors.len()];
        for (&hash, &i) in &actors {
            hashes[i as usize] = hash;
        }
        let mut starts = vec![0usize; actors.len() + 1];
        for &(actor, ..) in &rows {
            starts[actor as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut events = vec![(0i64, 0u32); rows.len()];
        let mut fill = starts.clone();
        for (actor, t, item) in rows {
            events[fill[actor as usize]] = (t, item);
            fill[actor as usize] += 1;
        }
        (starts, hashes, events)
    }

    /// Adds one session's path (cut at the start and end points, at most
    /// `limit` steps) to the edge counts; 1 if it goes through the target.
    fn walk(&self, session: &[(i64, u32)], edges: &mut Edges) -> u64 {
        let (start, end, limit) = (self.start, self.end, self.limit);
        let mut path = session;
        if let Some(start) = start {
            match path.iter().position(|(_, i)| *i == start) {
                Some(at) => path = &path[at..],
                None => return 0,
            }
        }
        if let Some(end) = end {
            match path.iter().position(|(_, i)| *i == end) {
                Some(at) => path = &path[..=at],
                None => return 0,
            }
        }
        // Paths to an end point keep their last steps, others their first.
        path = if end.is_some() && start.is_none() {
            &path[path.len().saturating_sub(limit)..]
        } else {
            &path[..path.len().min(limit)]
        };
        if let Some(target) = &self.target {
            // A one-step path has no edge, and is no node of the chart.
            return u64::from(path.len() > 1 && target.on(path));
        }
        for (step, pair) in path.windows(2).enumerate() {
            let edge = edges.entry((step, pair[0].1, pair[1].1)).or_default();
            edge.count += 1;
            edge.total_us += pair[1].0 - pair[0].0;
        }
        0
    }
}
