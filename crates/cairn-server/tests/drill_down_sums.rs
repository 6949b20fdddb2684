//! Drill-downs add up: on a seeded random data set (40 persons, most in one
//! of 8 companies, a week of January 2024 with spill-over either side),
//! every number of every insight kind — by persons and by company, broken
//! down by `plan` with `breakdown_limit: 2` so that "Other" is in use where
//! the insight supports breakdowns — is drilled into, and the actors the
//! drill-down lists must add up to it: their count, or the sum of their
//! `event_count` where the number counts events or paths. "Other" counts an
//! actor once however many of the values it holds the actor had (PostHog
//! adds the values up), and lists exactly those actors.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{event_at, Server};
use serde_json::{json, Value};

const PERSONS: u64 = 40;
const COMPANIES: u64 = 8;
const DAYS: usize = 7;
/// Skewed so that two values lead and the rest (with "no plan") is Other.
const PLANS: [(&str, u64); 4] = [("free", 40), ("pro", 30), ("starter", 20), ("team", 10)];
const OTHER: &str = "$$_posthog_breakdown_other_$$";

/// splitmix64: a seeded stream, the same data set on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn plan(&mut self) -> &'static str {
        let total: u64 = PLANS.iter().map(|(_, w)| w).sum();
        let mut pick = self.below(total);
        for (plan, weight) in PLANS {
            if pick < weight {
                return plan;
            }
            pick -= weight;
        }
        unreachable!()
    }
}

