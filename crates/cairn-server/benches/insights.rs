//! Insight benchmark: builds a data set with `cairn demo --events N` (10M by
//! default; kept under the target directory for the next run), then times
//! each insight kind by persons and by company next to the same question
//! written by hand in SQL against the same DuckDB file, and prints the
//! ratio. A ratio is printed only after the hand-written statement's rows
//! are checked equal to Cairn's answer, cell by cell (the benchmark stops
//! if they differ; `–` where no such statement exists yet). Each figure is
//! the median of `--runs` runs after one warm-up, the two sides taking
//! turns; the ratio is the median of the per-run ratios.
//! Then it times the drill-down of one of the insight's numbers (its
//! biggest: the busiest day, the first cohort, the drop-off before step 2,
//! the top edge) next to the insight, the same way: the query that lists
//! the actors (ids and facts), without the page's person or group lookups.
//!
//! With `--clickhouse`, it then copies the data set into a 2-shard ClickHouse
//! 26.9 cluster started from the `chdb-core` wheel (as the tests do) and times
//! each insight on ClickHouse next to hand-written ClickHouse SQL (checked
//! equal the same way) and next to the same insight on DuckDB, after
//! checking that both engines answer the same.
//!
//!     [CAIRN_MEMORY_LIMIT=1GB] cargo bench --profile dev -p cairn-server --bench insights -- [--events N] [--runs R] [--only NAME] [--clickhouse | --clickhouse-only] [--hold]

#[path = "insights/answers.rs"]
mod answers;
#[path = "../../cairn-store/tests/support/clickhouse.rs"]
mod clickhouse;
#[path = "insights/hand_clickhouse.rs"]
mod hand_clickhouse;
#[path = "insights/hand_duckdb.rs"]
mod hand_duckdb;
mod support;

use std::time::Instant;

use serde_json::{json, Value};

use cairn_core::ProjectId;
use cairn_server::api::query::project_context;
use cairn_server::storage::Storage;
use cairn_store::{DuckStore, EventStore};
use duckdb::Connection;

use answers::{AsRows, Rows};
use support::{arg, build, dir_bytes, process_memory_mib, BenchServer};

/// The server's allocator (see `main.rs`): the insights run here as they
/// run there, and so does the hand-written SQL beside them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn ms(f: &mut impl FnMut()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    median((0..runs).map(|_| ms(&mut f)).collect())
}

/// Median times of `a` and `b`, and the median of their per-run ratio. The
/// two run in turns, first one then the other leading, so that the machine's
/// drift over a run (page cache, other work) weighs on both alike.
fn paired_ms(runs: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, f64) {
    a(); // warm-up
    b();
    let pairs: Vec<(f64, f64)> = (0..runs)
        .map(|i| {
            if i % 2 == 0 {
                let ta = ms(&mut a);
                (ta, ms(&mut b))
            } else {
                let tb = ms(&mut b);
                (ms(&mut a), tb)
            }
        })
        .collect();
    (
        median(pairs.iter().map(|p| p.0).collect()),
        median(pairs.iter().map(|p| p.1).collect()),
        median(pairs.iter().map(|p| p.0 / p.1).collect()),
    )
}

/// One question, asked of Cairn and written by hand.
struct Case {
    name: &'static str,
    query: Value,
    /// By hand for DuckDB, and Cairn's answer as the rows it returns (none
    /// yet for paths: its session walk does not fit plain SQL).
    duckdb: Option<(String, AsRows)>,
    /// By hand for ClickHouse, and Cairn's answer as the rows it returns.
    clickhouse: Option<(String, AsRows)>,
}

/// The actor, its join and its condition in ClickHouse SQL.
fn clickhouse_actor(group: bool) -> (&'static str, &'static str, &'static str) {
    if group {
        ("e.group_0", "", "AND e.group_0 != ''")
    } else {
        (
            "coalesce(o.person_id, e.person_id)",
            "LEFT JOIN person_overrides o ON o.project_id = e.project_id AND o.old_person_id = e.person_id",
            "AND e.person_id IS NOT NULL",
        )
    }
}

