//! Breakdown rows as PostHog's insight tests see them, through the real
//! binary: step attribution when the attributed event lacks the property,
//! the "Other" row of a multi-property breakdown, formula labels, unordered
//! funnel steps and lifecycle actions.

mod common;

use common::{event_at as at, Server};
use serde_json::{json, Value};

const OTHER: &str = "$$_posthog_breakdown_other_$$";

const RANGE: &str = r#"{"date_from": "2024-03-01", "date_to": "2024-03-10"}"#;

fn funnel(steps: &[&str], filter: Value, breakdown: Value) -> Value {
    let mut query = json!({"kind": "FunnelsQuery",
        "series": steps.iter().map(|e| json!({"kind": "EventsNode", "event": e})).collect::<Vec<_>>(),
        "dateRange": serde_json::from_str::<Value>(RANGE).unwrap(),
        "funnelsFilter": filter});
    if !breakdown.is_null() {
        query["breakdownFilter"] = breakdown;
    }
    query
}

/// `(breakdown_value, counts per step)` of each breakdown's funnel.
fn funnel_rows(answer: &Value) -> Vec<(Value, Vec<u64>)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|steps| {
            let steps = steps.as_array().unwrap();
            (
                steps[0]["breakdown_value"].clone(),
                steps.iter().map(|s| s["count"].as_u64().unwrap()).collect(),
            )
        })
        .collect()
}

#[test]
fn step_attribution_puts_an_actor_whose_step_event_lacks_the_property_under_empty() {
    let server = Server::start();
    server.capture(json!([
        // ana's purchase (the attributed step) has no browser: she converts under "".
        at(
            "signed up",
            "ana",
            "2024-03-02T10:00:00Z",
            json!({"$browser": "Chrome"})
        ),
        at("purchased", "ana", "2024-03-02T11:00:00Z", json!({})),
        at(
            "signed up",
            "ben",
            "2024-03-03T10:00:00Z",
            json!({"$browser": "Chrome"})
        ),
        at(
            "purchased",
            "ben",
            "2024-03-03T11:00:00Z",
            json!({"$browser": "Safari"})
        ),
    ]));
    let body = server.answer(funnel(
        &["signed up", "purchased"],
        json!({"breakdownAttributionType": "step", "breakdownAttributionValue": 1}),
        json!({"breakdown": "$browser", "breakdown_type": "event"}),
    ));
    let mut rows = funnel_rows(&body);
    rows.sort_by_key(|(v, _)| v.to_string());
    assert_eq!(
        rows,
        vec![(json!([""]), vec![1, 1]), (json!(["Safari"]), vec![1, 1])],
        "{body}"
    );
}

/// Three (browser, os) pairs seen 3, 2 and 1 times, each a "viewed" then a
/// "clicked" by its own person; a limit of 1 leaves two pairs in Other.
fn seeded() -> Server {
    let server = Server::start();
    let mut events = Vec::new();
    for (i, (browser, os, n)) in [
        ("Chrome", "Mac", 3),
        ("Safari", "iOS", 2),
        ("Edge", "Windows", 1),
    ]
    .into_iter()
    .enumerate()
    {
        for k in 0..n {
            let who = format!("user-{i}-{k}");
            let props = json!({"$browser": browser, "$os": os});
            events.push(at("viewed", &who, "2024-03-05T10:00:00Z", props.clone()));
            events.push(at("clicked", &who, "2024-03-05T10:05:00Z", props));
        }
    }
    server.capture(Value::Array(events));
    server
}

/// Two series broken down by browser and os, limit 1.
fn two_series_by_browser_and_os(trends_filter: Value) -> Value {
    json!({"kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "viewed", "math": "total"},
            {"kind": "EventsNode", "event": "clicked", "math": "total"}],
        "dateRange": serde_json::from_str::<Value>(RANGE).unwrap(),
        "breakdownFilter": {"breakdowns": [{"property": "$browser"}, {"property": "$os"}],
            "breakdown_limit": 1},
        "trendsFilter": trends_filter})
}

/// `(label, breakdown_value, count)` of each trends row.
fn trends_rows(answer: &Value) -> Vec<(Value, Value, Value)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].clone(),
                r["breakdown_value"].clone(),
                r["count"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_multi_property_other_row_has_one_other_per_breakdown() {
    let server = seeded();
    let body = server.answer(two_series_by_browser_and_os(json!({})));
    let other_label = format!("{OTHER}::{OTHER}");
    assert_eq!(
        trends_rows(&body),
        vec![
            (
                json!("viewed - Chrome::Mac"),
                json!(["Chrome", "Mac"]),
                json!(3)
            ),
            (
                json!(format!("viewed - {other_label}")),
                json!([OTHER, OTHER]),
                json!(3)
            ),
            (
                json!("clicked - Chrome::Mac"),
                json!(["Chrome", "Mac"]),
                json!(3)
            ),
            (
                json!(format!("clicked - {other_label}")),
                json!([OTHER, OTHER]),
                json!(3)
            ),
        ],
        "{body}"
    );
}

#[test]
fn a_formula_row_with_a_breakdown_is_labelled_by_the_formula() {
    let server = seeded();
    let body = server.answer(two_series_by_browser_and_os(json!({"formula": "A + B"})));
    assert_eq!(
        trends_rows(&body),
        vec![
            (json!("Formula (A + B)"), json!(["Chrome", "Mac"]), json!(6)),
            (json!("Formula (A + B)"), json!([OTHER, OTHER]), json!(6)),
        ],
        "{body}"
    );
}

#[test]
fn unordered_funnel_steps_have_no_action_id() {
    let server = seeded();
    for (order, ids) in [
        ("unordered", json!([null, null])),
        ("ordered", json!(["viewed", "clicked"])),
    ] {
        let body = server.answer(funnel(
            &["viewed", "clicked"],
            json!({"funnelOrderType": order}),
            Value::Null,
        ));
        let seen: Vec<Value> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["action_id"].clone())
            .collect();
        assert_eq!(json!(seen), ids, "{order}: {body}");
    }
}

#[test]
fn lifecycle_rows_action_counts_totals() {
    let server = seeded();
    let body = server.answer(json!({"kind": "LifecycleQuery", "interval": "day",
            "dateRange": serde_json::from_str::<Value>(RANGE).unwrap(),
            "series": [{"kind": "EventsNode", "event": "viewed"}]}));
    let rows = body["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{body}");
    for row in rows {
        assert_eq!(row["action"]["math"], "total", "{row}");
        assert_eq!(row["action"]["id"], "viewed", "{row}");
    }
}
