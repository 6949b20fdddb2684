//! Insights through the real binary: events captured over HTTP, answered
//! by `POST /api/projects/:id/query/`, by persons and by group type.

mod common;

use common::{event_at as at, Server};
use serde_json::{json, Value};

/// `distinct_id` identifies at `timestamp`, merging `anon`'s person into theirs.
fn identify_merging(server: &Server, distinct_id: &str, anon: &str, timestamp: &str) {
    server.capture(json!([at(
        "$identify",
        distinct_id,
        timestamp,
        json!({"$anon_distinct_id": anon})
    )]));
}

/// Two companies; ana and ben at acme (ben first anonymous, then identified), cy at globex.
fn seed(server: &Server) {
    server.capture(json!([
        at("$groupidentify", "admin", "2024-03-01T00:00:00Z",
           json!({"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "pro"}})),
        at("$groupidentify", "admin", "2024-03-01T00:00:00Z",
           json!({"$group_type": "company", "$group_key": "globex", "$group_set": {"plan": "free"}})),
        at("opened app", "ana", "2024-03-09T10:00:00Z", json!({"$groups": {"company": "acme"}})),
        at("opened app", "anon-1", "2024-03-09T11:00:00Z", json!({"$groups": {"company": "acme"}})),
        at("$identify", "ben", "2024-03-09T11:05:00Z", json!({"$anon_distinct_id": "anon-1"})),
        at("opened app", "ben", "2024-03-09T12:00:00Z", json!({"$groups": {"company": "acme"}})),
        at("opened app", "cy", "2024-03-10T23:30:00Z", json!({"$groups": {"company": "globex"}})),
    ]));
}

/// `(breakdown_value, count)` of each result.
fn breakdown_counts(answer: &Value) -> Vec<(Value, Value)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["breakdown_value"].clone(), r["count"].clone()))
        .collect()
}

