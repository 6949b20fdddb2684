//! Answers as rows of text cells, so that Cairn's answer and a
//! hand-written statement's can be compared cell by cell before a ratio is
//! printed; and the placeholders the hand-written statements share.

use chrono::{Datelike, Days, NaiveDate};
use serde_json::Value;

/// An answer as rows of text cells, to compare answers cell by cell.
pub type Rows = Vec<Vec<String>>;
/// Cairn's answer as the rows a hand-written statement returns.
pub type AsRows = fn(&Value) -> Rows;

/// A JSON number as an integer cell.
pub fn count(value: &Value) -> String {
    (value.as_f64().expect("a number").round() as i64).to_string()
}

/// A trend's (day, value) rows, days without a value left out.
pub fn trend_rows(answer: &Value) -> Rows {
    let series = &answer["results"][0];
    let days = series["days"].as_array().unwrap();
    let data = series["data"].as_array().unwrap();
    days.iter()
        .zip(data)
        .filter(|(_, v)| v.as_f64() != Some(0.0))
        .map(|(d, v)| vec![d.as_str().unwrap()[..10].to_string(), count(v)])
        .collect()
}

/// A funnel's step counts, as one row.
pub fn funnel_rows(answer: &Value) -> Rows {
    let steps = answer["results"].as_array().unwrap();
    vec![steps.iter().map(|s| count(&s["count"])).collect()]
}

/// Stickiness's (days active, actors) rows, empty ones left out.
pub fn stickiness_rows(answer: &Value) -> Rows {
    let data = answer["results"][0]["data"].as_array().unwrap();
    data.iter()
        .enumerate()
        .filter(|(_, v)| v.as_f64() != Some(0.0))
        .map(|(i, v)| vec![(i + 1).to_string(), count(v)])
        .collect()
}

/// Retention's (cohort day, interval, actors) cells, empty ones left out.
pub fn retention_rows(answer: &Value) -> Rows {
    let mut rows = Vec::new();
    for cohort in answer["results"].as_array().unwrap() {
        let day = &cohort["date"].as_str().unwrap()[..10];
        for (k, cell) in cohort["values"].as_array().unwrap().iter().enumerate() {
            if cell["count"].as_f64() != Some(0.0) {
                rows.push(vec![day.to_string(), k.to_string(), count(&cell["count"])]);
            }
        }
    }
    rows
}

/// Lifecycle's (week, status, value) rows, zero ones left out, ordered as
/// the statement orders them.
pub fn lifecycle_rows(answer: &Value) -> Rows {
    let mut rows = Vec::new();
    for series in answer["results"].as_array().unwrap() {
        let status = series["status"].as_str().unwrap();
        let days = series["days"].as_array().unwrap();
        for (day, value) in days.iter().zip(series["data"].as_array().unwrap()) {
            if value.as_f64() != Some(0.0) {
                rows.push(vec![
                    day.as_str().unwrap()[..10].to_string(),
                    status.to_string(),
                    count(value),
                ]);
            }
        }
    }
    rows.sort();
    rows
}

/// The paths' (source, target, value) edges, in Cairn's order.
pub fn paths_rows(answer: &Value) -> Rows {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            vec![
                edge["source"].as_str().unwrap().to_string(),
                edge["target"].as_str().unwrap().to_string(),
                count(&edge["value"]),
            ]
        })
        .collect()
}

/// `template` with its placeholders filled in: `{from}` and `{to}` (the
/// query's dates), and the weekly grid of the demo project (weeks start on
/// Sunday): `{first}` (the week of `from`), `{before}` (the week before
/// it), `{after}` (the week after `to`'s) and `{n}` (the weeks).
pub fn fill(template: &str, from: &str, to: &str) -> String {
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date");
    let sunday = |d: NaiveDate| d - Days::new(d.weekday().num_days_from_sunday().into());
    let (first, last) = (sunday(day(from)), sunday(day(to)));
    let n = (last - first).num_days() / 7 + 1;
    template
        .replace("{from}", from)
        .replace("{to}", to)
        .replace("{first}", &first.to_string())
        .replace("{before}", &(first - Days::new(7)).to_string())
        .replace("{after}", &(last + Days::new(7)).to_string())
        .replace("{n}", &n.to_string())
}
