//! Trends by persons and by group type, against hand-computed answers.

#[macro_use]
mod fixture;

use serde_json::json;

backend_suite! {
    /// Week of 2024-03-08..15: alice and bob in acme, carol in globex, dave in none.
    fn company_week() -> Fixture {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        f.group(
            0,
            "acme",
            json!({"plan": "pro", "seats": 40}),
            "2024-01-01 00:00:00",
        );
        f.group(
            0,
            "globex",
            json!({"plan": "free", "seats": 3}),
            "2024-03-09 00:00:00",
        );
        f.person(
            &["alice", "alice-anon"],
            json!({"email": "alice@acme.com"}),
            "2024-01-01 00:00:00",
        );
        f.person(
            &["bob"],
            json!({"email": "bob@acme.com"}),
            "2024-01-01 00:00:00",
        );
        f.person(
            &["carol"],
            json!({"email": "carol@globex.com"}),
            "2024-03-09 00:00:00",
        );
        f.person(&["dave"], json!({}), "2024-03-10 00:00:00");
        let acme = [(0, "acme")];
        let globex = [(0, "globex")];
        // Mar 9: alice (twice, under two ids), bob; Mar 10: carol, dave; Mar 14: alice.
        f.event_with(
            "pageview",
            "alice",
            "2024-03-09 10:00:00",
            json!({"browser": "Chrome", "amount": 10}),
            &acme,
        );
        f.event_with(
            "pageview",
            "alice-anon",
            "2024-03-09 11:00:00",
            json!({"browser": "Chrome", "amount": 20}),
            &acme,
        );
        f.event_with(
            "pageview",
            "bob",
            "2024-03-09 12:00:00",
            json!({"browser": "Firefox", "amount": 30}),
            &acme,
        );
        f.event_with(
            "pageview",
            "carol",
            "2024-03-10 09:00:00",
            json!({"browser": "Safari", "amount": 5}),
            &globex,
        );
        f.event_with(
            "pageview",
            "dave",
            "2024-03-10 09:30:00",
            json!({"amount": 7}),
            &[],
        );
        f.event_with(
            "pageview",
            "alice",
            "2024-03-14 23:59:59",
            json!({"browser": "Chrome"}),
            &acme,
        );
        f.event_with("signup", "carol", "2024-03-10 09:00:00", json!({}), &globex);
        // Outside the range: the day before -7d's midnight.
        f.event_with("pageview", "bob", "2024-03-07 23:59:59", json!({}), &acme);
        f
    }

    fn trend(series: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
        let mut query =
            json!({"kind": "TrendsQuery", "series": series, "dateRange": {"date_from": "-7d"}});
        for (k, v) in extra.as_object().unwrap() {
            query[k] = v.clone();
        }
        query
    }

    #[test]
    fn total_counts_events_per_day_over_eight_buckets() {
        let f = company_week();
        let answer = f.query(trend(
            json!([{"kind": "EventsNode", "event": "pageview"}]),
            json!({}),
        ));
        let result = &answer["results"][0];
        assert_eq!(result["days"][0], "2024-03-08");
        assert_eq!(result["days"][7], "2024-03-15");
        assert_eq!(result["labels"][1], "9-Mar-2024");
        assert_eq!(result["data"], json!([0, 3, 2, 0, 0, 0, 1, 0]));
        assert_eq!(result["count"], 6);
        assert_eq!(result["label"], "pageview");
    }

    #[test]
    fn unique_persons_merge_distinct_ids_and_unique_groups_skip_events_without_one() {
        let f = company_week();
        let rows = f.series(trend(
            json!([
                {"event": "pageview", "math": "dau"},
                {"event": "pageview", "math": "unique_group", "math_group_type_index": 0},
                {"event": "pageview", "math": "dau", "math_group_type_index": 0}
            ]),
            json!({}),
        ));
        assert_eq!(
            rows[0].1,
            vec![0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "alice's two ids are one person"
        );
        assert_eq!(
            rows[1].1,
            vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "dave's event has no company"
        );
        assert_eq!(rows[1].1, rows[2].1);
    }

    #[test]
    fn total_value_counts_distinct_actors_over_the_whole_range() {
        let f = company_week();
        let answer = f.query(trend(
            json!([
                {"event": "pageview", "math": "dau"},
                {"event": "pageview", "math": "unique_group", "math_group_type_index": 0}
            ]),
            json!({"trendsFilter": {"display": "BoldNumber"}}),
        ));
        assert_eq!(answer["results"][0]["aggregated_value"], 4);
        assert_eq!(answer["results"][1]["aggregated_value"], 2);
    }

    #[test]
    fn weekly_active_groups_use_a_seven_day_window() {
        let f = company_week();
        let rows = f.series(trend(
            json!([{"event": "pageview", "math": "weekly_active", "math_group_type_index": 0}]),
            json!({}),
        ));
        // Bob's Mar 7 event keeps acme active on Mar 8; globex joins on Mar 10.
        assert_eq!(rows[0].1, vec![1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
        let rows = f.series(trend(
            json!([{"event": "pageview", "math": "weekly_active"}]),
            json!({}),
        ));
        assert_eq!(rows[0].1, vec![1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]);
    }

    #[test]
    fn property_math_and_count_per_actor() {
        let f = company_week();
        let rows = f.series(trend(
            json!([
                {"event": "pageview", "math": "sum", "math_property": "amount"},
                {"event": "pageview", "math": "median", "math_property": "amount"},
                {"event": "pageview", "math": "max_count_per_actor"}
            ]),
            json!({}),
        ));
        assert_eq!(rows[0].1[1], 60.0);
        assert_eq!(rows[1].1[1], 20.0);
        assert_eq!(rows[1].1[2], 6.0, "median of 5 and 7 interpolates");
        assert_eq!(rows[2].1[1], 2.0, "alice viewed twice on Mar 9");
    }

    #[test]
    fn breakdown_by_group_property_uses_current_properties_and_the_null_label() {
        let f = company_week();
        let answer = f.query(trend(
            json!([{"event": "pageview"}]),
            json!({"breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0}}),
        ));
        let values: Vec<(String, i64)> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["breakdown_value"].as_str().unwrap().to_string(),
                    r["count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            values,
            vec![
                ("pro".into(), 4),
                ("free".into(), 1),
                ("$$_posthog_breakdown_null_$$".into(), 1)
            ]
        );
    }

    #[test]
    fn breakdown_limit_folds_the_rest_into_other() {
        let f = company_week();
        let answer = f.query(trend(
            json!([{"event": "pageview"}]),
            json!({"breakdownFilter": {"breakdown": "browser", "breakdown_limit": 1}}),
        ));
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["breakdown_value"], "Chrome");
        assert_eq!(results[0]["count"], 3);
        assert_eq!(
            results[1]["breakdown_value"],
            "$$_posthog_breakdown_other_$$"
        );
        assert_eq!(results[1]["count"], 3);
        assert_eq!(answer["hasMore"], true);
    }

    #[test]
    fn filters_on_event_person_and_group_properties() {
        let f = company_week();
        let count = |properties: serde_json::Value| {
            f.query(trend(
                json!([{"event": "pageview"}]),
                json!({"properties": properties}),
            ))["results"][0]["count"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(
            count(json!([{"key": "browser", "value": "Chrome", "operator": "exact", "type": "event"}])),
            3
        );
        assert_eq!(
            count(
                json!([{"key": "browser", "value": ["Chrome"], "operator": "is_not", "type": "event"}])
            ),
            3
        );
        assert_eq!(
            count(
                json!([{"key": "email", "value": "ACME", "operator": "icontains", "type": "person"}])
            ),
            4
        );
        assert_eq!(
            count(
                json!([{"key": "seats", "value": 10, "operator": "gt", "type": "group", "group_type_index": 0}])
            ),
            4
        );
        assert_eq!(
            count(json!([{"key": "browser", "operator": "is_not_set"}])),
            1
        );
        assert_eq!(
            count(json!([{"key": "browser", "value": "^(Safari|Firefox)$", "operator": "regex"}])),
            2
        );
        assert_eq!(
            count(json!({"type": "OR", "values": [
                {"type": "AND", "values": [{"key": "browser", "value": "Safari"}]},
                {"type": "AND", "values": [{"key": "amount", "value": 30, "operator": "gte"}]}
            ]})),
            2
        );
    }

    #[test]
    fn formulas_compare_and_cumulative() {
        let f = company_week();
        let rows = f.series(trend(
            json!([{"event": "pageview"}, {"event": "pageview", "math": "dau"}]),
            json!({"trendsFilter": {"formula": "A / B"}}),
        ));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "Formula (A / B)");
        assert_eq!(rows[0].1[1], 1.5);
        assert_eq!(rows[0].1[0], 0.0, "0/0 is 0");

        let answer = f.query(trend(
            json!([{"event": "pageview"}]),
            json!({"compareFilter": {"compare": true}}),
        ));
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results[0]["compare_label"], "current");
        assert_eq!(results[1]["compare_label"], "previous");
        assert_eq!(
            results[1]["days"][0], "2024-03-01",
            "-7d compares with the week before"
        );
        assert_eq!(results[1]["data"][6], 1, "bob's Mar 7 event");

        let rows = f.series(trend(
            json!([{"event": "pageview", "math": "dau"}]),
            json!({"trendsFilter": {"display": "ActionsLineGraphCumulative"}}),
        ));
        assert_eq!(
            rows[0].1,
            vec![0.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0],
            "alice counts once"
        );
    }

    #[test]
    fn days_follow_the_project_timezone_across_dst() {
        let mut f = Fixture::new("America/New_York");
        f.person(&["p"], json!({}), "2024-01-01 00:00:00");
        // 2024-03-10 is 23 hours long in New York: 05:00Z..04:00Z next day.
        f.event("e", "p", "2024-03-10 04:59:59"); // Mar 9 local
        f.event("e", "p", "2024-03-10 05:00:00"); // Mar 10 local
        f.event("e", "p", "2024-03-11 03:59:59"); // Mar 10 local (EDT)
        f.event("e", "p", "2024-03-11 04:00:00"); // Mar 11 local
        let answer = f.query(json!({"kind": "TrendsQuery", "series": [{"event": "e"}],
            "dateRange": {"date_from": "2024-03-09", "date_to": "2024-03-11"}}));
        assert_eq!(answer["results"][0]["data"], json!([1, 2, 1]));
    }

    #[test]
    fn weeks_start_on_sunday_or_monday() {
        let mut f = Fixture::new("UTC");
        f.person(&["p"], json!({}), "2024-01-01 00:00:00");
        f.event("e", "p", "2024-03-10 12:00:00"); // a Sunday
        let query = json!({"kind": "TrendsQuery", "series": [{"event": "e"}], "interval": "week",
            "dateRange": {"date_from": "2024-03-04", "date_to": "2024-03-16"}});
        let answer = f.query(query.clone());
        assert_eq!(
            answer["results"][0]["days"],
            json!(["2024-03-03", "2024-03-10"])
        );
        assert_eq!(answer["results"][0]["data"], json!([0, 1]));
        f.ctx.week_start = cairn_query::WeekStart::Monday;
        let answer = f.query(query);
        assert_eq!(
            answer["results"][0]["days"],
            json!(["2024-03-04", "2024-03-11"])
        );
        assert_eq!(answer["results"][0]["data"], json!([1, 0]));
    }

    #[test]
    fn bad_queries_name_the_field() {
        let f = company_week();
        let err = f.error(json!({"kind": "TrendsQuery", "series": [{"event": "e", "math": "hogql"}]}));
        assert!(err.starts_with("query.series[0].math:"), "{err}");
        let err = f.error(json!({"kind": "TrendsQuery", "series": [{"kind": "ActionsNode", "id": 1}]}));
        assert!(err.starts_with("query.series[0].kind:"), "{err}");
        let err =
            f.error(json!({"kind": "TrendsQuery", "series": [{"event": "e", "math": "unique_group"}]}));
        assert!(err.starts_with("series[0].math_group_type_index:"), "{err}");
        let err = f.error(json!({"kind": "TrendsQuery", "series": [{"event": "e", "math": "unique_group", "math_group_type_index": 3}]}));
        assert!(err.contains("no group type with index 3"), "{err}");
        let err = f.error(json!({"kind": "TrendsQuery", "series": [{"event": "e"}], "dateRange": {"date_from": "last week"}}));
        assert!(err.starts_with("dateRange.date_from:"), "{err}");
        let err = f.error(json!({"kind": "TrendsQuery", "series": [{"event": "e", "properties": [{"key": "x", "value": "(", "operator": "regex"}]}]}));
        assert!(err.starts_with("series[0].properties[0].value:"), "{err}");
        let err = f.error(json!({"kind": "Nonsense"}));
        assert!(err.starts_with("query"), "{err}");
    }
}
