//! Every insight kind buckets by the project's local day: zones behind UTC
//! (with and without a DST change in range) and half-hour zones, with events
//! half an hour either side of local midnight.

#[macro_use]
mod fixture;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{json, Value};

backend_suite! {
    /// The UTC reading (`2024-03-10 07:30:00`) of a local wall-clock time.
    fn utc(tz: Tz, local: NaiveDateTime) -> String {
        tz.from_local_datetime(&local)
            .single()
            .expect("an unambiguous local time")
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// `day1` and the day after it in `zone`, with:
    /// - a: pageview at day1 23:30 and day2 00:30 (two local days);
    /// - b: pageview at day2 00:30;
    /// - c: signup at day1 23:50, purchase at day2 00:10 (starts before day2);
    /// - d: signup at day2 00:20, purchase at day2 00:40.
    fn midnight_case(zone: &str, day1: NaiveDate) -> (Fixture, String, String) {
        let mut f = Fixture::new(zone);
        let tz: Tz = zone.parse().unwrap();
        assert_eq!(f.ctx.timezone, tz, "the project is in {zone}");
        let day2 = day1.succ_opt().unwrap();
        let at = |day: NaiveDate, h: u32, m: u32| utc(tz, day.and_hms_opt(h, m, 0).unwrap());
        for id in ["a", "b", "c", "d"] {
            // Created with their first event, so lifecycle's "new" is that day.
            let first = match id {
                "a" => at(day1, 23, 30),
                "b" => at(day2, 0, 30),
                "c" => at(day1, 23, 50),
                _ => at(day2, 0, 20),
            };
            f.person(&[id], json!({}), &first);
        }
        f.event("pageview", "a", &at(day1, 23, 30));
        f.event("pageview", "a", &at(day2, 0, 30));
        f.event("pageview", "b", &at(day2, 0, 30));
        f.event("signup", "c", &at(day1, 23, 50));
        f.event("purchase", "c", &at(day2, 0, 10));
        f.event("signup", "d", &at(day2, 0, 20));
        f.event("purchase", "d", &at(day2, 0, 40));
        (f, day1.to_string(), day2.to_string())
    }

    fn data(row: &Value) -> Vec<i64> {
        let values = row.get("data").or_else(|| row.get("values")).unwrap();
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.get("count").unwrap_or(v).as_f64().unwrap() as i64)
            .collect()
    }

    fn check_every_insight(zone: &str, day1: NaiveDate) {
        let (f, day1, day2) = midnight_case(zone, day1);
        let both = json!({"date_from": day1, "date_to": day2});
        let second = json!({"date_from": day2, "date_to": day2});
        let pageview = json!([{"kind": "EventsNode", "event": "pageview"}]);

        let trends = f.query(
            json!({"kind": "TrendsQuery", "dateRange": both, "interval": "day",
            "series": pageview}),
        );
        assert_eq!(data(&trends["results"][0]), [1, 2], "{zone} trends");
        assert_eq!(trends["results"][0]["days"], json!([day1, day2]), "{zone}");

        // a on two days, b on one.
        let stickiness = f.query(json!({"kind": "StickinessQuery", "dateRange": both,
            "interval": "day", "series": pageview}));
        assert_eq!(data(&stickiness["results"][0]), [1, 1], "{zone} stickiness");

        let lifecycle = f.query(json!({"kind": "LifecycleQuery", "dateRange": both,
            "interval": "day", "series": pageview}));
        let status = |name: &str| {
            let row = lifecycle["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["status"] == name)
                .unwrap_or_else(|| panic!("{zone}: no {name} row in {lifecycle}"));
            data(row)
        };
        assert_eq!(status("new"), [1, 1], "{zone} lifecycle new (a, then b)");
        assert_eq!(
            status("returning"),
            [0, 1],
            "{zone} lifecycle returning (a)"
        );

        let retention = f.query(json!({"kind": "RetentionQuery", "dateRange": both,
            "retentionFilter": {"period": "Day", "totalIntervals": 2,
                "targetEntity": {"id": "pageview", "type": "events"},
                "returningEntity": {"id": "pageview", "type": "events"}}}));
        let rows = retention["results"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{zone} retention cohorts");
        assert_eq!(data(&rows[0]), [1, 1], "{zone} retention: a's cohort");
        assert_eq!(data(&rows[1])[0], 2, "{zone} retention: a and b on day 2");

        // c's signup is on day 1, local time: only d enters a day-2 funnel.
        let funnel = f.query(json!({"kind": "FunnelsQuery", "dateRange": second,
            "series": [{"kind": "EventsNode", "event": "signup"},
                       {"kind": "EventsNode", "event": "purchase"}]}));
        let counts: Vec<i64> = funnel["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_i64().unwrap())
            .collect();
        assert_eq!(counts, [1, 1], "{zone} funnel");

        let paths = f.query(json!({"kind": "PathsQuery", "dateRange": second,
            "pathsFilter": {"includeEventTypes": ["custom_event"]}}));
        let edges: Vec<(String, String, i64)> = paths["results"]
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
            .collect();
        assert_eq!(
            edges,
            [("1_signup".to_string(), "2_purchase".to_string(), 1)],
            "{zone} paths"
        );
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn phoenix_has_no_dst() {
        check_every_insight("America/Phoenix", day("2024-03-03"));
        check_every_insight("America/Phoenix", day("2024-03-10"));
    }

    #[test]
    fn us_pacific_without_a_dst_change_in_range() {
        check_every_insight("US/Pacific", day("2024-03-03"));
    }

    #[test]
    fn us_pacific_across_the_spring_dst_change() {
        // Clocks go forward at 02:00 on 2024-03-10: day 1 starts at UTC-8 and
        // its evening, like day 2, is at UTC-7.
        check_every_insight("US/Pacific", day("2024-03-10"));
    }

    #[test]
    fn half_hour_zones() {
        check_every_insight("Asia/Kolkata", day("2024-03-03"));
        check_every_insight("America/St_Johns", day("2024-03-03"));
        // St John's also moves forward on 2024-03-10 (UTC-3:30 to UTC-2:30).
        check_every_insight("America/St_Johns", day("2024-03-10"));
    }

    #[test]
    fn a_zone_ahead_of_utc_still_buckets_locally() {
        check_every_insight("Asia/Tokyo", day("2024-03-03"));
    }
}
