//! Differential suite: the same insights on the same data (`cairn demo`,
//! copied into a real ClickHouse 26.9), answered by DuckDB and by
//! ClickHouse, must be byte-identical JSON, in several time zones (one with
//! a DST change, one with a half-hour offset) and week starts, by persons
//! and by company; and their drill-downs must list the same actors.

#[path = "../../cairn-store/tests/support/clickhouse.rs"]
mod clickhouse;

use std::process::Command;

use serde_json::{json, Value};

use cairn_core::ProjectId;
use cairn_query::ProjectContext;
use cairn_server::api::query::project_context;
use cairn_server::storage::Storage;
use cairn_store::clickhouse::{copy_from, ClickHouse, ClickHouseConfig};
use cairn_store::{DuckStore, EventStore};

/// The insights compared, counted by persons and by company.
fn insights(group: bool) -> Vec<Value> {
    let agg = if group { json!(0) } else { Value::Null };
    let unique = if group {
        json!({"kind": "EventsNode", "event": "$pageview", "math": "unique_group", "math_group_type_index": 0})
    } else {
        json!({"kind": "EventsNode", "event": "$pageview", "math": "dau"})
    };
    let range = json!({"date_from": "-28d"});
    vec![
        json!({"kind": "TrendsQuery", "series": [unique], "dateRange": range}),
        json!({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "dateRange": range, "interval": "week",
               "breakdownFilter": {"breakdown": "$browser", "breakdown_limit": 3}}),
        json!({"kind": "FunnelsQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "activated"}, {"kind": "EventsNode", "event": "invited teammate"}]}),
        json!({"kind": "RetentionQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "retentionFilter": {"period": "Week", "totalIntervals": 4, "targetEntity": {"id": "$pageview"}, "returningEntity": {"id": "$pageview"}}}),
        json!({"kind": "LifecycleQuery", "dateRange": range, "interval": "week", "aggregation_group_type_index": agg,
               "series": [{"kind": "EventsNode", "event": "$pageview"}]}),
        json!({"kind": "StickinessQuery", "dateRange": range, "series": [unique]}),
        json!({"kind": "PathsQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "pathsFilter": {"includeEventTypes": ["$pageview"]}}),
        // Maths, filters and breakdowns that reach every part of the dialect.
        json!({"kind": "TrendsQuery", "dateRange": range, "series": [
                   {"kind": "EventsNode", "event": "$pageview", "math": "weekly_active"},
                   {"kind": "EventsNode", "event": "signed up", "math": "first_time_for_user"},
                   {"kind": "EventsNode", "event": "$pageview", "math": "unique_session"},
                   {"kind": "EventsNode", "event": "invited teammate", "math": "avg", "math_property": "invitees"},
                   {"kind": "EventsNode", "event": "$pageview", "math": "median_count_per_actor"}],
               "properties": [{"key": "$current_url", "value": "docs|billing", "operator": "regex", "type": "event"}]}),
        json!({"kind": "TrendsQuery", "dateRange": range, "interval": "month",
               "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
               "breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0},
               "properties": [{"key": "email", "value": "EXAMPLE", "operator": "icontains", "type": "person"}]}),
        json!({"kind": "TrendsQuery", "dateRange": range, "interval": "hour",
               "series": [{"kind": "EventsNode", "event": "signed up"}],
               "trendsFilter": {"display": "ActionsLineGraphCumulative"}}),
        json!({"kind": "FunnelsQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "activated"}],
               "breakdownFilter": {"breakdown": "signup_source"},
               "funnelsFilter": {"funnelOrderType": "strict", "funnelWindowInterval": 3, "funnelWindowIntervalUnit": "day"}}),
        json!({"kind": "FunnelsQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "activated"}],
               "funnelsFilter": {"funnelVizType": "trends"}}),
        json!({"kind": "RetentionQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "breakdownFilter": {"breakdown": "$browser"},
               "retentionFilter": {"period": "Day", "totalIntervals": 7, "retentionType": "retention_first_time",
                   "targetEntity": {"id": "signed up"}, "returningEntity": {"id": "$pageview"}}}),
        json!({"kind": "LifecycleQuery", "dateRange": {"date_from": "-14d"}, "interval": "day", "aggregation_group_type_index": agg,
               "series": [{"kind": "EventsNode", "event": "$pageview"}]}),
        json!({"kind": "StickinessQuery", "dateRange": range, "interval": "week", "series": [unique],
               "stickinessFilter": {"computedAs": "cumulative"}}),
        json!({"kind": "PathsQuery", "dateRange": range, "aggregation_group_type_index": agg,
               "pathsFilter": {"includeEventTypes": ["custom_event"], "stepLimit": 4}}),
    ]
}

/// Where two answers first differ: the JSON path and both values.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let w = y.get(k).unwrap_or(&Value::Null);
                if let Some(d) = first_difference(v, w, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: keys {:?} vs {:?}", x.keys(), y.keys()))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} vs {} items", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: duckdb {a} vs clickhouse {b}")),
    }
}

/// A drill-down into one number of the first insights (the first day of a
/// trend, a funnel's drop-off, a cohort, a lifecycle bar, a stickiness bar).
fn drill_cell(query: &Value) -> Option<Value> {
    let insight = |extra: Value| {
        let mut cell = json!({"kind": "InsightActorsQuery", "source": query});
        cell.as_object_mut()?.extend(extra.as_object()?.clone());
        Some(cell)
    };
    let plain = query.get("breakdownFilter").is_none() && query.get("trendsFilter").is_none();
    match query["kind"].as_str()? {
        "TrendsQuery" if plain && query["series"].as_array()?.len() == 1 => {
            let day = chrono::Utc::now().date_naive() - chrono::Days::new(3);
            insight(json!({"day": day.to_string()}))
        }
        "FunnelsQuery" if plain => {
            Some(json!({"kind": "FunnelsActorsQuery", "source": query, "funnelStep": -2}))
        }
        "RetentionQuery" if plain => insight(json!({"interval": 0})),
        "LifecycleQuery" => insight(json!({"status": "returning"})),
        "StickinessQuery" if query.get("stickinessFilter").is_none() => insight(json!({"day": 1})),
        _ => None,
    }
}

/// An answer without what differs by nature (when it was computed).
fn comparable(mut answer: Value) -> Value {
    if let Some(object) = answer.as_object_mut() {
        object.remove("last_refresh");
    }
    answer
}

#[test]
fn every_insight_answers_the_same_on_duckdb_and_clickhouse() {
    compare_on(1);
}

/// On two shards the events are split by distinct id, so a merged person's
/// events sit on both: each shard joins its own copy of the overrides.
#[test]
fn every_insight_answers_the_same_on_a_two_shard_cluster() {
    compare_on(2);
}

/// Copies a `cairn demo` data set into a ClickHouse of `shards` shards and
/// compares every insight (and drill-down) with DuckDB's answer.
fn compare_on(shards: usize) {
    let server = clickhouse::ClickHouse::start(shards);
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--events", "20000", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let duck = DuckStore::open(dir.path(), 5).unwrap();
    // A database of its own (the same name on every node, as a Distributed
    // table expects): the server may hold others' tables.
    let database = format!("cairn_test_{}", uuid::Uuid::new_v4().simple());
    let nodes: Vec<ClickHouse> = (0..shards)
        .map(|shard| {
            let url = server.http_url(shard);
            ClickHouse::new(ClickHouseConfig::new(url.clone()))
                .execute(&format!("CREATE DATABASE {database}"))
                .unwrap();
            let mut config = ClickHouseConfig::new(url);
            config.database = database.clone();
            config.cluster = (shards > 1).then(|| clickhouse::CLUSTER.to_string());
            ClickHouse::open(config).unwrap()
        })
        .collect();
    let clickhouse = &nodes[0];
    let copied = copy_from(&duck, &nodes.iter().collect::<Vec<_>>(), &mut |_, _, _| {}).unwrap();
    assert_eq!(copied.events, 20000, "{copied:?}");
    if shards > 1 {
        for node in &nodes {
            let held: u64 = node
                .execute("SELECT count() FROM events_local")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(held > 0 && held < 20000, "each shard holds a part: {held}");
        }
    }
    let now = chrono::Utc::now();
    let storage = Storage::over(duck.clone());
    let base = project_context(&storage, ProjectId(1), now)
        .unwrap()
        .unwrap();
    let mut failures = Vec::new();
    for (timezone, week_start) in [("UTC", 0), ("America/New_York", 1), ("Asia/Kolkata", 0)] {
        let mut ctx = ProjectContext::new(ProjectId(1), timezone, week_start, now);
        ctx.group_types = base.group_types.clone();
        ctx.person_overrides = duck.has_person_overrides(ProjectId(1)).unwrap();
        let duck_scanner = duck.scanner().unwrap();
        let ch_scanner = clickhouse.scanner().unwrap();
        for group in [false, true] {
            for query in insights(group) {
                let on_duck = cairn_query::run(&*duck_scanner, &ctx, query.clone());
                let on_ch = cairn_query::run(&*ch_scanner, &ctx, query.clone());
                // The actors behind a number, with what is known of each.
                if let (Ok(_), Some(cell)) = (&on_duck, drill_cell(&query)) {
                    let actors = |scanner: &dyn cairn_store::EventScanner| {
                        cairn_query::actors::run(scanner, &ctx, cell.clone(), &Default::default())
                            .map(|set| {
                                let mut rows: Vec<String> = set
                                    .rows
                                    .iter()
                                    .map(|r| format!("{} {:?}", r.id, r.facts))
                                    .collect();
                                rows.sort();
                                rows
                            })
                            .map_err(|e| e.to_string())
                    };
                    let (a, b) = (actors(&*duck_scanner), actors(&*ch_scanner));
                    if a != b || a.as_ref().map_or(true, |rows| rows.is_empty()) {
                        failures.push(format!(
                            "{timezone} drill-down {cell}\n  duckdb: {:?}\n  clickhouse: {:?}",
                            a.map(|r| r.len()),
                            b.map(|r| r.len())
                        ));
                    }
                }
                match (on_duck, on_ch) {
                    (Ok(a), Ok(b)) if comparable(a.clone()) == comparable(b.clone()) => {}
                    (Ok(a), Ok(b)) => failures.push(format!(
                        "{timezone} {query}\n  {}",
                        first_difference(&comparable(a), &comparable(b), "").unwrap_or_default()
                    )),
                    (a, b) => failures.push(format!(
                        "{timezone} {query}\n  duckdb: {}\n  clickhouse: {}",
                        a.map_or_else(|e| e.to_string(), |_| "answered".into()),
                        b.map_or_else(|e| e.to_string(), |_| "answered".into()),
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
