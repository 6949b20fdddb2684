//! Retention with a breakdown: the top values by cohort size keep their
//! tables, the rest are summed into "Other".

mod fixture;

use fixture::Fixture;
use serde_json::{json, Value};

fn counts(row: &Value) -> Vec<i64> {
    row["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_i64().unwrap())
        .collect()
}

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