fn trends(series: Value, extra: Value) -> Value {
    let mut q = json!({"kind": "TrendsQuery", "series": series,
        "dateRange": {"date_from": "2024-03-08", "date_to": "2024-03-11"}});
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

#[test]
fn trends_count_persons_after_merges_and_companies() {
    let server = Server::start();
    seed(&server);
    let body = server.answer(trends(
            json!([
                {"kind": "EventsNode", "event": "opened app"},
                {"kind": "EventsNode", "event": "opened app", "math": "dau"},
                {"kind": "EventsNode", "event": "opened app", "math": "unique_group", "math_group_type_index": 0}
            ]),
            json!({}),
        ),
    );
    let data: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["data"])
        .collect();
    assert_eq!(data[0], &json!([0, 3, 1, 0]));
    assert_eq!(
        data[1],
        &json!([0, 2, 1, 0]),
        "anon-1 and ben are one person"
    );
    assert_eq!(data[2], &json!([0, 1, 1, 0]));
    assert_eq!(
        body["results"][0]["days"],
        json!(["2024-03-08", "2024-03-09", "2024-03-10", "2024-03-11"])
    );

    let body = server.answer(trends(
            json!([{"event": "opened app", "math": "dau"}]),
            json!({"breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0}}),
        ),
    );
    let by_plan = breakdown_counts(&body);
    assert_eq!(
        by_plan,
        vec![(json!("pro"), json!(2)), (json!("free"), json!(1))]
    );
}

#[test]
fn the_project_timezone_moves_events_between_days() {
    let server = Server::start();
    seed(&server);
    let q = trends(json!([{"event": "opened app"}]), json!({}));
    assert_eq!(
        server.answer(q.clone())["results"][0]["data"],
        json!([0, 3, 1, 0])
    );
    let response = server
        .authed(server.client.patch(server.api("/")))
        .json(&json!({"timezone": "Asia/Tokyo"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // cy's 23:30Z on Mar 10 is Mar 11 in Tokyo.
    let body = server.answer(q);
    assert_eq!(body["results"][0]["data"], json!([0, 3, 0, 1]));
    assert_eq!(body["timezone"], "Asia/Tokyo");
}

/// A zone behind UTC (no DST): each insight kind answers, by local days.
#[test]
fn a_project_behind_utc_buckets_by_its_local_day() {
    let server = Server::start();
    let response = server
        .authed(server.client.patch(server.api("/")))
        .json(&json!({"timezone": "America/Phoenix"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // Mar 9 23:30 and Mar 10 00:30 in Phoenix (UTC-7): both Mar 10 in UTC.
    server.capture(json!([
        at("opened app", "p", "2024-03-10T06:30:00Z", json!({})),
        at("opened app", "q", "2024-03-10T07:30:00Z", json!({})),
    ]));
    let range = json!({"date_from": "2024-03-08", "date_to": "2024-03-11"});
    let series = json!([{"kind": "EventsNode", "event": "opened app"}]);
    let trends = server.answer(trends(series.clone(), json!({})));
    assert_eq!(trends["results"][0]["data"], json!([0, 1, 1, 0]));
    let lifecycle =
        server.answer(json!({"kind": "LifecycleQuery", "dateRange": range, "series": series}));
    let new = lifecycle["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "new")
        .unwrap();
    assert_eq!(new["data"], json!([0, 1, 1, 0]));
    let stickiness =
        server.answer(json!({"kind": "StickinessQuery", "dateRange": range, "series": series}));
    assert_eq!(stickiness["results"][0]["data"], json!([2, 0, 0, 0]));
    let retention = server.answer(json!({"kind": "RetentionQuery", "dateRange": range,
            "retentionFilter": {"period": "Day", "totalIntervals": 4,
                "targetEntity": {"id": "opened app"}, "returningEntity": {"id": "opened app"}}}));
    let cohorts: Vec<&Value> = retention["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["values"][0]["count"])
        .collect();
    assert_eq!(cohorts, [&json!(0), &json!(1), &json!(1), &json!(0)]);
}

#[test]
fn bad_queries_are_400s_naming_the_field() {
    let server = Server::start();
    seed(&server);
    let (status, body) =
        server.query(json!({"kind": "TrendsQuery", "series": [{"event": "x", "math": "nope"}]}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "query.series[0].math");
    let (status, body) = server
        .query(json!({"kind": "TrendsQuery", "series": [{"event": "x"}], "interval": "fortnight"}));
    assert_eq!(status, 400);
    assert_eq!(body["attr"], "query.interval");
    let (status, body) = server.query(json!({"kind": "HogQLQuery", "query": "select 1"}));
    assert_eq!(status, 400);
    assert_eq!(body["attr"], "query.kind");
    let response = server
        .authed(server.client.post(server.api("/query/")))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .client
        .post(server.api("/query/"))
        .json(&json!({"query": {}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn every_insight_kind_answers_by_company_over_http() {
    let server = Server::start();
    seed(&server);
    server.capture(json!([
        at(
            "signed up",
            "ana",
            "2024-03-09T09:55:00Z",
            json!({"$groups": {"company": "acme"}})
        ),
        at(
            "signed up",
            "cy",
            "2024-03-10T23:25:00Z",
            json!({"$groups": {"company": "globex"}})
        ),
    ]));
    let range = json!({"date_from": "2024-03-08", "date_to": "2024-03-11"});
    let by_company = |kind: &str, extra: Value| {
        let mut q = json!({"kind": kind, "dateRange": range, "aggregation_group_type_index": 0});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        server.answer(q)
    };
    let funnel = by_company(
        "FunnelsQuery",
        json!({"series": [{"event": "signed up"}, {"event": "opened app"}]}),
    );
    let counts: Vec<&Value> = funnel["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["count"])
        .collect();
    assert_eq!(counts, vec![&json!(2), &json!(2)]);

    let retention = by_company(
        "RetentionQuery",
        json!({"retentionFilter": {
        "targetEntity": {"id": "opened app"}, "returningEntity": {"id": "opened app"}, "totalIntervals": 3}}),
    );
    let day_9: Vec<&Value> = retention["results"][1]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["count"])
        .collect();
    assert_eq!(day_9, vec![&json!(1), &json!(0), &json!(0)]);

    let lifecycle = by_company(
        "LifecycleQuery",
        json!({"series": [{"event": "opened app"}]}),
    );
    let statuses: Vec<&Value> = lifecycle["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(
        statuses,
        vec!["new", "returning", "resurrecting", "dormant"]
    );

    let stickiness = server.answer(json!({"kind": "StickinessQuery", "dateRange": range,
        "series": [{"event": "opened app", "math": "unique_group", "math_group_type_index": 0}]}));
    assert_eq!(stickiness["results"][0]["data"], json!([2, 0, 0, 0]));

    let paths = by_company(
        "PathsQuery",
        json!({"pathsFilter": {"includeEventTypes": ["custom_event"]}}),
    );
    assert_eq!(paths["results"][0]["source"], "1_signed up");
    assert_eq!(paths["results"][0]["target"], "2_opened app");
    assert_eq!(paths["results"][0]["value"], 2);
}

#[test]
fn persons_merged_after_their_events_count_once() {
    let server = Server::start();
    server.capture(json!([
        at("opened app", "anon-2", "2024-03-09T10:00:00Z", json!({})),
        at("opened app", "carl", "2024-03-09T11:00:00Z", json!({})),
    ]));
    // Two persons so far; identifying merges anon-2's person into carl's.
    identify_merging(&server, "carl", "anon-2", "2024-03-09T12:00:00Z");
    let body = server.answer(trends(
        json!([{"event": "opened app", "math": "dau"}]),
        json!({}),
    ));
    assert_eq!(body["results"][0]["data"], json!([0, 1, 0, 0]));
    let body = server.answer(trends(
            json!([{"event": "opened app", "math": "dau"}]),
            json!({"properties": [{"key": "$initial_current_url", "operator": "is_not_set", "type": "person"}]}),
        ),
    );
    assert_eq!(
        body["results"][0]["data"],
        json!([0, 1, 0, 0]),
        "person properties follow the merge"
    );
}

#[test]
fn lifecycle_follows_a_merge() {
    let server = Server::start();
    server.capture(json!([
        at("opened app", "anon-4", "2024-03-08T10:00:00Z", json!({})),
        at("opened app", "erin", "2024-03-09T10:00:00Z", json!({})),
    ]));
    identify_merging(&server, "erin", "anon-4", "2024-03-09T12:00:00Z");
    let lifecycle = server.answer(json!({"kind": "LifecycleQuery",
        "dateRange": {"date_from": "2024-03-08", "date_to": "2024-03-10"},
        "series": [{"event": "opened app"}]}));
    let data = |status: &str| {
        let results = lifecycle["results"].as_array().unwrap();
        results.iter().find(|r| r["status"] == status).unwrap()["data"].clone()
    };
    // One person, active two days running, then gone.
    assert_eq!(data("returning"), json!([0, 1, 0]));
    assert_eq!(data("dormant"), json!([0, 0, -1]));
    let first_day = data("new")[0].as_i64().unwrap() + data("resurrecting")[0].as_i64().unwrap();
    assert_eq!(first_day, 1);
}

#[test]
fn a_path_continues_across_a_merge() {
    let server = Server::start();
    let page = |who: &str, at_time: &str, url: &str| {
        at("$pageview", who, at_time, json!({"$current_url": url}))
    };
    server.capture(json!([
        page("anon-3", "2024-03-09T10:00:00Z", "https://app.io/"),
        page("dana", "2024-03-09T10:05:00Z", "https://app.io/pricing"),
    ]));
    identify_merging(&server, "dana", "anon-3", "2024-03-09T10:06:00Z");
    let paths = server.answer(json!({"kind": "PathsQuery", "dateRange": {"date_from": "2024-03-09", "date_to": "2024-03-09"},
               "pathsFilter": {"includeEventTypes": ["$pageview"]}}),
    );
    assert_eq!(
        paths["results"],
        json!([{"source": "1_https://app.io", "target": "2_https://app.io/pricing",
        "value": 1, "average_conversion_time": 300000.0}])
    );
}

#[test]
fn retention_follows_a_merge() {
    let server = Server::start();
    server.capture(json!([
        at("$pageview", "anon-4", "2024-03-04T10:00:00Z", json!({})),
        at("$pageview", "erin", "2024-03-11T10:00:00Z", json!({})),
    ]));
    identify_merging(&server, "erin", "anon-4", "2024-03-11T10:01:00Z");
    let retention = server.answer(json!({"kind": "RetentionQuery", "dateRange": {"date_from": "2024-03-03", "date_to": "2024-03-16"},
               "retentionFilter": {"period": "Week", "totalIntervals": 2,
                   "targetEntity": {"id": "$pageview"}, "returningEntity": {"id": "$pageview"}}}),
    );
    let counts: Vec<Vec<i64>> = retention["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let values = row["values"].as_array().unwrap();
            values
                .iter()
                .map(|v| v["count"].as_i64().unwrap())
                .collect()
        })
        .collect();
    // One person, active both weeks.
    assert_eq!(counts, vec![vec![1, 1], vec![1, 0]]);
}

#[test]
fn page_paths_and_url_breakdowns_read_captured_urls() {
    let server = Server::start();
    server.capture(json!([
        at(
            "$pageview",
            "ana",
            "2024-03-09T10:00:00Z",
            json!({"$current_url": "https://app.io/"})
        ),
        at(
            "$pageview",
            "ana",
            "2024-03-09T10:01:00Z",
            json!({"$current_url": "https://app.io/pricing"})
        ),
        at(
            "$pageview",
            "ben",
            "2024-03-09T10:02:00Z",
            json!({"$current_url": "https://app.io/pricing/"})
        ),
    ]));
    let paths = server.answer(json!({"kind": "PathsQuery", "dateRange": {"date_from": "2024-03-09", "date_to": "2024-03-09"}}),
    );
    assert_eq!(
        paths["results"],
        json!([{"source": "1_https://app.io", "target": "2_https://app.io/pricing",
        "value": 1, "average_conversion_time": 60000.0}])
    );
    let by_url = server.answer(trends(
        json!([{"event": "$pageview"}]),
        json!({"breakdownFilter": {"breakdown": "$current_url", "breakdown_normalize_url": true}}),
    ));
    let counts = breakdown_counts(&by_url);
    assert_eq!(
        counts,
        vec![
            (json!("https://app.io/pricing"), json!(2)),
            (json!("https://app.io"), json!(1))
        ]
    );
}
