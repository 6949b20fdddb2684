//! Drill-down: `ActorsQuery` with a `source` lists the persons or groups
//! behind one number of an insight: exactly the actors the number counted.

mod common;

use std::collections::BTreeSet;

use common::{event_at, Server};
use serde_json::{json, Value};

const RANGE: (&str, &str) = ("2024-01-01", "2024-01-07");

fn date_range() -> Value {
    json!({"date_from": RANGE.0, "date_to": RANGE.1})
}

fn with_company(mut e: Value, company: Option<&str>) -> Value {
    if let Some(company) = company {
        e["properties"]["$groups"] = json!({"company": company});
    }
    e
}

/// Five persons in three companies (Erin in none), January 2024:
/// - alice (acme): signup 1st 10:00 (pro), view 10:05, pay 2nd 10:00, view 3rd
/// - bob (acme): signup 1st 11:00 (free), view 11:05
/// - carol (globex): signup 2nd 09:00 (pro), pay 5th 10:00
/// - dave (initech): signup 3rd 09:00 (free)
/// - erin: signup 1st 12:00 (pro), pay 10th (after the range)
fn fixture() -> Server {
    let server = Server::start();
    let identify = |key: &str, name: &str| {
        event_at(
            "$groupidentify",
            "admin",
            "2023-12-31T00:00:00Z",
            json!({"$group_type": "company", "$group_key": key, "$group_set": {"name": name}}),
        )
    };
    let person = |who: &str, company: Option<&str>| -> Vec<Value> {
        let set = event_at(
            "$set",
            who,
            "2024-01-01T00:00:00Z",
            json!({"$set": {"email": format!("{who}@example.com")}}),
        );
        vec![with_company(set, company)]
    };
    let at = |name: &str, who: &str, company: Option<&str>, t: &str, props: Value| {
        with_company(event_at(name, who, t, props), company)
    };
    let mut batch = vec![
        identify("acme", "Acme Inc"),
        identify("globex", "Globex"),
        // A name a spreadsheet would run, with a comma, quotes and a newline.
        identify("initech", "=2+3, \"Initech\"\nLtd"),
    ];
    for (who, company) in [
        ("alice", Some("acme")),
        ("bob", Some("acme")),
        ("carol", Some("globex")),
        ("dave", Some("initech")),
        ("erin", None),
    ] {
        batch.extend(person(who, company));
    }
    let acme = Some("acme");
    batch.extend([
        at(
            "signup",
            "alice",
            acme,
            "2024-01-01T10:00:00Z",
            json!({"plan": "pro"}),
        ),
        at("view", "alice", acme, "2024-01-01T10:05:00Z", json!({})),
        at("pay", "alice", acme, "2024-01-02T10:00:00Z", json!({})),
        at("view", "alice", acme, "2024-01-03T10:00:00Z", json!({})),
        at(
            "signup",
            "bob",
            acme,
            "2024-01-01T11:00:00Z",
            json!({"plan": "free"}),
        ),
        at("view", "bob", acme, "2024-01-01T11:05:00Z", json!({})),
        at(
            "signup",
            "carol",
            Some("globex"),
            "2024-01-02T09:00:00Z",
            json!({"plan": "pro"}),
        ),
        at(
            "pay",
            "carol",
            Some("globex"),
            "2024-01-05T10:00:00Z",
            json!({}),
        ),
        at(
            "signup",
            "dave",
            Some("initech"),
            "2024-01-03T09:00:00Z",
            json!({"plan": "free"}),
        ),
        at(
            "signup",
            "erin",
            None,
            "2024-01-01T12:00:00Z",
            json!({"plan": "pro"}),
        ),
        at("pay", "erin", None, "2024-01-10T10:00:00Z", json!({})),
    ]);
    server.capture(Value::Array(batch));
    server
}

fn drill(server: &Server, source: Value, extra: Value) -> Value {
    let mut query = json!({"kind": "ActorsQuery", "source": source});
    for (k, v) in extra.as_object().unwrap() {
        query[k] = v.clone();
    }
    server.answer(query)
}