/// The actor column and join a hand-written query needs.
fn actor_sql(group: bool) -> (&'static str, &'static str, &'static str) {
    if group {
        ("e.group_0", "", "AND coalesce(e.group_0, '') <> ''")
    } else {
        (
            "coalesce(po.person_id, e.person_id)",
            "LEFT JOIN person_overrides po ON po.project_id = e.project_id AND po.old_person_id = e.person_id",
            "",
        )
    }
}

fn cases(from: &str, to: &str, group: bool) -> Vec<Case> {
    let (actor, join, has_actor) = actor_sql(group);
    let (ch_actor, ch_join, ch_has_actor) = clickhouse_actor(group);
    let ch_range = format!(
        "e.project_id = 1 AND e.timestamp >= toDateTime64('{from} 00:00:00', 6, 'UTC')
         AND e.timestamp < toDateTime64('{to} 00:00:00', 6, 'UTC') + INTERVAL 1 DAY {ch_has_actor}"
    );
    let range = format!("e.project_id = 1 AND e.timestamp >= TIMESTAMP '{from} 00:00:00' AND e.timestamp <= TIMESTAMP '{to} 23:59:59.999999' {has_actor}");
    let date_range = json!({"date_from": from, "date_to": to});
    let agg = if group { json!(0) } else { Value::Null };
    let unique = if group {
        json!({"event": "$pageview", "math": "unique_group", "math_group_type_index": 0})
    } else {
        json!({"event": "$pageview", "math": "dau"})
    };
    vec![
        Case {
            name: "trends: daily uniques",
            query: json!({"kind": "TrendsQuery", "series": [unique], "dateRange": date_range}),
            duckdb: Some((
                format!(
                    "SELECT strftime(d, '%Y-%m-%d'), c::VARCHAR FROM (
                       SELECT date_trunc('day', e.timestamp) AS d, count(DISTINCT {actor}) AS c
                       FROM events e {join} WHERE {range} AND e.event = '$pageview' GROUP BY 1)
                     ORDER BY d"
                ),
                answers::trend_rows,
            )),
            clickhouse: Some((
                format!(
                    "SELECT toDate(e.timestamp) AS d, uniqExact({ch_actor}) AS c
                     FROM events e {ch_join} WHERE {ch_range} AND e.event = '$pageview'
                     GROUP BY d ORDER BY d"
                ),
                answers::trend_rows,
            )),
        },
        Case {
            name: "funnel: 3 steps, 14 days",
            query: json!({"kind": "FunnelsQuery", "dateRange": date_range, "aggregation_group_type_index": agg,
                "series": [{"event": "signed up"}, {"event": "activated"}, {"event": "invited teammate"}]}),
            duckdb: Some((
                format!(
                "WITH s AS (SELECT {actor} AS a, e.timestamp AS t, e.event AS ev FROM events e {join}
                            WHERE {range} AND e.event IN ('signed up', 'activated', 'invited teammate')),
                 s1 AS (SELECT a, t FROM s WHERE ev = 'signed up'),
                 s2 AS (SELECT s1.a, s1.t AS t1, min(s.t) AS t2 FROM s1 JOIN s ON s.a = s1.a AND s.ev = 'activated'
                        AND s.t >= s1.t AND s.t <= s1.t + INTERVAL 14 DAY GROUP BY 1, 2),
                 s3 AS (SELECT s2.a FROM s2 JOIN s ON s.a = s2.a AND s.ev = 'invited teammate'
                        AND s.t >= s2.t2 AND s.t <= s2.t1 + INTERVAL 14 DAY)
                 SELECT (SELECT count(DISTINCT a) FROM s1)::VARCHAR, (SELECT count(DISTINCT a) FROM s2)::VARCHAR,
                        (SELECT count(DISTINCT a) FROM s3)::VARCHAR"
                ),
                answers::funnel_rows,
            )),
            // The longest chain of the steps in order, each at or after the
            // one before, all within 14 days of the first (microseconds).
            clickhouse: Some((
                format!(
                    "SELECT countIf(level >= 1), countIf(level >= 2), countIf(level >= 3)
                     FROM (SELECT {ch_actor} AS a,
                                  windowFunnel(1209600000000)(toUInt64(toUnixTimestamp64Micro(e.timestamp)),
                                      e.event = 'signed up', e.event = 'activated', e.event = 'invited teammate') AS level
                           FROM events e {ch_join}
                           WHERE {ch_range} AND e.event IN ('signed up', 'activated', 'invited teammate')
                           GROUP BY a)"
                ),
                answers::funnel_rows,
            )),
        },
        Case {
            name: "retention: weekly, 8 weeks",
            query: json!({"kind": "RetentionQuery", "dateRange": date_range, "aggregation_group_type_index": agg,
                "retentionFilter": {"period": "Week", "totalIntervals": 8,
                    "targetEntity": {"id": "$pageview"}, "returningEntity": {"id": "$pageview"}}}),
            duckdb: Some((
                hand_duckdb::render("retention", group, from, to),
                answers::retention_rows,
            )),
            clickhouse: Some((
                hand_clickhouse::render("retention", group, from, to),
                answers::retention_rows,
            )),
        },
        Case {
            name: "lifecycle: weekly",
            query: json!({"kind": "LifecycleQuery", "dateRange": date_range, "interval": "week",
                "aggregation_group_type_index": agg, "series": [{"event": "$pageview"}]}),
            duckdb: Some((
                hand_duckdb::render("lifecycle", group, from, to),
                answers::lifecycle_rows,
            )),
            clickhouse: Some((
                hand_clickhouse::render("lifecycle", group, from, to),
                answers::lifecycle_rows,
            )),
        },
        Case {
            name: "stickiness: days active",
            query: json!({"kind": "StickinessQuery", "dateRange": date_range, "series": [unique]}),
            duckdb: Some((
                format!(
                    "SELECT k::VARCHAR, count(*)::VARCHAR FROM (SELECT {actor} AS a, count(DISTINCT date_trunc('day', e.timestamp)) AS k
                     FROM events e {join} WHERE {range} AND e.event = '$pageview' GROUP BY 1)
                     WHERE a IS NOT NULL GROUP BY k ORDER BY k"
                ),
                answers::stickiness_rows,
            )),
            clickhouse: Some((
                format!(
                    "SELECT k, count() FROM (SELECT {ch_actor} AS a, uniqExact(toDate(e.timestamp)) AS k
                     FROM events e {ch_join} WHERE {ch_range} AND e.event = '$pageview' GROUP BY a)
                     GROUP BY k ORDER BY k"
                ),
                answers::stickiness_rows,
            )),
        },
        Case {
            name: "paths: pageviews, 5 steps",
            query: json!({"kind": "PathsQuery", "dateRange": date_range, "aggregation_group_type_index": agg,
                "pathsFilter": {"includeEventTypes": ["$pageview"]}}),
            duckdb: None,
            clickhouse: Some((
                hand_clickhouse::render("paths", group, from, to),
                answers::paths_rows,
            )),
        },
    ]
}

