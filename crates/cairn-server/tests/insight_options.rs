//! Query options PostHog's insights take, through the real binary: each is
//! applied, or the query is refused naming it; never silently dropped.

mod common;

use common::{event, Server};
use serde_json::{json, Value};

fn at(name: &str, distinct_id: &str, timestamp: &str) -> Value {
    let mut e = event(name, distinct_id, json!({}));
    e["timestamp"] = json!(timestamp);
    e
}

/// ana: 2 events on the 1st, 1 on the 2nd, 3 on the 3rd; bo: 1 on the 1st.
fn seed_stickiness(server: &Server) {
    server.capture(json!([
        at("used", "ana", "2024-05-01T08:00:00Z"),
        at("used", "ana", "2024-05-01T09:00:00Z"),
        at("used", "ana", "2024-05-02T08:00:00Z"),
        at("used", "ana", "2024-05-03T08:00:00Z"),
        at("used", "ana", "2024-05-03T09:00:00Z"),
        at("used", "ana", "2024-05-03T10:00:00Z"),
        at("used", "bo", "2024-05-01T12:00:00Z"),
    ]));
}

fn stickiness(criteria: Value) -> Value {
    let mut q = json!({"kind": "StickinessQuery", "series": [{"kind": "EventsNode", "event": "used"}],
        "dateRange": {"date_from": "2024-05-01", "date_to": "2024-05-04"}});
    if !criteria.is_null() {
        q["stickinessFilter"] = json!({"stickinessCriteria": criteria});
    }
    q
}

#[test]
fn stickiness_criteria_count_only_intervals_with_enough_events() {
    let server = Server::start();
    seed_stickiness(&server);
    let data = |criteria: Value| server.answer(stickiness(criteria))["results"][0]["data"].clone();
    // Without a criterion: ana active 3 days, bo 1.
    assert_eq!(data(Value::Null), json!([1, 0, 1, 0]));
    // ≥ 2 events: ana's 1st and 3rd count, bo's single event does not.
    assert_eq!(
        data(json!({"operator": "gte", "value": 2})),
        json!([0, 1, 0, 0])
    );
    // ≤ 1 event: ana's 2nd, bo's 1st.
    assert_eq!(
        data(json!({"operator": "lte", "value": 1})),
        json!([2, 0, 0, 0])
    );
    // Exactly 3: ana's 3rd only.
    assert_eq!(
        data(json!({"operator": "exact", "value": 3})),
        json!([1, 0, 0, 0])
    );
    // Cumulative mode applies to the counted intervals.
    let mut q = stickiness(json!({"operator": "gte", "value": 2}));
    q["stickinessFilter"]["computedAs"] = json!("cumulative");
    assert_eq!(server.answer(q)["results"][0]["data"], json!([1, 1, 0, 0]));

    // As PostHog's validation: 0 cannot be met by an interval that counts.
    let (status, body) = server.query(stickiness(json!({"operator": "lte", "value": 0})));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "stickinessFilter.stickinessCriteria.value");
    let (status, body) = server.query(stickiness(json!({"operator": "above", "value": 2})));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["attr"],
        "query.stickinessFilter.stickinessCriteria.operator"
    );
}

