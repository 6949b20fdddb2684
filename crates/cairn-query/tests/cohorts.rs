//! Retention, lifecycle, stickiness and paths, by persons and by group
//! type, against hand-computed answers; retention also against a brute
//! force on randomised data.

#[macro_use]
mod fixture;

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

backend_suite! {
    /// Four days of activity: acme (ana, ben), globex (cy); dee has no company.
    fn activity() -> Fixture {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        f.group(0, "acme", json!({"plan": "pro"}), "2024-01-01 00:00:00");
        f.group(0, "globex", json!({"plan": "free"}), "2024-03-11 08:00:00");
        f.person(&["ana"], json!({}), "2024-01-01 00:00:00");
        f.person(&["ben"], json!({}), "2024-03-10 08:00:00");
        f.person(&["cy"], json!({}), "2024-03-11 08:00:00");
        f.person(&["dee"], json!({}), "2024-03-10 08:00:00");
        let acme = [(0, "acme")];
        // Mar 10: ana, dee. Mar 11: ben, cy. Mar 12: ana. Mar 13: ben, cy.
        f.event_with("used", "ana", "2024-03-10 09:00:00", json!({}), &acme);
        f.event_with("used", "dee", "2024-03-10 09:00:00", json!({}), &[]);
        f.event_with("used", "ben", "2024-03-11 09:00:00", json!({}), &acme);
        f.event_with(
            "used",
            "cy",
            "2024-03-11 09:00:00",
            json!({}),
            &[(0, "globex")],
        );
        f.event_with("used", "ana", "2024-03-12 09:00:00", json!({}), &acme);
        f.event_with("used", "ben", "2024-03-13 09:00:00", json!({}), &acme);
        f.event_with(
            "used",
            "cy",
            "2024-03-13 09:00:00",
            json!({}),
            &[(0, "globex")],
        );
        f
    }

    fn retention(extra: Value) -> Value {
        let mut q = json!({"kind": "RetentionQuery",
            "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-13"},
            "retentionFilter": {"targetEntity": {"id": "used", "type": "events"},
                                "returningEntity": {"id": "used", "type": "events"},
                                "period": "Day", "totalIntervals": 4}});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    }

    fn matrix(answer: &Value) -> Vec<Vec<i64>> {
        let rows = answer["results"].as_array().unwrap();
        rows.iter().map(crate::fixture::retention_counts).collect()
    }

    #[test]
    fn retention_by_persons_and_by_company() {
        let f = activity();
        let by_person = f.query(retention(json!({})));
        assert_eq!(by_person["results"][0]["label"], "Day 0");
        assert_eq!(by_person["results"][0]["values"][2]["label"], "Day 2");
        assert_eq!(
            matrix(&by_person),
            vec![
                vec![2, 0, 1, 0],
                vec![2, 0, 2, 0],
                vec![1, 0, 0, 0],
                vec![2, 0, 0, 0]
            ]
        );
        let by_company = f.query(retention(json!({"aggregation_group_type_index": 0})));
        // acme is active every day; globex on Mar 11 and 13; dee's events have no company.
        assert_eq!(
            matrix(&by_company),
            vec![
                vec![1, 1, 1, 1],
                vec![2, 1, 2, 0],
                vec![1, 1, 0, 0],
                vec![2, 0, 0, 0]
            ]
        );
        let first_time = f.query(retention(json!({"aggregation_group_type_index": 0,
            "retentionFilter": {"targetEntity": {"id": "used"}, "returningEntity": {"id": "used"},
                                "retentionType": "retention_first_time", "totalIntervals": 4}})));
        assert_eq!(
            matrix(&first_time),
            vec![
                vec![1, 1, 1, 1],
                vec![1, 0, 1, 0],
                vec![0, 0, 0, 0],
                vec![0, 0, 0, 0]
            ]
        );
    }

    #[test]
    fn retention_breaks_down_by_group_property() {
        let f = activity();
        let answer = f.query(retention(json!({"aggregation_group_type_index": 0,
            "breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0}})));
        let rows = answer["results"].as_array().unwrap();
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[0]["breakdown_value"], "pro");
        assert_eq!(rows[4]["breakdown_value"], "free");
        assert_eq!(
            rows[5]["values"][2]["count"], 1,
            "globex returns two days after Mar 11"
        );
    }

    #[test]
    fn lifecycle_by_persons_and_by_company() {
        let f = activity();
        // initech has no profile: it counts as created at its first event.
        f.event_with("used", "dee", "2024-03-12 10:00:00", json!({}), &[(0, "initech")]);
        let q = |extra: Value| {
            let mut q = json!({"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "used"}],
                "dateRange": {"date_from": "2024-03-11", "date_to": "2024-03-13"}});
            for (k, v) in extra.as_object().unwrap() {
                q[k] = v.clone();
            }
            q
        };
        let statuses = |answer: &Value| -> BTreeMap<String, Value> {
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["status"].as_str().unwrap().to_string(), r["data"].clone()))
                .collect()
        };
        let people = statuses(&f.query(q(json!({}))));
        // Mar 11: cy new (created that day), ben resurrecting (created Mar 10, idle then);
        // ana and dee (active Mar 10) dormant. Mar 12: ana resurrecting; ben, cy dormant.
        // Mar 13: ben, cy resurrecting; ana dormant. dee: resurrecting Mar 12, dormant Mar 13.
        assert_eq!(people["new"], json!([1, 0, 0]));
        assert_eq!(people["returning"], json!([0, 0, 0]));
        assert_eq!(people["resurrecting"], json!([1, 2, 2]));
        assert_eq!(people["dormant"], json!([-2, -2, -2]));
        let companies = statuses(&f.query(q(json!({"aggregation_group_type_index": 0}))));
        // acme: active every day → returning. globex: created Mar 11 → new, then dormant,
        // resurrecting. initech: new Mar 12, its first event; dormant Mar 13.
        assert_eq!(companies["new"], json!([1, 1, 0]));
        assert_eq!(companies["returning"], json!([1, 1, 1]));
        assert_eq!(companies["resurrecting"], json!([0, 0, 1]));
        assert_eq!(companies["dormant"], json!([0, -1, -1]));
        // Over 64 days each actor's periods no longer fit one bit mask: the
        // rows come one per period instead, and tell the same story.
        for agg in [json!(null), json!(0)] {
            let long = |short: &Value| {
                let answer = f.query(q(json!({"aggregation_group_type_index": agg,
                    "dateRange": {"date_from": "2024-01-01", "date_to": "2024-03-13"}})));
                let long = statuses(&answer);
                assert_eq!(long["new"].as_array().unwrap().len(), 73);
                for (status, data) in statuses(short) {
                    let data = data.as_array().unwrap();
                    let tail = &long[&status].as_array().unwrap()[73 - data.len()..];
                    assert_eq!(tail, data.as_slice(), "{status}");
                }
            };
            long(&f.query(q(json!({"aggregation_group_type_index": agg}))));
        }
    }

    #[test]
    fn stickiness_by_persons_and_by_company() {
        let f = activity();
        let q = |series: Value, computed: &str| {
            json!({"kind": "StickinessQuery", "series": [series], "stickinessFilter": {"computedAs": computed},
                "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-13"}})
        };
        let people = f.query(q(json!({"event": "used"}), "non_cumulative"));
        // ana 2 days, ben 2, cy 2, dee 1.
        assert_eq!(people["results"][0]["data"], json!([1, 3, 0, 0]));
        assert_eq!(people["results"][0]["labels"][1], "2 days");
        let companies = f.query(q(
            json!({"event": "used", "math": "unique_group", "math_group_type_index": 0}),
            "cumulative",
        ));
        // acme 4 days, globex 2.
        assert_eq!(companies["results"][0]["data"], json!([2, 2, 1, 1]));
        assert_eq!(companies["results"][0]["labels"][0], "1 day or more");
    }

    #[test]
    fn stickiness_counts_active_hours_and_months() {
        let f = activity();
        let q = |interval: &str, from: &str, to: &str| {
            f.query(
                json!({"kind": "StickinessQuery", "series": [{"event": "used"}], "interval": interval,
                "dateRange": {"date_from": from, "date_to": to}}),
            )["results"][0]["data"]
                .clone()
        };
        // 73 hours (to the start of the 13th), more than one 64-bit mask holds:
        // ana in 2 hours, ben, cy and dee in 1.
        let hours = q("hour", "2024-03-10", "2024-03-13");
        let hours = hours.as_array().unwrap();
        assert_eq!(hours.len(), 73);
        assert_eq!(hours[0..2], [json!(3), json!(1)]);
        assert!(hours[2..].iter().all(|n| n == 0));
        // Every person was active in the one month.
        assert_eq!(q("month", "2024-03-01", "2024-03-31"), json!([4]));
    }

    #[test]
    fn paths_by_persons_and_by_company() {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        f.person(&["ana"], json!({}), "2024-01-01 00:00:00");
        f.person(&["ben"], json!({}), "2024-01-01 00:00:00");
        let acme = [(0, "acme")];
        let page = |who: &str, at: &str, url: &str| {
            f.event_with("$pageview", who, at, json!({"$current_url": url}), &acme);
        };
        page("ana", "2024-03-10 09:00:00", "https://app.io/");
        page("ana", "2024-03-10 09:01:00", "https://app.io/pricing/");
        page("ana", "2024-03-10 09:01:30", "https://app.io/pricing");
        f.event_with("signed up", "ana", "2024-03-10 09:02:00", json!({}), &acme);
        // Ben, 10 minutes later: his events join acme's session when counted by company.
        page("ben", "2024-03-10 09:12:00", "https://app.io/");
        page("ben", "2024-03-10 09:13:00", "https://app.io/docs");
        // A new session for ben after an hour.
        page("ben", "2024-03-10 10:30:00", "https://app.io/pricing");
        let q = |extra: Value| {
            let mut q = json!({"kind": "PathsQuery", "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-10"}});
            for (k, v) in extra.as_object().unwrap() {
                q[k] = v.clone();
            }
            q
        };
        let edges = |answer: Value| -> BTreeSet<(String, String, i64)> {
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["source"].as_str().unwrap().to_string(),
                        e["target"].as_str().unwrap().to_string(),
                        e["value"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let people = edges(f.query(q(json!({}))));
        assert_eq!(
            people,
            BTreeSet::from([
                (
                    "1_https://app.io".into(),
                    "2_https://app.io/pricing".into(),
                    1
                ),
                ("2_https://app.io/pricing".into(), "3_signed up".into(), 1),
                ("1_https://app.io".into(), "2_https://app.io/docs".into(), 1),
            ])
        );
        let companies = edges(f.query(q(json!({"aggregation_group_type_index": 0, "pathsFilter": {"includeEventTypes": ["$pageview"]}}))));
        assert_eq!(
            companies,
            BTreeSet::from([
                (
                    "1_https://app.io".into(),
                    "2_https://app.io/pricing".into(),
                    1
                ),
                (
                    "2_https://app.io/pricing".into(),
                    "3_https://app.io".into(),
                    1
                ),
                ("3_https://app.io".into(), "4_https://app.io/docs".into(), 1),
            ])
        );
        let to_docs = edges(f.query(q(
            json!({"pathsFilter": {"endPoint": "https://app.io/docs"}}),
        )));
        assert_eq!(
            to_docs,
            BTreeSet::from([("1_https://app.io".into(), "2_https://app.io/docs".into(), 1)])
        );
    }

    /// Recurring retention by definition: for each cohort period i, the actors
    /// active in i, and of those, the ones active in i + k.
    #[test]
    fn retention_matches_a_brute_force_on_random_data() {
        let mut f = Fixture::new("Europe/Berlin");
        f.group_type(0, "company");
        let mut rng = StdRng::seed_from_u64(11);
        let mut days_by_person: Vec<BTreeSet<i64>> = Vec::new();
        let mut days_by_company: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        let base = chrono::NaiveDate::from_ymd_opt(2024, 3, 20)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        for p in 0..60 {
            let id = format!("p{p}");
            f.person(&[&id], json!({}), "2024-01-01 00:00:00");
            let company = rng.random_range(0..8usize);
            let mut days = BTreeSet::new();
            for _ in 0..rng.random_range(0..6) {
                let day = rng.random_range(0..10i64);
                // Berlin is UTC+1 in March: 23:30Z is the next local day.
                let hour = if rng.random_bool(0.3) { 23 } else { 10 };
                let t =
                    base + chrono::TimeDelta::days(day) + chrono::TimeDelta::minutes(hour * 60 + 30);
                let local_day = if hour == 23 { day + 1 } else { day };
                f.event_with(
                    "used",
                    &id,
                    &t.format("%Y-%m-%d %H:%M:%S").to_string(),
                    json!({}),
                    &[(0, &format!("c{company}"))],
                );
                days.insert(local_day);
                days_by_company
                    .entry(company)
                    .or_default()
                    .insert(local_day);
            }
            days_by_person.push(days);
        }
        let expected = |actors: Vec<&BTreeSet<i64>>| -> Vec<Vec<i64>> {
            (0..10)
                .map(|i| {
                    (0..5)
                        .map(|k| {
                            if i + k >= 10 {
                                return 0;
                            }
                            actors
                                .iter()
                                .filter(|d| d.contains(&i) && d.contains(&(i + k)))
                                .count() as i64
                        })
                        .collect()
                })
                .collect()
        };
        let q = |extra: Value| {
            let mut q = json!({"kind": "RetentionQuery", "dateRange": {"date_from": "2024-03-20", "date_to": "2024-03-29"},
                "retentionFilter": {"targetEntity": {"id": "used"}, "returningEntity": {"id": "used"}, "totalIntervals": 5}});
            for (k, v) in extra.as_object().unwrap() {
                q[k] = v.clone();
            }
            q
        };
        let people = expected(days_by_person.iter().collect());
        assert!(
            people.iter().map(|r| r[1]).sum::<i64>() > 0,
            "the data should have returns"
        );
        assert_eq!(matrix(&f.query(q(json!({})))), people);
        assert_eq!(
            matrix(&f.query(q(json!({"aggregation_group_type_index": 0})))),
            expected(days_by_company.values().collect())
        );
    }

    #[test]
    fn every_kind_answers_an_empty_project() {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        let range = json!({"date_from": "all"});
        for (kind, extra) in [
            (
                "TrendsQuery",
                json!({"series": [{"event": "x", "math": "dau"}], "breakdownFilter": {"breakdown": "plan"}}),
            ),
            (
                "FunnelsQuery",
                json!({"series": [{"event": "a"}, {"event": "b"}], "aggregation_group_type_index": 0}),
            ),
            ("RetentionQuery", json!({"aggregation_group_type_index": 0})),
            ("LifecycleQuery", json!({"series": [{"event": "x"}]})),
            ("StickinessQuery", json!({"series": [{"event": "x"}]})),
            ("PathsQuery", json!({})),
        ] {
            let mut q = extra;
            q["kind"] = json!(kind);
            q["dateRange"] = range.clone();
            let answer = f.query(q);
            assert!(answer["results"].is_array(), "{kind}: {answer}");
        }
        // Counts are zeros, not missing.
        let answer = f.query(json!({"kind": "TrendsQuery", "series": [{"event": "x"}]}));
        assert_eq!(
            answer["results"][0]["data"],
            json!([0, 0, 0, 0, 0, 0, 0, 0])
        );
    }
}