/// The drill-down of the insight's biggest number (see the module doc).
fn drill_cell(query: &Value, answer: &Value) -> Value {
    let results = &answer["results"];
    // The index of the largest of `values`.
    let biggest = |values: &Value| {
        let values = values.as_array().unwrap();
        (0..values.len())
            .max_by_key(|i| values[*i].as_i64().unwrap_or(0).abs())
            .unwrap()
    };
    let insight = |extra: Value| {
        let mut cell = json!({"kind": "InsightActorsQuery", "source": query});
        cell.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cell
    };
    match query["kind"].as_str().unwrap() {
        "TrendsQuery" => {
            let series = &results[0];
            insight(json!({"day": series["days"][biggest(&series["data"])]}))
        }
        "FunnelsQuery" => json!({"kind": "FunnelsActorsQuery", "source": query, "funnelStep": -2}),
        "RetentionQuery" => insight(json!({"interval": 0})),
        "LifecycleQuery" => {
            let returning = &results[1];
            insight(
                json!({"day": returning["days"][biggest(&returning["data"])], "status": "returning"}),
            )
        }
        "StickinessQuery" => insight(json!({"day": 1})),
        "PathsQuery" => {
            let mut source = query.clone();
            source["pathsFilter"]["pathStartKey"] = results[0]["source"].clone();
            source["pathsFilter"]["pathEndKey"] = results[0]["target"].clone();
            json!({"kind": "InsightActorsQuery", "source": source})
        }
        other => panic!("no drill-down for {other}"),
    }
}