/// Seconds from 2024-01-01T00:00:00Z (day −1 is 31 December) as RFC 3339.
fn timestamp(seconds: i64) -> String {
    let (day, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let date = match day {
        -1 => "2023-12-31".to_string(),
        d => format!("2024-01-{:02}", d + 1),
    };
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

fn company(index: u64) -> String {
    format!("company-{index}")
}

/// Each person has a company (a fifth none) and a few visits of one to
/// five events minutes apart (now and then over half an hour, which splits
/// a session); a visit falls in the week, or now and then on the day before
/// or after it. An event's company is now and then another one, or none;
/// a fifth of events have no plan, and half of a company's events have its
/// own plan.
fn fixture() -> Server {
    let server = Server::start();
    let mut rng = Rng(0x00c0_ffee_2024);
    let mut batch = Vec::new();
    // Six of the companies have a name (and company is group type 0).
    for c in 0..6 {
        batch.push(event_at(
            "$groupidentify",
            "admin",
            "2023-12-30T00:00:00Z",
            json!({"$group_type": "company", "$group_key": company(c), "$group_set": {"name": format!("Company {c}")}}),
        ));
    }
    for p in 0..PERSONS {
        let who = format!("person-{p:02}");
        let home = (rng.below(5) != 0).then(|| rng.below(COMPANIES));
        for _ in 0..1 + rng.below(5) {
            let day = match rng.below(20) {
                0 => -1,
                1 => DAYS as i64,
                _ => rng.below(DAYS as u64) as i64,
            };
            let mut t = day * 86_400 + rng.below(86_400) as i64;
            for _ in 0..1 + rng.below(5) {
                let name = match rng.below(4) {
                    0 => "signup",
                    1 | 2 => "view",
                    _ => "pay",
                };
                let at = match rng.below(12) {
                    0 => (rng.below(3) != 0).then(|| rng.below(COMPANIES)),
                    _ => home,
                };
                let mut properties = json!({});
                if rng.below(5) != 0 {
                    // Half the time the company's own plan, so that
                    // companies, too, spread over more than two plans.
                    properties["plan"] = match at {
                        Some(c) if rng.below(2) == 0 => json!(PLANS[c as usize % PLANS.len()].0),
                        _ => json!(rng.plan()),
                    };
                }
                if let Some(c) = at {
                    properties["$groups"] = json!({ "company": company(c) });
                }
                batch.push(event_at(name, &who, &timestamp(t), properties));
                let minutes = if rng.below(6) == 0 { 60 } else { 10 };
                t += 60 * (1 + rng.below(minutes)) as i64 + rng.below(60) as i64;
            }
        }
    }
    server.capture(Value::Array(batch));
    server
}

fn date_range() -> Value {
    json!({"date_from": "2024-01-01", "date_to": "2024-01-07"})
}

fn breakdown() -> Value {
    json!({"breakdown": "plan", "breakdown_limit": 2})
}

/// An insight number as an integer (the API may write 3 as 3.0).
fn int(value: &Value) -> i64 {
    let n = value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"));
    assert_eq!(n.fract(), 0.0, "not a whole number: {value}");
    n as i64
}

/// The ids (column 0) of drill-down rows.
fn ids(rows: &[Vec<Value>]) -> BTreeSet<String> {
    rows.iter().map(|r| r[0].to_string()).collect()
}

/// Drills into cells and records every one whose actors do not add up.
struct Drill<'a> {
    server: &'a Server,
    calls: usize,
    checked: usize,
    failures: Vec<String>,
}

impl<'a> Drill<'a> {
    fn new(server: &'a Server) -> Self {
        Self {
            server,
            calls: 0,
            checked: 0,
            failures: Vec::new(),
        }
    }

    /// The insight's answer.
    fn insight(&mut self, query: &Value) -> Value {
        self.calls += 1;
        self.server.answer(query.clone())
    }

    /// The cell's rows (`id` first, then `select`) and the answer; `None`
    /// (recorded as a failure) unless a 200 with every actor on one page,
    /// each once.
    fn rows(&mut self, cell: &Value, select: &[&str]) -> Option<(Vec<Vec<Value>>, Value)> {
        self.calls += 1;
        self.checked += 1;
        let columns: Vec<&str> = std::iter::once("id")
            .chain(select.iter().copied())
            .collect();
        let (status, answer) = self.server.query(json!({
            "kind": "ActorsQuery",
            "source": cell,
            "select": columns,
            "limit": 1000,
        }));
        if status != 200 || answer["hasMore"] != false {
            self.fail(
                cell,
                format!("status {status}, hasMore {}", answer["hasMore"]),
                &answer,
            );
            return None;
        }
        let rows: Vec<Vec<Value>> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().clone())
            .collect();
        if ids(&rows).len() != rows.len() {
            self.fail(cell, "an actor is listed twice".into(), &answer);
            return None;
        }
        Some((rows, answer))
    }

    fn fail(&mut self, cell: &Value, what: String, answer: &Value) {
        self.failures
            .push(format!("{what}\n  cell:   {cell}\n  answer: {answer}"));
    }

    /// Requires `expected` actors in the cell; the ids listed.
    fn count(&mut self, cell: Value, expected: i64) -> BTreeSet<String> {
        let Some((rows, answer)) = self.rows(&cell, &[]) else {
            return BTreeSet::new();
        };
        let listed = rows.len() as i64;
        if listed != expected {
            self.fail(
                &cell,
                format!("{listed} actors listed, the insight says {expected}"),
                &answer,
            );
        }
        ids(&rows)
    }

    /// Requires the cell's actors' `event_count`s to sum to `expected`.
    fn event_sum(&mut self, cell: Value, expected: i64) {
        let Some((rows, answer)) = self.rows(&cell, &["event_count"]) else {
            return;
        };
        let sum: i64 = rows.iter().map(|r| int(&r[1])).sum();
        if sum != expected {
            self.fail(
                &cell,
                format!("event_count sums to {sum}, the insight says {expected}"),
                &answer,
            );
        }
    }

    /// Fails with every cell that did not add up.
    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} cells drilled into, {} HTTP calls",
            self.checked, self.calls
        );
        assert!(self.checked > 0, "{what}: no cell was drilled into");
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} cells do not add up:\n{}",
            self.failures.len(),
            self.checked,
            self.failures
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// `(label, aggregation_group_type_index)`: by persons, by company.
const BY: [(&str, Option<u8>); 2] = [("persons", None), ("companies", Some(0))];

fn with_aggregation(mut query: Value, group: Option<u8>) -> Value {
    if let Some(group) = group {
        query["aggregation_group_type_index"] = json!(group);
    }
    query
}