/// The display names of an answer's actors (`actor` is the first column).
fn names(answer: &Value) -> BTreeSet<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let actor = &row[0];
            actor["name"]
                .as_str()
                .or(actor["display_name"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn emails(who: &[&str]) -> BTreeSet<String> {
    who.iter().map(|w| format!("{w}@example.com")).collect()
}

fn trends(series: Value, extra: Value) -> Value {
    let mut q = json!({"kind": "TrendsQuery", "series": series, "dateRange": date_range()});
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

fn funnel(extra: Value) -> Value {
    let mut q = json!({
        "kind": "FunnelsQuery",
        "series": [{"kind": "EventsNode", "event": "signup"}, {"kind": "EventsNode", "event": "pay"}],
        "dateRange": date_range(),
        "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"},
    });
    for (k, v) in extra.as_object().unwrap() {
        q[k] = v.clone();
    }
    q
}

#[test]
fn trends_points_list_the_persons_and_companies_they_counted() {
    let server = fixture();
    let dau = trends(
        json!([{"kind": "EventsNode", "event": "signup", "math": "dau"}]),
        json!({}),
    );
    let insight = server.answer(dau.clone());
    assert_eq!(insight["results"][0]["data"][0], 3, "{insight}");
    let cell = json!({"kind": "InsightActorsQuery", "source": dau, "day": "2024-01-01"});
    let answer = drill(&server, cell, json!({}));
    assert_eq!(
        answer["columns"],
        json!([
            "actor",
            "event_count",
            "first_event_time",
            "last_event_time"
        ])
    );
    assert_eq!(names(&answer), emails(&["alice", "bob", "erin"]));
    assert_eq!(answer["hasMore"], false);

    // Companies: Acme, with both its members.
    let companies = trends(
        json!([{"kind": "EventsNode", "event": "signup", "math": "unique_group", "math_group_type_index": 0}]),
        json!({}),
    );
    let cell = json!({"kind": "InsightActorsQuery", "source": companies, "day": "2024-01-01"});
    let answer = drill(
        &server,
        cell,
        json!({"select": ["actor", "event_count", "members"]}),
    );
    assert_eq!(answer["results"].as_array().unwrap().len(), 1, "{answer}");
    let row = &answer["results"][0];
    assert_eq!(row[0]["group_key"], "acme");
    assert_eq!(row[0]["display_name"], "Acme Inc");
    assert_eq!((row[1].clone(), row[2].clone()), (json!(2), json!(2)));
}

#[test]
fn the_other_bucket_lists_exactly_the_values_it_summed() {
    let server = fixture();
    let query = trends(
        json!([{"kind": "EventsNode", "event": "signup", "math": "dau"}]),
        json!({"breakdownFilter": {"breakdown": "plan", "breakdown_limit": 1}}),
    );
    let insight = server.answer(query.clone());
    let results = insight["results"].as_array().unwrap();
    assert_eq!(results[0]["breakdown_value"], "pro");
    assert_eq!(
        results[1]["breakdown_value"],
        "$$_posthog_breakdown_other_$$"
    );
    for (value, day, who) in [
        ("pro", "2024-01-01", vec!["alice", "erin"]),
        ("$$_posthog_breakdown_other_$$", "2024-01-01", vec!["bob"]),
        ("$$_posthog_breakdown_other_$$", "2024-01-03", vec!["dave"]),
    ] {
        let cell =
            json!({"kind": "InsightActorsQuery", "source": query, "day": day, "breakdown": value});
        assert_eq!(
            names(&drill(&server, cell, json!({}))),
            emails(&who),
            "{value} {day}"
        );
    }
}

#[test]
fn funnel_steps_list_who_converted_and_who_dropped_off() {
    let server = fixture();
    let step = |source: Value, n: i64, extra: Value| {
        drill(
            &server,
            json!({"kind": "FunnelsActorsQuery", "source": source, "funnelStep": n}),
            extra,
        )
    };
    let converted = step(
        funnel(json!({})),
        2,
        json!({"orderBy": ["time_to_convert ASC"]}),
    );
    assert_eq!(names(&converted), emails(&["alice", "carol"]));
    let times: Vec<&Value> = converted["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r[1])
        .collect();
    assert_eq!(times, [&json!(86400.0), &json!(262800.0)]);
    assert_eq!(
        names(&step(funnel(json!({})), -2, json!({}))),
        emails(&["bob", "dave", "erin"])
    );

    // Counted in companies: Initech dropped off; Acme and Globex converted
    // (Acme from Bob's signup, the latest first step before the payment).
    let by_company = funnel(json!({"aggregation_group_type_index": 0}));
    let dropped = step(by_company.clone(), -2, json!({}));
    assert_eq!(dropped["results"].as_array().unwrap().len(), 1);
    assert_eq!(dropped["results"][0][0]["group_key"], "initech");
    assert_eq!(
        names(&step(by_company.clone(), 2, json!({}))),
        set(&["Acme Inc", "Globex"])
    );
    // Filtered by the companies' own properties, searched by name.
    let filtered = step(
        by_company.clone(),
        1,
        json!({"properties": [{"key": "name", "value": "Acme Inc", "operator": "exact", "type": "group", "group_type_index": 0}]}),
    );
    assert_eq!(names(&filtered), set(&["Acme Inc"]));
    assert_eq!(
        names(&step(by_company.clone(), 1, json!({"search": "GLOB"}))),
        set(&["Globex"])
    );
    // Persons filtered by person properties.
    let filtered = step(
        funnel(json!({})),
        1,
        json!({"properties": [{"key": "email", "value": "E@", "operator": "icontains", "type": "person"}]}),
    );
    assert_eq!(names(&filtered), emails(&["alice", "dave"]));
    // A person filter on companies names what to use instead.
    let (status, body) = server.query(json!({
        "kind": "ActorsQuery",
        "source": {"kind": "FunnelsActorsQuery", "source": by_company, "funnelStep": 1},
        "properties": [{"key": "email", "value": "x", "type": "person"}],
    }));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "query.properties[0]", "{body}");
}

#[test]
fn lifecycle_stickiness_retention_and_paths_drill_into_their_cells() {
    let server = fixture();
    let lifecycle = json!({
        "kind": "LifecycleQuery",
        "series": [{"kind": "EventsNode", "event": "signup"}],
        "dateRange": date_range(),
    });
    let insight = server.answer(lifecycle.clone());
    let dormant = insight["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "dormant")
        .unwrap();
    assert_eq!(dormant["data"][1], -3, "{dormant}");
    let cell = json!({"kind": "InsightActorsQuery", "source": lifecycle, "day": "2024-01-02", "status": "dormant"});
    assert_eq!(
        names(&drill(&server, cell, json!({}))),
        emails(&["alice", "bob", "erin"])
    );

    let stickiness = json!({
        "kind": "StickinessQuery",
        "series": [{"kind": "EventsNode", "event": "view"}],
        "dateRange": date_range(),
    });
    let cell = json!({"kind": "InsightActorsQuery", "source": stickiness, "day": 2});
    assert_eq!(names(&drill(&server, cell, json!({}))), emails(&["alice"]));

    let retention = json!({
        "kind": "RetentionQuery",
        "dateRange": date_range(),
        "retentionFilter": {
            "period": "Day", "totalIntervals": 7,
            "targetEntity": {"id": "signup", "type": "events"},
            "returningEntity": {"id": "pay", "type": "events"},
        },
    });
    let row = json!({"kind": "InsightActorsQuery", "source": retention, "interval": 0});
    let answer = drill(
        &server,
        row.clone(),
        json!({"select": ["person_display_name", "appearances"], "orderBy": ["display_name"]}),
    );
    assert_eq!(
        answer["results"][0],
        json!([
            "alice@example.com",
            [true, true, false, false, false, false, false]
        ])
    );
    assert_eq!(answer["results"].as_array().unwrap().len(), 3);
    let mut cell = row.clone();
    cell["column"] = json!(1);
    assert_eq!(names(&drill(&server, cell, json!({}))), emails(&["alice"]));

    let mut paths = json!({
        "kind": "PathsQuery",
        "dateRange": date_range(),
        "pathsFilter": {"includeEventTypes": ["custom_event"]},
    });
    let insight = server.answer(paths.clone());
    let edge = insight["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "1_signup" && e["target"] == "2_view")
        .unwrap();
    assert_eq!(edge["value"], 2);
    paths["pathsFilter"]["pathStartKey"] = json!("1_signup");
    paths["pathsFilter"]["pathEndKey"] = json!("2_view");
    let answer = drill(
        &server,
        json!({"kind": "InsightActorsQuery", "source": paths}),
        json!({}),
    );
    assert_eq!(names(&answer), emails(&["alice", "bob"]));
    let counts: u64 = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_u64().unwrap())
        .sum();
    assert_eq!(counts, 2);

    // Counted in companies: Acme's members' events are one stream.
    let acme = set(&["Acme Inc"]);
    let by_company = |mut query: Value, cell: Value| {
        query["aggregation_group_type_index"] = json!(0);
        let mut cell = cell;
        cell["kind"] = json!("InsightActorsQuery");
        cell["source"] = query;
        names(&drill(&server, cell, json!({})))
    };
    let lifecycle = json!({
        "kind": "LifecycleQuery",
        "series": [{"kind": "EventsNode", "event": "signup"}],
        "dateRange": date_range(),
    });
    let dormant = json!({"day": "2024-01-02", "status": "dormant"});
    assert_eq!(by_company(lifecycle, dormant), acme);
    let retention = json!({
        "kind": "RetentionQuery",
        "dateRange": date_range(),
        "retentionFilter": {
            "period": "Day", "totalIntervals": 7,
            "targetEntity": {"id": "signup", "type": "events"},
            "returningEntity": {"id": "pay", "type": "events"},
        },
    });
    assert_eq!(by_company(retention.clone(), json!({"interval": 0})), acme);
    assert_eq!(
        by_company(retention.clone(), json!({"interval": 0, "column": 1})),
        acme
    );
    assert_eq!(
        by_company(retention, json!({"interval": 1})),
        set(&["Globex"])
    );
    let edge = json!({
        "kind": "PathsQuery",
        "dateRange": date_range(),
        "pathsFilter": {"includeEventTypes": ["custom_event"], "pathStartKey": "1_signup", "pathEndKey": "2_view"},
    });
    assert_eq!(by_company(edge, json!({})), acme);
    let stickiness = json!({
        "kind": "StickinessQuery",
        "series": [{"kind": "EventsNode", "event": "view", "math": "unique_group", "math_group_type_index": 0}],
        "dateRange": date_range(),
    });
    let cell = json!({"kind": "InsightActorsQuery", "source": stickiness, "day": 2});
    assert_eq!(names(&drill(&server, cell, json!({}))), acme);
}

#[test]
fn pages_are_stable_and_csv_lists_every_row_safely() {
    let server = fixture();
    let source =
        json!({"kind": "FunnelsActorsQuery", "source": funnel(json!({})), "funnelStep": 1});
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let page = drill(
            &server,
            source.clone(),
            json!({"limit": 2, "offset": offset, "orderBy": ["person DESC"]}),
        );
        assert_eq!(page["hasMore"], offset < 4, "{page}");
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[0]["name"].as_str().unwrap().to_string()),
        );
    }
    let mut expected: Vec<String> = emails(&["alice", "bob", "carol", "dave", "erin"])
        .into_iter()
        .collect();
    expected.reverse();
    assert_eq!(seen, expected);

    let by_company = json!({
        "kind": "FunnelsActorsQuery",
        "source": funnel(json!({"aggregation_group_type_index": 0})),
        "funnelStep": 1,
    });
    let query = json!({"kind": "ActorsQuery", "source": by_company, "select": ["actor", "properties.name"], "orderBy": ["id"]});
    let response = server
        .authed(server.client.post(server.api("/query/")))
        .header("Accept", "text/csv")
        .json(&json!({"query": query}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let weird = "\"'=2+3, \"\"Initech\"\"\nLtd\"";
    assert_eq!(
        response.text().unwrap(),
        format!("id,name,properties.name\nacme,Acme Inc,Acme Inc\nglobex,Globex,Globex\ninitech,{weird},{weird}\n")
    );
}

#[test]
fn a_drill_down_names_what_it_cannot_answer() {
    let server = fixture();
    for (query, attr) in [
        (
            json!({"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": funnel(json!({})), "funnelStep": -1}}),
            "query.source.funnelStep",
        ),
        (
            json!({"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": funnel(json!({})), "funnelStep": 1}, "select": ["matched_recordings"]}),
            "query.select",
        ),
        (
            json!({"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", "source": trends(json!([{"kind": "EventsNode", "event": "signup"}]), json!({})), "day": "2023-01-01"}}),
            "query.source.day",
        ),
        (
            json!({"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", "source": trends(json!([{"kind": "EventsNode", "event": "signup"}]), json!({})), "day": "2024-01-01", "status": "new"}}),
            "query.source.status",
        ),
    ] {
        let (status, body) = server.query(query.clone());
        assert_eq!(status, 400, "{query} -> {body}");
        assert_eq!(body["attr"], attr, "{body}");
    }
}

