//! Funnels by persons and by group type, against hand-computed answers and
//! against a brute-force search on randomised data.

#[macro_use]
mod fixture;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

backend_suite! {
    fn funnel(steps: &[&str], extra: Value) -> Value {
        let series: Vec<Value> = steps
            .iter()
            .map(|s| json!({"kind": "EventsNode", "event": s}))
            .collect();
        let mut q = json!({"kind": "FunnelsQuery", "series": series,
            "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-15"}});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    }

    fn counts(steps: &Value) -> Vec<i64> {
        steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_i64().unwrap())
            .collect()
    }

    /// acme: ana signs up, ben (a colleague) activates and invites.
    /// globex: cy signs up and activates 20 days later (outside 14 days).
    /// initech: dee signs up, then invites before activating.
    fn companies() -> Fixture {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        for (key, plan) in [("acme", "pro"), ("globex", "free"), ("initech", "free")] {
            f.group(0, key, json!({"plan": plan}), "2024-01-01 00:00:00");
        }
        for (person, browser) in [
            ("ana", "Chrome"),
            ("ben", "Firefox"),
            ("cy", "Safari"),
            ("dee", "Chrome"),
        ] {
            f.person(
                &[person],
                json!({"browser": browser}),
                "2024-01-01 00:00:00",
            );
        }
        let acme = [(0, "acme")];
        f.event_with("signed up", "ana", "2024-03-02 10:00:00", json!({}), &acme);
        f.event_with("activated", "ben", "2024-03-02 11:00:00", json!({}), &acme);
        f.event_with("invited", "ben", "2024-03-02 13:00:00", json!({}), &acme);
        f.event_with(
            "signed up",
            "cy",
            "2024-03-01 10:00:00",
            json!({}),
            &[(0, "globex")],
        );
        f.event_with(
            "activated",
            "cy",
            "2024-03-14 10:00:01",
            json!({}),
            &[(0, "globex")],
        );
        let initech = [(0, "initech")];
        f.event_with(
            "signed up",
            "dee",
            "2024-03-03 09:00:00",
            json!({}),
            &initech,
        );
        f.event_with("invited", "dee", "2024-03-03 09:30:00", json!({}), &initech);
        f.event_with(
            "activated",
            "dee",
            "2024-03-03 10:00:00",
            json!({}),
            &initech,
        );
        f
    }

    const STEPS: [&str; 3] = ["signed up", "activated", "invited"];

    #[test]
    fn ordered_by_persons_and_by_company() {
        let f = companies();
        let by_person = f.query(funnel(&STEPS, json!({})));
        // ana: signed up only (ben did the rest). cy: activated 13 days later.
        assert_eq!(counts(&by_person["results"]), vec![3, 2, 0]);
        let by_company = f.query(funnel(&STEPS, json!({"aggregation_group_type_index": 0})));
        // acme converts as a company: colleagues complete different steps.
        assert_eq!(counts(&by_company["results"]), vec![3, 3, 1]);
        let steps = &by_company["results"];
        assert_eq!(steps[1]["name"], "activated");
        assert_eq!(steps[2]["average_conversion_time"], 7200.0);
        // Activation times: acme 1h, globex 13d+1s, initech 1h → median 1h.
        assert_eq!(steps[1]["median_conversion_time"], 3600.0);
    }

    #[test]
    fn the_conversion_window_and_strict_and_unordered_orders() {
        let f = companies();
        let short = f.query(funnel(&STEPS[..2], json!({"funnelsFilter": {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"}, "aggregation_group_type_index": 0})));
        assert_eq!(
            counts(&short["results"]),
            vec![3, 2],
            "globex is outside an hour"
        );
        let strict = f.query(funnel(
            &STEPS,
            json!({"funnelsFilter": {"funnelOrderType": "strict"}, "aggregation_group_type_index": 0}),
        ));
        // initech's invite comes between sign-up and activation.
        assert_eq!(counts(&strict["results"]), vec![3, 2, 1]);
        let unordered = f.query(funnel(&STEPS, json!({"funnelsFilter": {"funnelOrderType": "unordered"}, "aggregation_group_type_index": 0})));
        assert_eq!(counts(&unordered["results"]), vec![3, 3, 2]);
        assert_eq!(unordered["results"][2]["name"], "Completed 3 steps");
    }

    #[test]
    fn exclusions_remove_the_actor() {
        let f = companies();
        let q = funnel(
            &["signed up", "activated"],
            json!({
                "aggregation_group_type_index": 0,
                "funnelsFilter": {"exclusions": [{"kind": "EventsNode", "event": "invited", "funnelFromStep": 0, "funnelToStep": 1}]}
            }),
        );
        // initech invited between its steps and is gone from the funnel.
        assert_eq!(counts(&f.query(q)["results"]), vec![2, 2]);
    }

    #[test]
    fn breakdowns_by_group_and_person_properties() {
        let f = companies();
        let by_plan = f.query(funnel(&STEPS, json!({"aggregation_group_type_index": 0,
            "breakdownFilter": {"breakdown": "plan", "breakdown_type": "group", "breakdown_group_type_index": 0}})));
        let results = by_plan["results"].as_array().unwrap();
        assert_eq!(
            results[0][0]["breakdown_value"], "pro",
            "group values are plain strings"
        );
        assert_eq!(counts(&results[0]), vec![1, 1, 1]);
        assert_eq!(results[1][0]["breakdown_value"], "free");
        assert_eq!(counts(&results[1]), vec![2, 2, 0]);

        let by_browser = f.query(funnel(
            &STEPS[..2],
            json!({
            "breakdownFilter": {"breakdown": "browser", "breakdown_type": "person"}}),
        ));
        let rows: Vec<(Value, Vec<i64>)> = by_browser["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0]["breakdown_value"].clone(), counts(r)))
            .collect();
        assert_eq!(
            rows,
            vec![
                (json!(["Chrome"]), vec![2, 1]),
                (json!(["Safari"]), vec![1, 1])
            ]
        );
    }

    #[test]
    fn time_to_convert_and_conversion_trends() {
        let f = companies();
        let ttc = f.query(funnel(
            &STEPS[..2],
            json!({"aggregation_group_type_index": 0,
            "funnelsFilter": {"funnelVizType": "time_to_convert", "binCount": 2}}),
        ));
        let bins = ttc["results"]["bins"].as_array().unwrap();
        assert_eq!(bins[0], json!([3600, 2]));
        assert_eq!(bins.iter().map(|b| b[1].as_i64().unwrap()).sum::<i64>(), 3);

        let trend = f.query(funnel(&STEPS[..2], json!({"aggregation_group_type_index": 0,
            "funnelsFilter": {"funnelVizType": "trends"}, "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-03"}})));
        let result = &trend["results"][0];
        assert_eq!(
            result["days"],
            json!(["2024-03-01", "2024-03-02", "2024-03-03"])
        );
        // globex's activation on Mar 14 is outside this range.
        assert_eq!(result["data"], json!([0, 100, 100]));
        assert_eq!(result["reached_from_step_count"], json!([1, 1, 1]));
    }

    #[test]
    fn bad_funnels_name_the_field() {
        let f = companies();
        assert!(f.error(funnel(&["a"], json!({}))).starts_with("series:"));
        let err = f.error(funnel(&["a", "b"], json!({"funnelsFilter": {"exclusions": [{"event": "x", "funnelFromStep": 1, "funnelToStep": 1}]}})));
        assert!(err.starts_with("funnelsFilter.exclusions[0]:"), "{err}");
        let err = f.error(funnel(
            &["a", "b"],
            json!({"funnelsFilter": {"funnelOrderType": "sideways"}}),
        ));
        assert!(
            err.starts_with("query.funnelsFilter.funnelOrderType:"),
            "{err}"
        );
    }

    /// The furthest step reachable: distinct events in non-decreasing time,
    /// the last within the window of the first.
    fn brute_force(events: &[(i64, usize)], steps: usize, window: i64) -> Option<usize> {
        fn extend(
            events: &[(i64, usize)],
            used: &mut Vec<bool>,
            step: usize,
            start: i64,
            last: i64,
            steps: usize,
            window: i64,
        ) -> usize {
            if step == steps {
                return step - 1;
            }
            let mut best = step - 1;
            for i in 0..events.len() {
                let (t, s) = events[i];
                if !used[i] && s == step && t >= last && t - start <= window {
                    used[i] = true;
                    best = best.max(extend(events, used, step + 1, start, t, steps, window));
                    used[i] = false;
                }
            }
            best
        }
        let mut best = None;
        for (i, &(t, s)) in events.iter().enumerate() {
            if s == 0 {
                let mut used = vec![false; events.len()];
                used[i] = true;
                let reached = extend(events, &mut used, 1, t, t, steps, window);
                best = best.max(Some(reached));
            }
        }
        best
    }

    #[test]
    fn ordered_funnels_match_a_brute_force_search_on_random_data() {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        let mut rng = StdRng::seed_from_u64(7);
        let names = ["s0", "s1", "s2", "other"];
        let window = 3_600i64;
        let mut by_person: Vec<Vec<(i64, usize)>> = Vec::new();
        let mut by_company: Vec<Vec<(i64, usize)>> = vec![Vec::new(); 15];
        let base = chrono::NaiveDate::from_ymd_opt(2024, 3, 5)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        for p in 0..120 {
            let id = format!("p{p}");
            f.person(&[&id], json!({}), "2024-01-01 00:00:00");
            let company = rng.random_range(0..15usize);
            let mut mine = Vec::new();
            for _ in 0..rng.random_range(0..8) {
                let step = rng.random_range(0..4usize);
                // Minutes within six hours, so windows and ties both happen.
                let t = rng.random_range(0..360i64) * 60;
                let ts = (base + chrono::TimeDelta::seconds(t))
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string();
                f.event_with(
                    names[step],
                    &id,
                    &ts,
                    json!({}),
                    &[(0, &format!("c{company}"))],
                );
                if step < 3 {
                    mine.push((t, step));
                    by_company[company].push((t, step));
                }
            }
            by_person.push(mine);
        }
        let expected = |streams: &[Vec<(i64, usize)>]| -> Vec<i64> {
            let reached: Vec<usize> = streams
                .iter()
                .filter_map(|s| brute_force(s, 3, window))
                .collect();
            (0..3)
                .map(|k| reached.iter().filter(|r| **r >= k).count() as i64)
                .collect()
        };
        let people = expected(&by_person);
        assert!(
            people[2] > 0 && people[0] > people[1],
            "the data should exercise every step: {people:?}"
        );
        let hour =
            json!({"funnelsFilter": {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"}});
        let answer = f.query(funnel(&names[..3], hour.clone()));
        assert_eq!(counts(&answer["results"]), people);
        let mut by_group = hour;
        by_group["aggregation_group_type_index"] = json!(0);
        let answer = f.query(funnel(&names[..3], by_group));
        assert_eq!(counts(&answer["results"]), expected(&by_company));
    }

    #[test]
    fn steps_at_the_same_instant_convert_and_the_window_edge_counts() {
        let mut f = Fixture::new("UTC");
        f.group_type(0, "company");
        f.person(&["ana"], json!({}), "2024-01-01 00:00:00");
        f.person(&["ben"], json!({}), "2024-01-01 00:00:00");
        // Ana: both steps in the same second. Ben: the second step exactly one hour later.
        f.event_with(
            "activated",
            "ana",
            "2024-03-05 10:00:00",
            json!({}),
            &[(0, "acme")],
        );
        f.event_with(
            "signed up",
            "ana",
            "2024-03-05 10:00:00",
            json!({}),
            &[(0, "acme")],
        );
        f.event_with(
            "signed up",
            "ben",
            "2024-03-05 10:00:00",
            json!({}),
            &[(0, "globex")],
        );
        f.event_with(
            "activated",
            "ben",
            "2024-03-05 11:00:00",
            json!({}),
            &[(0, "globex")],
        );
        let hour =
            json!({"funnelsFilter": {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"}});
        assert_eq!(
            counts(&f.query(funnel(&["signed up", "activated"], hour.clone()))["results"]),
            vec![2, 2]
        );
        let mut by_company = hour;
        by_company["aggregation_group_type_index"] = json!(0);
        let answer = f.query(funnel(&["signed up", "activated"], by_company));
        assert_eq!(counts(&answer["results"]), vec![2, 2]);
        // Zero durations are left out of the averages (PostHog's rule).
        assert_eq!(answer["results"][1]["average_conversion_time"], 3600.0);
    }

    #[test]
    fn absurd_windows_and_dates_are_answered_or_refused_never_a_crash() {
        let f = companies();
        for order in ["ordered", "unordered"] {
            let answer = f.query(funnel(
                &STEPS[..2],
                json!({"funnelsFilter": {"funnelOrderType": order,
                "funnelWindowInterval": 4_000_000_000u64, "funnelWindowIntervalUnit": "month"}}),
            ));
            assert_eq!(counts(&answer["results"]).len(), 2);
        }
        let err = f.error(funnel(
            &STEPS[..2],
            json!({"dateRange": {"date_from": "-999999q"}}),
        ));
        assert!(err.starts_with("dateRange.date_from:"), "{err}");
    }
}