/// Trends with `breakdown_limit: 2`, checked against the same trends with
/// every value shown (`full`): each point of `full` lists as many actors as
/// it counts (unique math) or its actors' events sum to it (math total).
/// "Other" counts distinct actors: an actor with two of its values on one
/// day is one actor, so its number and its list are the union of theirs.
#[test]
fn trends_points_add_up_per_breakdown_value() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    let unique = |event: &str, group: Option<u8>| match group {
        None => json!({"kind": "EventsNode", "event": event, "math": "dau"}),
        Some(i) => {
            json!({"kind": "EventsNode", "event": event, "math": "unique_group", "math_group_type_index": i})
        }
    };
    // Series 1 counts events; the others count actors.
    const TOTAL: i64 = 1;
    // Other points that count an actor twice (two of its values that day).
    let mut doubled = 0;
    for (by, group) in BY {
        let query = |limit: u64| {
            json!({
                "kind": "TrendsQuery",
                "series": [
                    unique("view", group),
                    {"kind": "EventsNode", "event": "pay", "math": "total"},
                    unique("signup", group),
                ],
                "dateRange": date_range(),
                "interval": "day",
                "breakdownFilter": {"breakdown": "plan", "breakdown_limit": limit},
            })
        };
        let cell = |query: &Value, result: &Value, day: &Value| {
            json!({
                "kind": "InsightActorsQuery",
                "source": query,
                "day": day,
                "series": result["action"]["order"],
                "breakdown": result["breakdown_value"],
            })
        };
        // Every value on its own: (series, day, value) → (number, actors).
        let full_query = query(25);
        let full = drill.insight(&full_query);
        let mut points: BTreeMap<(i64, usize, String), (i64, BTreeSet<String>)> = BTreeMap::new();
        for result in full["results"].as_array().unwrap() {
            assert_ne!(result["breakdown_value"], OTHER, "{by}: {full}");
            let series = result["action"]["order"].as_i64().unwrap();
            let days = result["days"].as_array().unwrap();
            assert_eq!(days.len(), DAYS, "{result}");
            for (d, day) in days.iter().enumerate() {
                let value = int(&result["data"][d]);
                if value == 0 {
                    continue;
                }
                let cell = cell(&full_query, result, day);
                let actors = if series == TOTAL {
                    drill.event_sum(cell, value);
                    BTreeSet::new()
                } else {
                    drill.count(cell, value)
                };
                let key = (series, d, result["breakdown_value"].to_string());
                points.insert(key, (value, actors));
            }
        }

        let top_query = query(2);
        let top = drill.insight(&top_query);
        let results = top["results"].as_array().unwrap();
        assert!(
            results.iter().any(|r| r["breakdown_value"] == OTHER),
            "{by}: no Other bucket: {top}"
        );
        // Each series keeps its own top values.
        let kept: BTreeSet<(i64, String)> = results
            .iter()
            .filter(|r| r["breakdown_value"] != OTHER)
            .map(|r| {
                let series = r["action"]["order"].as_i64().unwrap();
                (series, r["breakdown_value"].to_string())
            })
            .collect();
        // (series, day) → sum of the values.
        let mut per_day: BTreeMap<(i64, usize), i64> = BTreeMap::new();
        for result in results {
            let series = result["action"]["order"].as_i64().unwrap();
            let other = result["breakdown_value"] == OTHER;
            for (d, day) in result["days"].as_array().unwrap().iter().enumerate() {
                let value = int(&result["data"][d]);
                *per_day.entry((series, d)).or_default() += value;
                if value == 0 {
                    continue;
                }
                let cell = cell(&top_query, result, day);
                if series == TOTAL {
                    drill.event_sum(cell, value);
                } else if !other {
                    drill.count(cell, value);
                } else {
                    // The values Other holds, as `full` shows them.
                    let (mut sum, mut union) = (0, BTreeSet::new());
                    for ((s, k, v), (value, actors)) in &points {
                        if (*s, *k) == (series, d) && !kept.contains(&(series, v.clone())) {
                            sum += value;
                            union.extend(actors.iter().cloned());
                        }
                    }
                    let Some((rows, answer)) = drill.rows(&cell, &[]) else {
                        continue;
                    };
                    let listed = ids(&rows);
                    if value != union.len() as i64 || listed != union {
                        drill.fail(
                            &cell,
                            format!(
                                "Other is {value}; the values it holds have the actors {union:?}"
                            ),
                            &answer,
                        );
                    }
                    doubled += usize::from(sum > union.len() as i64);
                }
            }
        }
        // Other or not, a day's events add up to the same as every value's.
        for ((series, d), values) in per_day.into_iter().filter(|((s, _), _)| *s == TOTAL) {
            let every: i64 = points
                .iter()
                .filter(|((s, k, _), _)| (*s, *k) == (series, d))
                .map(|(_, (value, _))| value)
                .sum();
            if values != every {
                drill.failures.push(format!(
                    "{by}: series {series}, day {d}: the values sum to {values}, every value's to {every}"
                ));
            }
        }
    }
    assert!(
        doubled > 0,
        "no Other point has an actor with two of its values"
    );
    drill.finish("trends");
}

