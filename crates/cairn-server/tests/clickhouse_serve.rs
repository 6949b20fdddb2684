//! `cairn serve --clickhouse-url …` against a real 2-shard ClickHouse
//! cluster: what capture acknowledges is loaded into ClickHouse once (also
//! across a crash, and after an outage), and every insight answers as the
//! same server on DuckDB alone answers the same events.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::clickhouse::{ClickHouse, CLUSTER};
use common::{event_at, Server};

/// Events of a small B2B product: two companies, a person merged across
/// two distinct ids (so across shards), a funnel and a path.
fn batch(round: usize) -> Value {
    let mut events = Vec::new();
    for (i, (user, company)) in [
        ("ann", "acme"),
        ("bob", "acme"),
        ("cat", "globex"),
        ("dan", "globex"),
    ]
    .iter()
    .enumerate()
    {
        for day in 0..5 {
            let at = |minute: usize| {
                format!(
                    "2026-11-{:02}T{:02}:{minute:02}:00Z",
                    20 + day,
                    8 + i + round
                )
            };
            let groups = json!({"$groups": {"company": company}, "plan": if i % 2 == 0 { "pro" } else { "free" }});
            events.push(event_at(
                "$pageview",
                user,
                &at(1),
                json!({"$current_url": format!("https://app/{day}")})
                    .as_object()
                    .unwrap()
                    .clone()
                    .into_iter()
                    .chain(groups.as_object().unwrap().clone())
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            ));
            if day % 2 == 0 {
                events.push(event_at("signed up", user, &at(2), groups.clone()));
                events.push(event_at("activated", user, &at(3), groups.clone()));
            }
        }
    }
    // bob's second device, then identified as bob: his events on another shard.
    events.push(event_at(
        "$pageview",
        &format!("bob-phone-{round}"),
        "2026-11-22T12:00:00Z",
        json!({}),
    ));
    events.push(event_at(
        "$identify",
        "bob",
        "2026-11-22T12:01:00Z",
        json!({"$anon_distinct_id": format!("bob-phone-{round}")}),
    ));
    Value::Array(events)
}