/// `intervalCount` groups intervals into periods counted back from the
/// range's end, as PostHog's stickiness runner does (`floor(age / n)`).
#[test]
fn stickiness_interval_count_makes_periods_back_from_the_end() {
    let server = Server::start();
    seed_stickiness(&server);
    let mut q = stickiness(Value::Null);
    q["intervalCount"] = json!(2);
    // Periods: 3rd–4th and 1st–2nd. ana is in both, bo only the earlier.
    let r = &server.answer(q.clone())["results"][0];
    assert_eq!(r["days"], json!([1, 2]));
    assert_eq!(r["data"], json!([1, 1]));
    // A criterion counts events per period: ana has 3 in each, bo 1.
    q["stickinessFilter"] = json!({"stickinessCriteria": {"operator": "gte", "value": 2}});
    assert_eq!(
        server.answer(q.clone())["results"][0]["data"],
        json!([0, 1])
    );
    q["intervalCount"] = json!(0);
    let (status, body) = server.query(q);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "intervalCount");

    // Weeks are whole 7 days back from the end (Tue 14 May), not calendar
    // weeks: Wed 8th and Sun 12th fall in one, though Sunday starts a week.
    server.capture(json!([
        at("seen", "cy", "2024-05-08T12:00:00Z"),
        at("seen", "cy", "2024-05-12T12:00:00Z"),
    ]));
    let weeks = |count: Option<u32>| {
        let mut q = json!({"kind": "StickinessQuery", "interval": "week",
            "series": [{"kind": "EventsNode", "event": "seen"}],
            "dateRange": {"date_from": "2024-05-01", "date_to": "2024-05-14"}});
        if let Some(n) = count {
            q["intervalCount"] = json!(n);
        }
        server.answer(q)["results"][0]["data"].clone()
    };
    assert_eq!(weeks(None), json!([0, 1, 0]));
    assert_eq!(weeks(Some(1)), json!([1, 0, 0]));
}

#[test]
fn unknown_query_fields_are_refused_naming_them() {
    let server = Server::start();
    seed_stickiness(&server);
    let trends = |extra: Value| {
        let mut q = json!({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "used"}],
            "dateRange": {"date_from": "2024-05-01", "date_to": "2024-05-04"}});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    };
    // What PostHog's app sends alongside a query, none of it changing the answer.
    let harmless = server.answer(trends(
            json!({"version": 2, "filterTestAccounts": false, "samplingFactor": null,
            "dataColorTheme": 1, "tags": {"productKey": "x"},
            "trendsFilter": {"display": "ActionsLineGraph", "showLegend": true,
                "showValuesOnSeries": false, "aggregationAxisFormat": "numeric", "decimalPlaces": 2},
            "series": [{"kind": "EventsNode", "event": "used", "version": 1}]}),
        ),
    );
    assert_eq!(harmless["results"][0]["data"], json!([3, 1, 3, 0]));

    let refused = |q: Value, attr: &str| {
        let (status, body) = server.query(q);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["attr"], attr, "{body}");
        let name = attr.rsplit('.').next().unwrap();
        assert!(body["detail"].as_str().unwrap().contains(name), "{body}");
    };
    // Each of these would change PostHog's answer; Cairn does not do them.
    refused(
        trends(json!({"trendsFilter": {"showLegend": true, "breakdown_histogram_bin_count": 5}})),
        "query.trendsFilter.breakdown_histogram_bin_count",
    );
    refused(
        trends(json!({"series": [{"event": "used", "math_hogql": "count()"}]})),
        "query.series[0].math_hogql",
    );
    refused(
        trends(json!({"conversionGoal": {"actionId": 1}})),
        "query.conversionGoal",
    );
    refused(
        json!({"kind": "FunnelsQuery", "series": [{"event": "used"}, {"event": "used"}],
            "funnelsFilter": {"funnelAggregateByHogQL": "properties.$session_id"}}),
        "query.funnelsFilter.funnelAggregateByHogQL",
    );
    refused(
        json!({"kind": "FunnelsQuery", "series": [{"event": "used"}, {"event": "used"}],
            "funnelsFilter": {"exclusions": [{"event": "x", "funnelFromStep": 0, "funnelToStep": 1,
                "fixedProperties": []}]}}),
        "query.funnelsFilter.exclusions[0].fixedProperties",
    );
    refused(
        json!({"kind": "PathsQuery", "pathsFilter": {"pathReplacements": true}}),
        "query.pathsFilter.pathReplacements",
    );
    refused(
        json!({"kind": "LifecycleQuery", "series": [{"event": "used"}],
            "lifecycleFilter": {"showLegend": true, "excludeDormant": true}}),
        "query.lifecycleFilter.excludeDormant",
    );
    // A lifecycle filter of display options alone is accepted.
    server.answer(
        json!({"kind": "LifecycleQuery", "series": [{"event": "used"}],
            "dateRange": {"date_from": "2024-05-01", "date_to": "2024-05-04"},
            "lifecycleFilter": {"showLegend": true, "toggledLifecycles": ["new"]}}),
    );
}

