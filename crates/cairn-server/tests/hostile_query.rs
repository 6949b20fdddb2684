//! Hostile insight queries and flag definitions against the real binary:
//! each limit is answered quickly with a 4xx naming it, a query past its
//! time limit is stopped (504, and its work stops), a client that leaves
//! takes its query with it, and the server keeps serving throughout.

mod common;

use std::time::{Duration, Instant};

use common::{cpu_seconds, event, Server, PROJECT_KEY};
use serde_json::{json, Value};

/// `POST query/`: the status, the body and how long the answer took.
fn query(server: &Server, query: Value) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = server
        .authed(server.client.post(server.api("/query/")))
        .json(&json!({ "query": query }))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

/// Asserts a 400 within a second whose detail contains every phrase.
fn refused(server: &Server, name: &str, q: Value, phrases: &[&str]) {
    let (status, body, took) = query(server, q);
    assert_eq!(status, 400, "{name}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    for phrase in phrases {
        assert!(detail.contains(phrase), "{name}: `{phrase}` not in {body}");
    }
    assert!(took < Duration::from_secs(1), "{name} took {took:?}");
}

fn trend(series: Value) -> Value {
    json!({"kind": "TrendsQuery", "series": series, "dateRange": {"date_from": "-7d"}})
}

/// The server still captures and answers an ordinary insight.
fn assert_serving(server: &Server) {
    server.capture(json!([event("alive", "u1", json!({}))]));
    let (status, body, _) = query(server, trend(json!([{"event": "alive"}])));
    assert_eq!(status, 200, "{body}");
    assert!(body["results"][0]["count"].as_i64().unwrap() >= 1, "{body}");
}

#[test]
fn huge_or_deeply_nested_formulas_are_refused_and_the_server_lives() {
    let server = Server::start();
    server.capture(json!([event("pageview", "u1", json!({}))]));
    let series = json!([{"event": "pageview"}, {"event": "pageview"}]);
    for (name, formula) in [
        ("300 KB of minus signs", "-".repeat(300_000)),
        ("300 KB of parentheses", "(".repeat(300_000)),
    ] {
        let mut q = trend(series.clone());
        q["trendsFilter"] = json!({ "formula": formula });
        refused(&server, name, q, &["limit of 1000"]);
    }
    let mut q = trend(series.clone());
    q["trendsFilter"] = json!({ "formula": format!("{}A{}", "(".repeat(40), ")".repeat(40)) });
    refused(
        &server,
        "40 levels of parentheses",
        q,
        &["limit of 32 levels"],
    );
    let mut q = trend(series);
    q["trendsFilter"] = json!({ "formula": "A + B" });
    let (status, body, _) = query(&server, q);
    assert_eq!(status, 200, "{body}");
    assert_serving(&server);
}

#[test]
fn query_cost_limits_are_refused_before_running_by_name() {
    let server = Server::start();
    server.capture(json!([event("pageview", "u1", json!({"$browser": "x"}))]));

    // Minute buckets over six days × 100k breakdown values.
    refused(
        &server,
        "trend cells",
        json!({"kind": "TrendsQuery", "series": [{"event": "pageview"}], "interval": "minute",
               "dateRange": {"date_from": "-6d"},
               "breakdownFilter": {"breakdown": "$browser", "breakdown_limit": 100_000}}),
        &["buckets × 100001 breakdown values", "limit of 500000 cells"],
    );
    // 1000 intervals over three years of daily cohorts.
    refused(
        &server,
        "retention cells",
        json!({"kind": "RetentionQuery", "dateRange": {"date_from": "-1095d"},
               "retentionFilter": {"period": "Day", "totalIntervals": 1000,
                                   "targetEntity": {"id": "pageview"}, "returningEntity": {"id": "pageview"}}}),
        &["1000 intervals", "limit of 250000 cells"],
    );
    let many: Vec<Value> = (0..51).map(|_| json!({"event": "pageview"})).collect();
    refused(&server, "51 series", trend(json!(many)), &["limit of 50"]);
    let exclusions: Vec<Value> = (0..33)
        .map(|i| json!({"event": format!("x{i}"), "funnelFromStep": 0, "funnelToStep": 1}))
        .collect();
    refused(
        &server,
        "33 funnel exclusions",
        json!({"kind": "FunnelsQuery", "series": [{"event": "pageview"}, {"event": "signup"}],
               "funnelsFilter": {"exclusions": exclusions}}),
        &["33 funnel exclusions", "limit of 20"],
    );
    let steps: Vec<Value> = (0..21).map(|i| json!({"event": format!("s{i}")})).collect();
    refused(
        &server,
        "21 funnel steps",
        json!({"kind": "FunnelsQuery", "series": steps}),
        &["limit of 20"],
    );
    assert_serving(&server);
}

