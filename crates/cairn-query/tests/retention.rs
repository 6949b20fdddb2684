//! Retention with a breakdown: the top values by cohort size keep their
//! tables, the rest are summed into "Other".

#[macro_use]
mod fixture;

use serde_json::json;

use fixture::retention_counts as counts;

backend_suite! {
    #[test]
    fn values_past_the_breakdown_limit_are_summed_into_other() {
        let mut f = Fixture::new("UTC");
        for id in ["a", "b", "c", "d"] {
            f.person(&[id], json!({}), "2024-01-01 00:00:00");
        }
        let view = |who: &str, day: &str, browser: &str| {
            f.event_with(
                "pageview",
                who,
                &format!("2024-03-{day} 10:00:00"),
                json!({"browser": browser}),
                &[],
            )
        };
        // Chrome starts 3 cohorts, Firefox 2, Safari 1.
        view("a", "10", "Chrome");
        view("a", "11", "Chrome");
        view("b", "10", "Chrome");
        view("c", "10", "Firefox");
        view("c", "12", "Firefox");
        view("d", "11", "Safari");
        let answer = f.query(json!({
            "kind": "RetentionQuery",
            "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-12"},
            "breakdownFilter": {"breakdown": "browser", "breakdown_limit": 1},
            "retentionFilter": {"period": "Day", "totalIntervals": 3,
                "targetEntity": {"id": "pageview"}, "returningEntity": {"id": "pageview"}}
        }));
        let rows = answer["results"].as_array().unwrap();
        let shown: Vec<(String, Vec<i64>)> = rows
            .iter()
            .map(|r| {
                (
                    r["breakdown_value"].as_str().unwrap().to_string(),
                    counts(r),
                )
            })
            .collect();
        let other = "$$_posthog_breakdown_other_$$".to_string();
        assert_eq!(
            shown,
            vec![
                ("Chrome".to_string(), vec![2, 1, 0]),
                ("Chrome".to_string(), vec![1, 0, 0]),
                ("Chrome".to_string(), vec![0, 0, 0]),
                (other.clone(), vec![1, 0, 1]),
                (other.clone(), vec![1, 0, 0]),
                (other, vec![1, 0, 0]),
            ]
        );
    }

    /// Only `date_to`, more than a week ago: the grid is the `totalIntervals`
    /// periods ending with the one that contains `date_to` (PostHog's
    /// QueryDateRangeWithIntervals), not a 400 from a default `date_from`.
    #[test]
    fn only_date_to_ends_the_grid_there() {
        let mut f = Fixture::new("UTC");
        for id in ["a", "b", "c"] {
            f.person(&[id], json!({}), "2024-01-01 00:00:00");
        }
        f.event("pageview", "c", "2024-02-07 10:00:00"); // before the grid
        f.event("pageview", "a", "2024-02-08 10:00:00");
        f.event("pageview", "a", "2024-02-10 23:00:00");
        f.event("pageview", "b", "2024-02-10 09:00:00");
        f.event("pageview", "b", "2024-02-11 09:00:00"); // after date_to
        let retention = |period: &str| {
            f.query(json!({
                "kind": "RetentionQuery",
                "dateRange": {"date_to": "2024-02-10"},
                "retentionFilter": {"period": period, "totalIntervals": 3,
                    "targetEntity": {"id": "pageview"}, "returningEntity": {"id": "pageview"}}
            }))
        };
        let answer = retention("Day");
        let rows = answer["results"].as_array().unwrap();
        let dates: Vec<&str> = rows.iter().map(|r| r["date"].as_str().unwrap()).collect();
        assert_eq!(
            dates,
            [
                "2024-02-08T00:00:00+00:00",
                "2024-02-09T00:00:00+00:00",
                "2024-02-10T00:00:00+00:00"
            ]
        );
        assert_eq!(counts(&rows[0]), [1, 0, 1]);
        assert_eq!(counts(&rows[2])[0], 2);

        // Weeks start on Sunday: 2024-01-21, 01-28 and 02-04 (which holds 02-10).
        let answer = retention("Week");
        let rows = answer["results"].as_array().unwrap();
        let dates: Vec<&str> = rows.iter().map(|r| r["date"].as_str().unwrap()).collect();
        assert_eq!(
            dates,
            [
                "2024-01-21T00:00:00+00:00",
                "2024-01-28T00:00:00+00:00",
                "2024-02-04T00:00:00+00:00"
            ]
        );
        assert_eq!(counts(&rows[2])[0], 3);
    }
}