/// A statement's rows, every column read as text.
fn duckdb_rows(conn: &Connection, sql: &str) -> Rows {
    let mut statement = conn.prepare(sql).unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut all = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let width = row.as_ref().column_count();
        all.push(
            (0..width)
                .map(|i| row.get::<_, String>(i).unwrap())
                .collect(),
        );
    }
    all
}

fn run_sql(conn: &Connection, sql: &str) {
    let mut statement = conn.prepare(sql).unwrap();
    let rows: Vec<_> = statement.query_arrow([]).unwrap().collect();
    assert!(!rows.is_empty());
}

fn main() {
    // `CAIRN_LOG=cairn_query=debug` shows the SQL of each insight.
    if let Ok(filter) = std::env::var("CAIRN_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let events = arg("--events", 10_000_000);
    let runs = arg("--runs", 9);
    // `--data DIR`: another copy of the data set (for experiments on it).
    let args: Vec<String> = std::env::args().collect();
    let dir = match args.iter().position(|a| a == "--data") {
        Some(i) => std::path::PathBuf::from(&args[i + 1]),
        None => build(events),
    };
    let store = DuckStore::open(&dir, 5).unwrap();
    // The layout a server leaves: its events sorted by its background pass
    // (`--as-loaded`: as ingestion appended them, for a comparison).
    let started = Instant::now();
    let as_loaded = args.iter().any(|a| a == "--as-loaded");
    if let Some(pass) = (!as_loaded).then(|| store.sort_events().unwrap()).flatten() {
        println!(
            "sorted {} events by name and time in {:.1} s (once)",
            pass.rewritten,
            started.elapsed().as_secs_f64()
        );
    }
    // The server's memory bound, unless `CAIRN_MEMORY_LIMIT` says otherwise.
    let memory_limit = std::env::var("CAIRN_MEMORY_LIMIT")
        .unwrap_or_else(|_| cairn_server::config::DEFAULT_MEMORY_LIMIT.into());
    store.set_memory_limit(&memory_limit).unwrap();
    let conn = store.conn().unwrap();
    let scanner = store.scanner().unwrap();
    let ctx = project_context(
        &Storage::over(store.clone()),
        ProjectId(1),
        chrono::Utc::now(),
    )
    .unwrap()
    .expect("the demo project");
    // The last 8 weeks of the data set, whenever it was built.
    let last: String = conn
        .query_row(
            "SELECT max(timestamp)::DATE::VARCHAR FROM events",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let first: String = conn
        .query_row(
            &format!("SELECT (DATE '{last}' - INTERVAL 55 DAY)::DATE::VARCHAR"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    // `--sql FILE`: time statements (one per line) on this data set instead.
    if let Some(file) = args
        .iter()
        .position(|a| a == "--sql")
        .and_then(|i| args.get(i + 1))
    {
        for sql in std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            // A setting applies to the statements after it.
            if sql.starts_with("SET ") {
                conn.execute_batch(sql).unwrap();
                println!("{sql}");
                continue;
            }
            // `RUN statement`: once, timed (a change to the data set).
            if let Some(statement) = sql.strip_prefix("RUN ") {
                let took = ms(&mut || conn.execute_batch(statement).unwrap());
                println!("{took:>8.1} ms  (once) {statement}");
                continue;
            }
            // `PRINT query`: its rows.
            if let Some(query) = sql.strip_prefix("PRINT ") {
                println!("{query}");
                let mut statement = conn.prepare(query).unwrap();
                let mut rows = statement.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    let width = row.as_ref().column_count();
                    let cells: Vec<String> = (0..width)
                        .map(|i| format!("{:?}", row.get::<_, duckdb::types::Value>(i).unwrap()))
                        .collect();
                    println!("  {}", cells.join(" | "));
                }
                continue;
            }
            println!("{:>8.1} ms  {sql}", median_ms(runs, || run_sql(&conn, sql)));
        }
        return;
    }
    let total: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    println!("{total} events; questions over {first} .. {last}; median of {runs} runs; memory limit {memory_limit}");
    // `--clickhouse-only`: just the ClickHouse table.
    let duckdb = !args.iter().any(|a| a == "--clickhouse-only");
    if duckdb {
        println!();
        println!(
            "{:<28} {:<8} {:>10} {:>10} {:>7} {:>10} {:>7} {:>8}",
            "insight", "by", "cairn ms", "SQL ms", "ratio", "drill ms", "drill/", "actors"
        );
    }
    // `--only retention`: just the insights whose name contains it.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut worst: f64 = 0.0;
    let mut worst_drill: f64 = 0.0;
    let mut slowest: f64 = 0.0;
    for group in [false, true].into_iter().filter(|_| duckdb) {
        for case in cases(&first, &last, group) {
            if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
                continue;
            }
            let answer = cairn_query::run(&*scanner, &ctx, case.query.clone()).unwrap();
            let cairn_run = || {
                cairn_query::run(&*scanner, &ctx, case.query.clone()).unwrap();
            };
            // Only a statement that answers the same question gets a ratio.
            let (cairn, by_hand) = match &case.duckdb {
                Some((sql, rows)) => {
                    assert_eq!(
                        duckdb_rows(&conn, sql),
                        rows(&answer),
                        "{}: the hand-written DuckDB SQL answers differently from Cairn",
                        case.name
                    );
                    let (cairn, sql_ms, ratio) = paired_ms(runs, cairn_run, || run_sql(&conn, sql));
                    (cairn, Some((sql, sql_ms, ratio)))
                }
                None => (median_ms(runs, cairn_run), None),
            };
            if let (Ok(dir), Some((sql, _, _))) = (std::env::var("CAIRN_PROFILE_DIR"), by_hand) {
                // DuckDB's operator timings of one more run of each side.
                let name = format!(
                    "{dir}/{}-{}",
                    case.name.split(':').next().unwrap_or("x"),
                    if group { "company" } else { "person" }
                );
                // Profiling is per connection: the scanner's, then the bench's.
                let scanner_pragma = |sql: &str| {
                    scanner
                        .scan(sql, &mut |_| std::ops::ControlFlow::Continue(()))
                        .unwrap()
                };
                scanner_pragma("PRAGMA enable_profiling='query_tree'");
                scanner_pragma(&format!("PRAGMA profiling_output='{name}-cairn.txt'"));
                cairn_query::run(&*scanner, &ctx, case.query.clone()).unwrap();
                scanner_pragma("PRAGMA disable_profiling");
                conn.execute_batch(&format!("PRAGMA enable_profiling='query_tree'; PRAGMA profiling_output='{name}-sql.txt'"))
                    .unwrap();
                run_sql(&conn, sql);
                conn.execute_batch("PRAGMA disable_profiling").unwrap();
            }
            let cell = drill_cell(&case.query, &answer);
            let drill = || {
                cairn_query::actors::run(&*scanner, &ctx, cell.clone(), &Default::default())
                    .unwrap()
            };
            let actors = drill().rows.len();
            let (drill_ms, _, drill_ratio) = paired_ms(
                runs,
                || {
                    drill();
                },
                || {
                    cairn_query::run(&*scanner, &ctx, case.query.clone()).unwrap();
                },
            );
            let (sql_ms, ratio) = match by_hand {
                Some((_, sql_ms, ratio)) => {
                    worst = worst.max(ratio);
                    (format!("{sql_ms:.1}"), format!("{ratio:.2}"))
                }
                None => ("–".into(), "–".into()),
            };
            worst_drill = worst_drill.max(drill_ratio);
            slowest = slowest.max(cairn);
            println!(
                "{:<28} {:<8} {:>10.1} {:>10} {:>7} {:>10.1} {:>7.2} {:>8}",
                case.name,
                if group { "company" } else { "person" },
                cairn,
                sql_ms,
                ratio,
                drill_ms,
                drill_ratio,
                actors
            );
        }
    }
    if duckdb {
        println!("\nworst ratio {worst:.2} (target ≤ 1.0; – : no hand-written SQL with the same answer yet); slowest insight {slowest:.0} ms (target < 1000 ms)");
        println!("worst drill-down / insight {worst_drill:.2} (target ≤ 1.5)");
    }
    let duck_rss = process_memory_mib(std::process::id(), "VmRSS:");
    if !duckdb || args.iter().any(|a| a == "--clickhouse") {
        on_clickhouse(&store, &ctx, &first, &last, runs, only.as_deref());
    }
    // The server on this data set: how long it takes to answer, and its
    // size on disk next to the process that ran the DuckDB insights.
    let used_blocks: i64 = conn
        .query_row("SELECT used_blocks FROM pragma_database_size()", [], |r| {
            r.get(0)
        })
        .unwrap();
    let file = std::fs::metadata(dir.join(cairn_store::duck::DATABASE_FILE))
        .unwrap()
        .len();
    drop((scanner, conn, store));
    let started = Instant::now();
    let server = BenchServer::start_on(&dir);
    let healthy = started.elapsed().as_secs_f64();
    println!(
        "\nDuckDB: data directory {:.0} MiB (database file {:.0} MiB, of which {:.0} MiB in use); RSS {duck_rss:.0} MiB after the insights",
        dir_bytes(&dir) as f64 / MIB,
        file as f64 / MIB,
        used_blocks as f64 * 262_144.0 / MIB,
    );
    println!(
        "server start on this data set: healthy after {healthy:.2} s (target < 2 s), RSS {:.0} MiB",
        server.rss_mib()
    );
}

const MIB: f64 = 1024.0 * 1024.0;

/// Each insight on ClickHouse next to DuckDB (see the module doc).
fn on_clickhouse(
    duck: &DuckStore,
    ctx: &cairn_query::ProjectContext,
    first: &str,
    last: &str,
    runs: usize,
    only: Option<&str>,
) {
    use cairn_store::clickhouse::{copy_from, ClickHouse, ClickHouseConfig};
    // Two local shards, as a small cluster: each a server of its own.
    let shards = 2;
    let server = clickhouse::ClickHouse::start(shards);
    let nodes: Vec<ClickHouse> = (0..shards)
        .map(|shard| {
            let mut config = ClickHouseConfig::new(server.http_url(shard));
            config.cluster = Some(clickhouse::CLUSTER.to_string());
            ClickHouse::open(config).unwrap()
        })
        .collect();
    let clickhouse = &nodes[0];
    let started = Instant::now();
    let copied = copy_from(duck, &nodes.iter().collect::<Vec<_>>(), &mut |_, _, _| {}).unwrap();
    println!(
        "\ncopied {} events, {} persons, {} groups into ClickHouse in {:.0} s",
        copied.events,
        copied.persons,
        copied.groups,
        started.elapsed().as_secs_f64()
    );
    // Merge the parts, as servers that have been running would have.
    for node in &nodes {
        node.execute("OPTIMIZE TABLE events_local FINAL").unwrap();
    }
    // `--hold`: the loaded cluster stays up for statements by hand (curl
    // its HTTP ports) until a line is read from standard input.
    if std::env::args().any(|a| a == "--hold") {
        println!(
            "ClickHouse holds the data set at {} and {}; press Enter to go on",
            server.http_url(0),
            server.http_url(1)
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
    }
    let on_duck = duck.scanner().unwrap();
    let on_ch = clickhouse.scanner().unwrap();
    // The same events as a ClickHouse user would lay them out on one node:
    // sorted by event and day (PostHog's key), one partition per month.
    clickhouse
        .execute(
            "CREATE TABLE events_by_event ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp)
             ORDER BY (project_id, event, toDate(timestamp), person_id)
             SETTINGS allow_nullable_key = 1 AS SELECT * FROM events",
        )
        .unwrap();
    clickhouse
        .execute("OPTIMIZE TABLE events_by_event FINAL")
        .unwrap();
    println!(
        "{:<28} {:<8} {:>10} {:>10} {:>7} {:>10} {:>7}",
        "insight", "by", "CH ms", "hand ms", "CH/hand", "DuckDB ms", "CH/Duck"
    );
    let answer = |scanner: &dyn cairn_store::EventScanner, query: &Value| {
        let mut answer = cairn_query::run(scanner, ctx, query.clone()).unwrap();
        answer.as_object_mut().map(|a| a.remove("last_refresh"));
        answer
    };
    let hand = |sql: &str| -> Rows {
        let text = clickhouse.execute(&format!("{sql}\nFORMAT TSV")).unwrap();
        text.lines()
            .map(|line| line.split('\t').map(String::from).collect())
            .collect()
    };
    // The hand-written statement answers as Cairn did (`cairn`, its rows);
    // columns past Cairn's (the paths' average times) are not compared.
    let check_hand = |name: &str, sql: &str, cairn: &Rows| {
        let width = cairn.first().map_or(0, Vec::len);
        let by_hand: Rows = hand(sql)
            .into_iter()
            .map(|row| row[..width.min(row.len())].to_vec())
            .collect();
        assert_eq!(
            &by_hand, cairn,
            "{name}: the hand-written ClickHouse SQL answers differently from Cairn ({sql})"
        );
    };
    let (mut worst, mut worst_hand, mut worst_duck) = (0f64, 0f64, 0f64);
    let mut against_user_layout = Vec::new();
    for group in [false, true] {
        for case in cases(first, last, group) {
            if only.is_some_and(|o| !case.name.contains(o)) {
                continue;
            }
            let on_clickhouse = answer(&*on_ch, &case.query);
            assert_eq!(
                on_clickhouse,
                answer(&*on_duck, &case.query),
                "{}: ClickHouse and DuckDB answer differently",
                case.name
            );
            let by_hand = case.clickhouse.as_ref().map(|(sql, rows)| {
                check_hand(case.name, sql, &rows(&on_clickhouse));
                paired_ms(
                    runs,
                    || {
                        cairn_query::run(&*on_ch, ctx, case.query.clone()).unwrap();
                    },
                    || {
                        hand(sql);
                    },
                )
            });
            let (ch_ms, duck_ms, ratio) = paired_ms(
                runs,
                || {
                    cairn_query::run(&*on_ch, ctx, case.query.clone()).unwrap();
                },
                || {
                    cairn_query::run(&*on_duck, ctx, case.query.clone()).unwrap();
                },
            );
            worst = worst.max(ratio);
            // Cairn on DuckDB against the hand-written SQL on the user's
            // layout, checked equal the same way.
            if let Some((sql, rows)) = &case.clickhouse {
                let sql = sql.replace("FROM events ", "FROM events_by_event ");
                check_hand(case.name, &sql, &rows(&on_clickhouse));
                let (duck_ms, user_ms, ratio) = paired_ms(
                    runs,
                    || {
                        cairn_query::run(&*on_duck, ctx, case.query.clone()).unwrap();
                    },
                    || {
                        hand(&sql);
                    },
                );
                worst_duck = worst_duck.max(ratio);
                against_user_layout.push((case.name, group, duck_ms, user_ms, ratio));
            }
            let (hand_ms, hand_ratio) = match by_hand {
                Some((_, hand_ms, hand_ratio)) => {
                    worst_hand = worst_hand.max(hand_ratio);
                    (format!("{hand_ms:.1}"), format!("{hand_ratio:.2}"))
                }
                None => ("–".into(), "–".into()),
            };
            println!(
                "{:<28} {:<8} {:>10.1} {:>10} {:>7} {:>10.1} {:>7.2}",
                case.name,
                if group { "company" } else { "person" },
                ch_ms,
                hand_ms,
                hand_ratio,
                duck_ms,
                ratio
            );
        }
    }
    println!("\nworst ClickHouse / hand-written ClickHouse SQL {worst_hand:.2} (target ≤ 1.0; – : no hand-written SQL with the same answer yet)");
    println!("worst ClickHouse / DuckDB {worst:.2}");
    println!("\nCairn on DuckDB against hand-written SQL on one ClickHouse node, events sorted by (project_id, event, toDate(timestamp), person_id):");
    println!(
        "{:<28} {:<8} {:>10} {:>10} {:>7}",
        "insight", "by", "DuckDB ms", "CH ms", "ratio"
    );
    for (name, group, duck_ms, user_ms, ratio) in &against_user_layout {
        println!(
            "{:<28} {:<8} {:>10.1} {:>10.1} {:>7.2}",
            name,
            if *group { "company" } else { "person" },
            duck_ms,
            user_ms,
            ratio
        );
    }
    let ratios: Vec<f64> = against_user_layout.iter().map(|r| r.4).collect();
    let mean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len().max(1) as f64).exp();
    println!("worst DuckDB / ClickHouse {worst_duck:.2}, geometric mean {mean:.2} (target ≤ 1.0)");
    let bytes = clickhouse
        .execute("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'events_by_event'")
        .unwrap();
    let bytes: f64 = bytes.trim().parse().unwrap();
    println!(
        "ClickHouse: events_by_event {:.0} MiB on disk; RSS of its node {:.0} MiB after the insights",
        bytes / MIB,
        process_memory_mib(server.pids()[0], "VmRSS:")
    );
}
