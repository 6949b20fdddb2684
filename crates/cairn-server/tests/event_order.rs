//! The embedded store sorts its events by name and time in the background
//! (`--sort-after-events`): insights, drill-downs and the events listing
//! answer exactly as before the sort, and events that arrive after it count
//! with those sorted.

mod common;

use std::time::{Duration, Instant};

use common::{event_at, Server};
use serde_json::{json, Value};

/// Ten people at five companies: each signs up, some activate, all view
/// pages, on days spread over a week, sent as several batches (loads).
fn capture_week(server: &Server, week: u32) {
    for person in 0..10 {
        let id = format!("w{week}-p{person}");
        let company = format!("c{}", person % 5);
        let groups = json!({"$groups": {"company": company}});
        let day = |d: u32| format!("2026-11-{:02}T{:02}:00:00Z", 2 + 7 * week + d, 8 + person);
        let mut batch = vec![
            event_at("$pageview", &id, &day(0), groups.clone()),
            event_at("signed up", &id, &day(1), groups.clone()),
            event_at("$pageview", &id, &day(2), groups.clone()),
        ];
        if person % 3 != 0 {
            batch.push(event_at("activated", &id, &day(3), groups.clone()));
        }
        server.capture(Value::Array(batch));
    }
}

/// The answers a user sees, for comparing before and after a sort.
fn answers(server: &Server) -> Vec<Value> {
    let range = json!({"date_from": "2026-11-01", "date_to": "2026-11-30"});
    let queries = [
        json!({"kind": "TrendsQuery", "dateRange": range, "series": [
            {"event": "$pageview"}, {"event": "signed up", "math": "dau"},
            {"event": "$pageview", "math": "unique_group", "math_group_type_index": 0}]}),
        json!({"kind": "FunnelsQuery", "dateRange": range,
            "series": [{"event": "signed up"}, {"event": "activated"}]}),
        json!({"kind": "FunnelsQuery", "dateRange": range, "aggregation_group_type_index": 0,
            "series": [{"event": "signed up"}, {"event": "activated"}]}),
        json!({"kind": "RetentionQuery", "dateRange": range, "retentionFilter": {"period": "Week",
            "totalIntervals": 3, "targetEntity": {"id": "$pageview"}, "returningEntity": {"id": "$pageview"}}}),
    ];
    let mut all: Vec<Value> = queries
        .into_iter()
        .map(|query| {
            let mut answer = server.answer(query);
            answer.as_object_mut().unwrap().remove("last_refresh");
            answer["results"].take()
        })
        .collect();
    let mut listed: Vec<String> = server
        .events("")
        .iter()
        .map(|e| format!("{} {} {}", e["event"], e["distinct_id"], e["timestamp"]))
        .collect();
    listed.sort();
    all.push(json!(listed));
    all
}

fn metric(server: &Server, name: &str) -> f64 {
    server
        .metrics()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the background pass has sorted everything.
fn wait_sorted(server: &Server, passes: f64) {
    let started = Instant::now();
    while metric(server, "cairn_event_sort_passes_total") < passes
        || metric(server, "cairn_events_unsorted") != 0.0
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no sort within 60 s: {}",
            server.metrics()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sorting_events_changes_no_answer() {
    let mut server = Server::start_with(&["--sort-after-events", "0"]);
    capture_week(&server, 0);
    let before = answers(&server);
    assert_eq!(before[1][0]["count"], 10, "{}", before[1]);
    assert_eq!(before[1][1]["count"], 6, "{}", before[1]);
    assert_eq!(before[4].as_array().unwrap().len(), 36);

    server.stop();
    server.respawn_with(&["--sort-after-events", "20"]);
    wait_sorted(&server, 1.0);
    assert_eq!(answers(&server), before);

    // Events after the sort count with the sorted ones, before their own
    // sort and after it (which merges them into one run with the first).
    capture_week(&server, 1);
    let unsorted = answers(&server);
    assert_eq!(unsorted[1][0]["count"], 20, "{}", unsorted[1]);
    assert_eq!(unsorted[4].as_array().unwrap().len(), 72);
    wait_sorted(&server, 2.0);
    assert_eq!(answers(&server), unsorted);
    assert_eq!(metric(&server, "cairn_events_resorted_total"), 36.0 + 72.0);
}