#[test]
fn funnel_steps_and_drop_offs_add_up_per_breakdown_value() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    for (by, group) in BY {
        // All events attribution: an actor under each of its values, and in
        // "Other" once, over the events of the values it holds.
        for (with_breakdown, attribution) in [
            (true, "first_touch"),
            (true, "all_events"),
            (false, "first_touch"),
        ] {
            let mut query = with_aggregation(
                json!({
                    "kind": "FunnelsQuery",
                    "series": [
                        {"kind": "EventsNode", "event": "signup"},
                        {"kind": "EventsNode", "event": "view"},
                        {"kind": "EventsNode", "event": "pay"},
                    ],
                    "dateRange": date_range(),
                    "funnelsFilter": {"funnelWindowInterval": 2, "funnelWindowIntervalUnit": "day",
                                      "breakdownAttributionType": attribution},
                }),
                group,
            );
            if with_breakdown {
                query["breakdownFilter"] = breakdown();
            }
            let insight = drill.insight(&query);
            let funnels: Vec<Vec<Value>> = if with_breakdown {
                let funnels: Vec<Vec<Value>> = insight["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|steps| steps.as_array().unwrap().clone())
                    .collect();
                assert!(
                    funnels
                        .iter()
                        .any(|steps| steps[0]["breakdown_value"] == json!(["Other"])),
                    "{by}: no Other bucket: {insight}"
                );
                funnels
            } else {
                vec![insight["results"].as_array().unwrap().clone()]
            };
            for steps in funnels {
                let counts: Vec<i64> = steps.iter().map(|s| int(&s["count"])).collect();
                for (i, step) in steps.iter().enumerate() {
                    let n = i as i64 + 1;
                    let cell = |funnel_step: i64| {
                        let mut cell = json!({
                            "kind": "FunnelsActorsQuery",
                            "source": query,
                            "funnelStep": funnel_step,
                        });
                        if with_breakdown {
                            cell["funnelStepBreakdown"] = step["breakdown_value"].clone();
                        }
                        cell
                    };
                    if counts[i] != 0 {
                        drill.count(cell(n), counts[i]);
                    }
                    if i > 0 {
                        let dropped = counts[i - 1] - counts[i];
                        if dropped != 0 {
                            drill.count(cell(-n), dropped);
                        }
                    }
                }
            }
        }
    }
    drill.finish("funnels");
}

#[test]
fn retention_cells_add_up_per_breakdown_value() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    let kinds = [
        ("retention_recurring", "view", "view"),
        ("retention_first_time", "signup", "pay"),
    ];
    for (by, group) in BY {
        for (kind, target, returning) in kinds {
            let query = with_aggregation(
                json!({
                    "kind": "RetentionQuery",
                    "dateRange": date_range(),
                    "breakdownFilter": breakdown(),
                    "retentionFilter": {
                        "period": "Day",
                        "totalIntervals": DAYS,
                        "retentionType": kind,
                        "targetEntity": {"id": target, "type": "events"},
                        "returningEntity": {"id": returning, "type": "events"},
                    },
                }),
                group,
            );
            let insight = drill.insight(&query);
            let results = insight["results"].as_array().unwrap();
            assert!(
                results.iter().any(|r| r["breakdown_value"] == OTHER),
                "{by} {kind}: no Other bucket: {insight}"
            );
            // Rows come breakdown value after breakdown value, each with
            // one row per cohort.
            let mut row_of: BTreeMap<String, i64> = BTreeMap::new();
            for result in results {
                let value = &result["breakdown_value"];
                let row = row_of.entry(value.to_string()).or_default();
                let counts: Vec<i64> = result["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| int(&v["count"]))
                    .collect();
                let cell = json!({
                    "kind": "InsightActorsQuery",
                    "source": query,
                    "interval": *row,
                    "breakdown": value,
                });
                *row += 1;
                if counts[0] == 0 {
                    assert!(counts.iter().all(|c| *c == 0), "{result}");
                    continue;
                }
                // The whole row: its cohort, and each column's count as
                // how many of them appeared there.
                if let Some((rows, answer)) = drill.rows(&cell, &["appearances"]) {
                    let appeared: Vec<i64> = (0..counts.len())
                        .map(|k| rows.iter().filter(|r| r[1][k] == true).count() as i64)
                        .collect();
                    if rows.len() as i64 != counts[0] || appeared != counts {
                        drill.fail(
                            &cell,
                            format!(
                                "the row lists {} actors appearing {appeared:?}, the insight says {counts:?}",
                                rows.len()
                            ),
                            &answer,
                        );
                    }
                }
                for (column, count) in counts.iter().enumerate() {
                    if *count != 0 {
                        let mut cell = cell.clone();
                        cell["column"] = json!(column);
                        drill.count(cell, *count);
                    }
                }
            }
            assert_eq!(row_of.len(), 3, "{by} {kind}: two values and Other");
            assert!(
                row_of.values().all(|rows| *rows == DAYS as i64),
                "{row_of:?}"
            );
        }
    }
    drill.finish("retention");
}