fn with(mut e: Value, properties: Value) -> Value {
    for (k, v) in properties.as_object().unwrap() {
        e["properties"][k] = v.clone();
    }
    e
}

#[test]
fn first_time_for_user_funnel_steps_take_only_the_first_ever_event() {
    let server = Server::start();
    let pro = json!({"plan": "pro", "$groups": {"company": "acme"}});
    let globex = json!({"plan": "pro", "$groups": {"company": "globex"}});
    server.capture(json!([
        with(
            at("$groupidentify", "admin", "2024-04-01T00:00:00Z"),
            json!({"$group_type": "company", "$group_key": "acme"})
        ),
        with(
            at("$groupidentify", "admin", "2024-04-01T00:00:00Z"),
            json!({"$group_type": "company", "$group_key": "globex"})
        ),
        // ana first signed up before the range.
        with(at("signed up", "ana", "2024-04-20T10:00:00Z"), pro.clone()),
        with(at("signed up", "ana", "2024-05-02T10:00:00Z"), pro.clone()),
        with(at("paid", "ana", "2024-05-03T10:00:00Z"), pro.clone()),
        // bo did too, anonymously, before identifying (merging anon-b into bo).
        with(
            at("signed up", "anon-b", "2024-04-25T10:00:00Z"),
            pro.clone()
        ),
        with(
            at("$identify", "bo", "2024-05-01T10:00:00Z"),
            json!({"$anon_distinct_id": "anon-b"})
        ),
        with(at("signed up", "bo", "2024-05-02T10:00:00Z"), pro.clone()),
        with(at("paid", "bo", "2024-05-03T10:00:00Z"), pro.clone()),
        // cy's first is in the range.
        with(at("signed up", "cy", "2024-05-02T10:00:00Z"), pro.clone()),
        with(at("paid", "cy", "2024-05-03T10:00:00Z"), pro.clone()),
        // dee's first, in the range, fails the step's filter; her second passes.
        with(
            at("signed up", "dee", "2024-05-02T10:00:00Z"),
            json!({"plan": "free", "$groups": {"company": "globex"}})
        ),
        with(
            at("signed up", "dee", "2024-05-03T10:00:00Z"),
            globex.clone()
        ),
        with(at("paid", "dee", "2024-05-04T10:00:00Z"), globex),
    ]));
    let funnel = |math: Option<&str>, extra: Value| {
        let mut step = json!({"kind": "EventsNode", "event": "signed up",
            "properties": [{"key": "plan", "value": "pro", "type": "event"}]});
        if let Some(math) = math {
            step["math"] = json!(math);
        }
        let mut q = json!({"kind": "FunnelsQuery", "series": [step, {"event": "paid"}],
            "dateRange": {"date_from": "2024-05-01", "date_to": "2024-05-05"}});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        let body = server.answer(q);
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(funnel(None, json!({})), vec![4, 4]);
    // Only cy: ana's and bo's firsts precede the range, dee's fails the filter.
    assert_eq!(funnel(Some("first_time_for_user"), json!({})), vec![1, 1]);
    // By company: acme's first sign-up (ana's) precedes the range; globex's
    // first (dee's free one) fails the filter.
    let by_company = json!({"aggregation_group_type_index": 0});
    assert_eq!(funnel(None, by_company.clone()), vec![2, 2]);
    assert_eq!(funnel(Some("first_time_for_user"), by_company), vec![0, 0]);

    // A math funnels do not compute is refused, not ignored.
    let (status, body) = server.query(json!({"kind": "FunnelsQuery", "series": [{"event": "signed up", "math": "dau"}, {"event": "paid"}]}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "series[0].math");
}