#[test]
fn a_nul_in_a_name_key_or_value_is_refused_by_name() {
    let server = Server::start();
    server.capture(json!([event("pageview", "u1", json!({"plan": "pro"}))]));
    let filter = |key: &str, value: &str| {
        trend(json!([{"event": "pageview",
                      "properties": [{"key": key, "value": value, "operator": "exact", "type": "event"}]}]))
    };
    for (name, q, attr) in [
        (
            "event name",
            trend(json!([{"event": "page\u{0}view"}])),
            "query.series[0].event",
        ),
        (
            "property key",
            filter("pl\u{0}an", "pro"),
            "query.series[0].properties[0].key",
        ),
        (
            "filter value",
            filter("plan", "pr\u{0}o"),
            "query.series[0].properties[0].value",
        ),
    ] {
        let (status, body, _) = query(&server, q);
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["attr"], attr, "{name}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("NUL"),
            "{name}: {body}"
        );
    }
    assert_serving(&server);
}

/// Events that make a weekly-active trend by the minute slow: each
/// (minute, person) row joins every minute bucket of the week after it.
fn fill_slow_data(server: &Server) {
    let now = chrono::Utc::now();
    let total = 60_000;
    for chunk in 0..total / 2_000 {
        let batch: Vec<Value> = (0..2_000)
            .map(|k| {
                let i = chunk * 2_000 + k;
                // Spread over the last five and a half days.
                let at = now - chrono::Duration::seconds(60 + i64::from(i) * 8);
                json!({"event": "tick", "distinct_id": format!("u{}", i % 3_000),
                       "timestamp": at.to_rfc3339(), "properties": {}})
            })
            .collect();
        server.capture(json!(batch));
    }
}

fn slow_query() -> Value {
    json!({"kind": "TrendsQuery", "series": [{"event": "tick", "math": "weekly_active"}],
           "interval": "minute", "dateRange": {"date_from": "-6d"}})
}

/// CPU seconds the server burns over the next two seconds.
fn cpu_over_two_seconds(pid: u32) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    cpu_seconds(pid) - before
}

#[test]
fn a_query_past_the_time_limit_is_stopped_with_504() {
    let server = Server::start_with(&["--query-timeout", "2"]);
    fill_slow_data(&server);
    let pid = server.pid();
    let (status, body, took) = query(&server, slow_query());
    assert_eq!(status, 504, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("query timeout of 2 s"), "{detail}");
    assert!(detail.contains("--query-timeout"), "{detail}");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    // The query's DuckDB work stopped with it.
    std::thread::sleep(Duration::from_millis(300));
    let busy = cpu_over_two_seconds(pid);
    assert!(busy < 0.5, "the server used {busy:.2} CPU s after the 504");
    assert_serving(&server);
}

#[test]
fn a_client_that_goes_away_takes_its_query_with_it() {
    let server = Server::start();
    fill_slow_data(&server);
    let pid = server.pid();
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(server.api("/query/"))
        .bearer_auth(common::PERSONAL_KEY)
        .json(&json!({ "query": slow_query() }))
        .send();
    assert!(gave_up.is_err(), "the slow query answered within a second");
    std::thread::sleep(Duration::from_millis(500));
    let busy = cpu_over_two_seconds(pid);
    assert!(
        busy < 0.5,
        "the server used {busy:.2} CPU s after its client left"
    );
    assert_serving(&server);
}

fn create_flag(server: &Server, key: &str, dependencies: &[String]) -> (u16, Value) {
    let filters: Vec<Value> = dependencies
        .iter()
        .map(|d| json!({"key": d, "type": "flag", "operator": "flag_evaluates_to", "value": true}))
        .collect();
    let response = server
        .authed(server.client.post(server.api("/feature_flags/")))
        .json(&json!({"key": key, "filters": {"groups": [{"properties": filters}]}}))
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn flag_chains_are_bounded_and_flags_stay_fast() {
    let server = Server::start();
    // f0 ← f1 ← … : depth 32 is the limit.
    for i in 0..40 {
        let before: Vec<String> = (i > 0).then(|| format!("f{}", i - 1)).into_iter().collect();
        let (status, body) = create_flag(&server, &format!("f{i}"), &before);
        if i <= 32 {
            assert_eq!(status, 201, "f{i}: {body}");
        } else {
            assert_eq!(status, 400, "f{i}: {body}");
            assert_eq!(body["attr"], "filters");
            assert!(
                body["detail"].as_str().unwrap().contains("limit of 32"),
                "{body}"
            );
            break;
        }
    }
    // 20 levels of 3 flags, each depending on all 3 below: 3^20 paths.
    let level = |l: usize| -> Vec<String> { (0..3).map(|k| format!("l{l}_{k}")).collect() };
    for l in 0..20 {
        let below = if l == 0 { Vec::new() } else { level(l - 1) };
        for key in level(l) {
            let started = Instant::now();
            let (status, body) = create_flag(&server, &key, &below);
            assert_eq!(status, 201, "{key}: {body}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "saving {key} took {:?}",
                started.elapsed()
            );
        }
    }
    let started = Instant::now();
    let response = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"api_key": PROJECT_KEY, "distinct_id": "someone"}))
        .send()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["flags"]["l19_2"]["enabled"], true, "{body}");
    assert_eq!(body["flags"]["f32"]["enabled"], true, "{body}");
    assert!(took < Duration::from_secs(1), "/flags took {took:?}");
}