#[test]
fn lifecycle_bars_add_up() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    for (by, group) in BY {
        for event in ["view", "pay"] {
            let query = with_aggregation(
                json!({
                    "kind": "LifecycleQuery",
                    "series": [{"kind": "EventsNode", "event": event}],
                    "dateRange": date_range(),
                    "interval": "day",
                }),
                group,
            );
            let insight = drill.insight(&query);
            let results = insight["results"].as_array().unwrap();
            assert_eq!(results.len(), 4, "{by}: {insight}");
            for result in results {
                for (d, day) in result["days"].as_array().unwrap().iter().enumerate() {
                    let value = int(&result["data"][d]).abs();
                    if value != 0 {
                        let cell = json!({
                            "kind": "InsightActorsQuery",
                            "source": query,
                            "day": day,
                            "status": result["status"],
                        });
                        drill.count(cell, value);
                    }
                }
            }
        }
    }
    drill.finish("lifecycle");
}

#[test]
fn stickiness_bars_add_up() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    for (by, group) in BY {
        let series = match group {
            None => json!([
                {"kind": "EventsNode", "event": "view"},
                {"kind": "EventsNode", "event": "signup"},
            ]),
            Some(i) => json!([
                {"kind": "EventsNode", "event": "view", "math": "unique_group", "math_group_type_index": i},
                {"kind": "EventsNode", "event": "signup", "math_group_type_index": i},
            ]),
        };
        let query = json!({
            "kind": "StickinessQuery",
            "series": series,
            "dateRange": date_range(),
            "interval": "day",
        });
        let insight = drill.insight(&query);
        let results = insight["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{by}: {insight}");
        for (series, result) in results.iter().enumerate() {
            let data = result["data"].as_array().unwrap();
            assert_eq!(data.len(), DAYS, "{result}");
            for (k, value) in data.iter().enumerate() {
                let value = int(value);
                if value != 0 {
                    let cell = json!({
                        "kind": "InsightActorsQuery",
                        "source": query,
                        "day": k + 1,
                        "series": series,
                    });
                    drill.count(cell, value);
                }
            }
        }
    }
    drill.finish("stickiness");
}

#[test]
fn paths_edges_add_up() {
    let server = fixture();
    let mut drill = Drill::new(&server);
    for (by, group) in BY {
        let query = with_aggregation(
            json!({
                "kind": "PathsQuery",
                "dateRange": date_range(),
                "pathsFilter": {"includeEventTypes": ["custom_event"]},
            }),
            group,
        );
        let insight = drill.insight(&query);
        let edges = insight["results"].as_array().unwrap();
        assert!(edges.len() >= 10, "{by}: too few edges to tell: {insight}");
        for edge in edges {
            let mut source = query.clone();
            source["pathsFilter"]["pathStartKey"] = edge["source"].clone();
            source["pathsFilter"]["pathEndKey"] = edge["target"].clone();
            let cell = json!({"kind": "InsightActorsQuery", "source": source});
            drill.event_sum(cell, int(&edge["value"]));
        }
    }
    drill.finish("paths");
}