fn insights() -> Vec<Value> {
    let range = json!({"date_from": "2026-11-18", "date_to": "2026-11-26"});
    let mut all = Vec::new();
    for agg in [Value::Null, json!(0)] {
        let unique = if agg.is_null() {
            json!({"kind": "EventsNode", "event": "$pageview", "math": "dau"})
        } else {
            json!({"kind": "EventsNode", "event": "$pageview", "math": "unique_group", "math_group_type_index": 0})
        };
        all.extend([
            json!({"kind": "TrendsQuery", "series": [unique], "dateRange": range,
                   "breakdownFilter": {"breakdown": "plan"}}),
            json!({"kind": "FunnelsQuery", "dateRange": range, "aggregation_group_type_index": agg,
                   "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "activated"}]}),
            json!({"kind": "RetentionQuery", "dateRange": range, "aggregation_group_type_index": agg,
                   "retentionFilter": {"period": "Day", "totalIntervals": 4}}),
            json!({"kind": "LifecycleQuery", "dateRange": range, "aggregation_group_type_index": agg,
                   "series": [{"kind": "EventsNode", "event": "$pageview"}]}),
            json!({"kind": "StickinessQuery", "dateRange": range, "series": [unique]}),
            json!({"kind": "PathsQuery", "dateRange": range, "aggregation_group_type_index": agg,
                   "pathsFilter": {"includeEventTypes": ["$pageview"]}}),
        ]);
    }
    all
}

/// Each insight's results, without what differs between two servers
/// (timings, cache keys).
fn results(server: &Server) -> Vec<Value> {
    insights()
        .into_iter()
        .map(|query| server.answer(query)["results"].clone())
        .collect()
}

fn clickhouse_args(ch: &ClickHouse) -> Vec<String> {
    let urls: Vec<String> = (0..ch.shards()).map(|s| ch.http_url(s)).collect();
    vec![
        "--clickhouse-url".into(),
        urls.join(","),
        "--clickhouse-cluster".into(),
        CLUSTER.into(),
    ]
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// Events ClickHouse holds, over the cluster.
fn stored(ch: &ClickHouse) -> (u64, u64) {
    let answer = ch.query(0, "SELECT count(), uniqExact(uuid) FROM events");
    let mut fields = answer.split_whitespace().map(|f| f.parse().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

#[test]
fn insights_on_clickhouse_answer_as_on_duckdb_and_every_event_is_stored_once() {
    let ch = ClickHouse::start(2);
    let ch_args = clickhouse_args(&ch);
    let mut server = Server::start_with(&args(&ch_args));
    let duck = Server::start();
    for round in 0..2 {
        server.capture(batch(round));
        duck.capture(batch(round));
    }
    let expected = results(&duck);
    assert_eq!(results(&server), expected);
    let (count, unique) = stored(&ch);
    assert_eq!(count, unique);
    let total = count;
    assert!(total > 80, "{total} events in ClickHouse");

    // A crash right after capture: the journal is loaded into ClickHouse
    // on the next start, and what was loaded before is not doubled.
    server.capture(batch(2));
    duck.capture(batch(2));
    server.kill();
    server.spawn();
    assert_eq!(results(&server), results(&duck));
    let (count, unique) = stored(&ch);
    assert_eq!((count, unique), (count, count));
    assert!(count > total);
    let metrics = server.metrics();
    assert!(
        metrics.contains("cairn_loader_lag_records{engine=\"clickhouse\"}"),
        "{metrics}"
    );
}

#[test]
fn while_clickhouse_is_down_capture_is_journaled_up_to_the_backlog_limit_then_refused() {
    let ch = ClickHouse::start(1);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut server =
        Server::start_with(&["--clickhouse-url", &dead, "--clickhouse-backlog", "64KiB"]);
    let duck = Server::start();
    // Acknowledged into the journal: ClickHouse is not needed for that.
    server.capture(batch(0));
    duck.capture(batch(0));
    // Reads that must see it cannot, and say why.
    let (status, body) = server.query(insights()[0].clone());
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("ClickHouse"), "{body}");
    // Past the backlog limit capture is refused, and nothing of it is kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let response = server.post_batch(batch(1));
        if response.status() == 503 {
            break response.text().unwrap();
        }
        assert_eq!(response.status(), 200);
        duck.capture(batch(1));
        assert!(Instant::now() < deadline, "capture was never refused");
    };
    assert!(refused.contains("backlog"), "{refused}");

    // ClickHouse is back: everything acknowledged reaches it, once.
    server.stop();
    let urls = [
        "--clickhouse-url".to_string(),
        ch.http_url(0),
        "--clickhouse-backlog".into(),
        "64KiB".into(),
    ];
    server.respawn_with(&args(&urls));
    assert_eq!(results(&server), results(&duck));
    let (count, unique) = stored(&ch);
    assert_eq!(count, unique);
    server.capture(batch(5));
}

#[test]
fn migrate_store_copies_a_data_directory_and_serving_goes_on_from_it() {
    let ch = ClickHouse::start(2);
    let ch_args = clickhouse_args(&ch);
    let mut server = Server::start();
    let duck = Server::start();
    server.capture(batch(0));
    duck.capture(batch(0));
    server.stop();
    let output = migrate_store(&server, &ch_args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (copied, _) = stored(&ch);
    assert!(
        stdout.contains(&format!("copied into ClickHouse: {copied} events")),
        "{stdout}"
    );

    server.respawn_with(&args(&ch_args));
    server.capture(batch(1));
    duck.capture(batch(1));
    assert_eq!(results(&server), results(&duck));
    let (count, unique) = stored(&ch);
    assert_eq!(count, unique);
    assert!(count > copied);

    // A second copy would double everything: it is refused.
    server.stop();
    let again = migrate_store(&server, &ch_args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));
}

/// `cairn migrate-store` of `server`'s data directory into ClickHouse.
fn migrate_store(server: &Server, clickhouse: &[String]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("migrate-store")
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(clickhouse)
        .output()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