#[test]
fn a_csv_of_100k_actors_streams_every_row_in_bounded_memory() {
    // A small entity cache, so that what grows is the CSV's own memory.
    let server = Server::start_with(&["--entity-cache-size", "8MiB"]);
    let persons = 100_000;
    for chunk in 0..persons / 10_000 {
        let batch: Vec<Value> = (0..10_000)
            .map(|i| {
                let n = chunk * 10_000 + i;
                event_at(
                    "signup",
                    &format!("user-{n}"),
                    "2024-01-02T10:00:00Z",
                    json!({"$set": {"email": format!("=user{n}@example.com")}}),
                )
            })
            .collect();
        server.capture(Value::Array(batch));
    }
    let query = trends(
        json!([{"kind": "EventsNode", "event": "signup", "math": "dau"}]),
        json!({}),
    );
    let cell = json!({"kind": "InsightActorsQuery", "source": query, "day": "2024-01-02"});
    // The same list as one JSON page first: the engine's query and the
    // sorted ids and facts of the actors (about 200 bytes each) are then in
    // the peak already, and what the CSV adds is its own.
    let page = drill(&server, cell.clone(), json!({"limit": 1}));
    assert_eq!(page["hasMore"], true);
    let (_, peak_before) = common::memory_kb(server.pid());
    let response = server
        .authed(server.client.post(server.api("/query/?format=csv")))
        .json(&json!({"query": {"kind": "ActorsQuery", "source": cell, "select": ["actor", "event_count"]}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // Read as it streams, counting lines without keeping them.
    let mut reader = std::io::BufReader::new(response);
    let (mut lines, mut line) = (0, String::new());
    let mut header = String::new();
    while std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0 {
        if lines == 0 {
            header = line.clone();
        } else {
            assert!(line.contains(",'=user"), "a formula is escaped: {line}");
        }
        lines += 1;
        line.clear();
    }
    assert_eq!(header, "id,name,event_count\n");
    assert_eq!(lines, persons + 1);
    let (_, peak_after) = common::memory_kb(server.pid());
    // Rows are written a chunk at a time, never all held.
    let grown_mb = peak_after.saturating_sub(peak_before) / 1024;
    eprintln!("peak memory grew {grown_mb} MB more for a CSV of {persons} actors");
    assert!(grown_mb < 40, "peak memory grew {grown_mb} MB");
}

#[test]
fn funnel_drill_downs_follow_order_windows_exclusions_and_attribution() {
    let server = Server::start();
    let at = |name: &str, who: &str, t: &str, props: Value| {
        event_at(name, who, &format!("2024-01-{t}:00Z"), props)
    };
    server.capture(json!([
        // p1: an exclusion between the steps; strict: it breaks the chain.
        at("a", "p1", "01T10:00", json!({})),
        at("x", "p1", "01T10:30", json!({})),
        at("b", "p1", "01T11:00", json!({})),
        // p2: another event between the steps (strict: broken).
        at("a", "p2", "01T10:00", json!({"src": "ads"})),
        at("c", "p2", "01T10:10", json!({})),
        at("b", "p2", "01T10:20", json!({})),
        // p3: the steps in the wrong order (unordered: converted).
        at("b", "p3", "01T09:00", json!({})),
        at("a", "p3", "01T10:00", json!({"src": "seo"})),
        // p4: two days between the steps.
        at("a", "p4", "01T10:00", json!({"src": "seo"})),
        at("b", "p4", "03T10:00", json!({})),
    ]));
    let cell = |filter: Value, step: i64, extra: Value| {
        let mut source = json!({
            "kind": "FunnelsQuery",
            "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}],
            "dateRange": date_range(),
            "funnelsFilter": filter,
        });
        for (k, v) in extra.as_object().unwrap() {
            source[k] = v.clone();
        }
        let answer = drill(
            &server,
            json!({"kind": "FunnelsActorsQuery", "source": source, "funnelStep": step}),
            json!({}),
        );
        names(&answer)
    };
    let exclusion = json!({"exclusions": [{"kind": "EventsNode", "event": "x", "funnelFromStep": 0, "funnelToStep": 1}]});
    assert_eq!(cell(exclusion.clone(), 2, json!({})), set(&["p2", "p4"]));
    assert_eq!(cell(exclusion.clone(), -2, json!({})), set(&["p3"]));
    assert_eq!(cell(exclusion, 1, json!({})), set(&["p2", "p3", "p4"]));
    let strict = json!({"funnelOrderType": "strict"});
    assert_eq!(cell(strict.clone(), 2, json!({})), set(&["p4"]));
    assert_eq!(cell(strict, -2, json!({})), set(&["p1", "p2", "p3"]));
    let unordered = json!({"funnelOrderType": "unordered"});
    assert_eq!(
        cell(unordered, 2, json!({})),
        set(&["p1", "p2", "p3", "p4"])
    );
    let one_day = json!({"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "day"});
    assert_eq!(cell(one_day.clone(), 2, json!({})), set(&["p1", "p2"]));
    assert_eq!(cell(one_day, -2, json!({})), set(&["p3", "p4"]));
    // First touch: an actor is listed under the value of its first step.
    let by_source = json!({"breakdownFilter": {"breakdown": "src"}});
    let source_cell = |value: Value, step: i64| {
        let source = json!({
            "kind": "FunnelsQuery",
            "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}],
            "dateRange": date_range(),
            "breakdownFilter": by_source["breakdownFilter"],
        });
        names(&drill(
            &server,
            json!({"kind": "FunnelsActorsQuery", "source": source, "funnelStep": step, "funnelStepBreakdown": value}),
            json!({}),
        ))
    };
    assert_eq!(source_cell(json!(["seo"]), 1), set(&["p3", "p4"]));
    assert_eq!(source_cell(json!(["seo"]), 2), set(&["p4"]));
    assert_eq!(source_cell(json!(["ads"]), 2), set(&["p2"]));
}

#[test]
fn retention_rows_are_first_time_or_recurring_cohorts() {
    let server = Server::start();
    server.capture(json!([
        event_at("start", "p1", "2024-01-01T10:00:00Z", json!({})),
        event_at("start", "p1", "2024-01-03T10:00:00Z", json!({})),
        event_at("start", "p2", "2024-01-03T10:00:00Z", json!({})),
    ]));
    let row = |kind: &str, row: i64| {
        let source = json!({
            "kind": "RetentionQuery",
            "dateRange": date_range(),
            "retentionFilter": {"period": "Day", "totalIntervals": 7, "retentionType": kind,
                "targetEntity": {"id": "start", "type": "events"},
                "returningEntity": {"id": "start", "type": "events"}},
        });
        names(&drill(
            &server,
            json!({"kind": "InsightActorsQuery", "source": source, "interval": row}),
            json!({}),
        ))
    };
    assert_eq!(row("retention_recurring", 2), set(&["p1", "p2"]));
    assert_eq!(row("retention_first_time", 2), set(&["p2"]));
    assert_eq!(row("retention_first_time", 0), set(&["p1"]));
}

#[test]
fn insight_results_download_as_csv() {
    let server = fixture();
    let csv = |query: Value| {
        let response = server
            .authed(server.client.post(server.api("/query/")))
            .header("Accept", "text/csv")
            .json(&json!({"query": query}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    };
    let dau = trends(
        json!([{"kind": "EventsNode", "event": "signup", "math": "dau"}]),
        json!({}),
    );
    assert_eq!(
        csv(dau),
        "series,breakdown_value,compare_label,2024-01-01,2024-01-02,2024-01-03,2024-01-04,2024-01-05,2024-01-06,2024-01-07\n\
         signup,,,3,1,1,0,0,0,0\n"
    );
    assert_eq!(
        csv(funnel(json!({}))),
        "breakdown_value,step,name,count,conversion_rate,average_conversion_time,median_conversion_time\n\
         ,1,signup,5,100.00,,\n\
         ,2,pay,2,40.00,174600.0,174600.0\n"
    );
    let retention = json!({
        "kind": "RetentionQuery",
        "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-02"},
        "retentionFilter": {"period": "Day", "totalIntervals": 2,
            "targetEntity": {"id": "signup", "type": "events"},
            "returningEntity": {"id": "pay", "type": "events"}},
    });
    assert_eq!(
        csv(retention),
        "cohort,date,breakdown_value,Day 0,Day 1\n\
         Day 0,2024-01-01T00:00:00+00:00,,3,1\n\
         Day 1,2024-01-02T00:00:00+00:00,,1,0\n"
    );
}
