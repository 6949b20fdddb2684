//! Insights: a builder form for trends, funnels, retention, lifecycle,
//! stickiness and paths, each counted by persons or any group type (by its
//! display name), over a date range, with an optional breakdown; the answer
//! comes from the same query engine as the API and is drawn as a chart with
//! its numbers. Insights are saved as the builder's parameters.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use cairn_store::insights;

use super::charts::{self, number, Series};
use super::filters;
use super::html::{capitalised, esc, notice, value_text, when, Section};
use super::{Context, SignedIn};
use crate::api::query::answer;
use crate::api::with_conn;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const KINDS: [(&str, &str); 6] = [
    ("trends", "Trends"),
    ("funnels", "Funnel"),
    ("retention", "Retention"),
    ("lifecycle", "Lifecycle"),
    ("stickiness", "Stickiness"),
    ("paths", "Paths"),
];
const RANGES: [(&str, &str); 5] = [
    ("-7d", "Last 7 days"),
    ("-30d", "Last 30 days"),
    ("-90d", "Last 90 days"),
    ("-180d", "Last 180 days"),
    ("all", "All time"),
];
const INTERVALS: [&str; 3] = ["day", "week", "month"];

/// The builder's fields, as they travel in the page's query string.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Builder {
    kind: String,
    event1: String,
    event2: String,
    event3: String,
    counted_by: String,
    date_from: String,
    interval: String,
    breakdown: String,
    breakdown_type: String,
    filter_type: String,
    filter_key: String,
    filter_op: String,
    filter_value: String,
    display: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            kind: "trends".into(),
            event1: String::new(),
            event2: String::new(),
            event3: String::new(),
            counted_by: "persons".into(),
            date_from: "-30d".into(),
            interval: "day".into(),
            breakdown: String::new(),
            breakdown_type: "event".into(),
            filter_type: "event".into(),
            filter_key: String::new(),
            filter_op: "exact".into(),
            filter_value: String::new(),
            display: "line".into(),
        }
    }
}

impl Builder {
    fn events(&self) -> Vec<&str> {
        [&self.event1, &self.event2, &self.event3]
            .into_iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect()
    }

    /// `Some(i)` when counting groups of type `i`.
    fn group(&self) -> Option<u8> {
        self.counted_by.parse().ok()
    }

    fn breakdown_filter(&self) -> Option<Value> {
        let key = self.breakdown.trim();
        if key.is_empty() {
            return None;
        }
        Some(match self.breakdown_type.strip_prefix("group:") {
            Some(index) => json!({"breakdown": key, "breakdown_type": "group",
                "breakdown_group_type_index": index.parse::<u8>().unwrap_or(0)}),
            None => json!({"breakdown": key, "breakdown_type": self.breakdown_type}),
        })
    }

    /// The property filter every event must pass, if one is set.
    fn filter(&self) -> Option<Value> {
        let key = self.filter_key.trim();
        if key.is_empty() {
            return None;
        }
        let mut filter = match self.filter_type.strip_prefix("group:") {
            Some(index) => json!({"key": key, "type": "group",
                "group_type_index": index.parse::<u8>().unwrap_or(0)}),
            None => json!({"key": key, "type": self.filter_type}),
        };
        filter["operator"] = json!(self.filter_op);
        if let Some(value) = filters::value(&self.filter_op, self.filter_value.trim()) {
            filter["value"] = value;
        }
        Some(filter)
    }

    /// PostHog's query JSON for this builder.
    fn query(&self) -> Value {
        let events = self.events();
        let range = json!({"date_from": self.date_from});
        let group = self.group();
        let mut query = match self.kind.as_str() {
            "funnels" => json!({"kind": "FunnelsQuery",
                "series": events.iter().map(|e| json!({"kind": "EventsNode", "event": e})).collect::<Vec<_>>()}),
            "retention" => {
                let target = events.first().copied().unwrap_or("");
                let returning = events.get(1).copied().unwrap_or(target);
                let period = capitalised(&self.interval);
                json!({"kind": "RetentionQuery", "retentionFilter": {
                    "targetEntity": {"id": target, "type": "events"},
                    "returningEntity": {"id": returning, "type": "events"},
                    "period": period, "totalIntervals": 8}})
            }
            "lifecycle" => json!({"kind": "LifecycleQuery", "interval": self.interval,
                "series": [{"kind": "EventsNode", "event": events.first().copied().unwrap_or("")}]}),
            "stickiness" => {
                let mut series =
                    json!({"kind": "EventsNode", "event": events.first().copied().unwrap_or("")});
                if let Some(index) = group {
                    series["math"] = json!("unique_group");
                    series["math_group_type_index"] = json!(index);
                }
                json!({"kind": "StickinessQuery", "interval": self.interval, "series": [series]})
            }
            "paths" => json!({"kind": "PathsQuery", "pathsFilter": {
                "includeEventTypes": ["$pageview", "custom_event"], "stepLimit": 5}}),
            _ => {
                let series: Vec<Value> = events
                    .iter()
                    .map(|e| {
                        let mut series = json!({"kind": "EventsNode", "event": e});
                        match (self.counted_by.as_str(), group) {
                            ("total", _) => series["math"] = json!("total"),
                            (_, Some(index)) => {
                                series["math"] = json!("unique_group");
                                series["math_group_type_index"] = json!(index);
                            }
                            _ => series["math"] = json!("dau"),
                        }
                        series
                    })
                    .collect();
                let display = match self.display.as_str() {
                    "bar" => "ActionsBar",
                    "number" => "BoldNumber",
                    _ => "ActionsLineGraph",
                };
                json!({"kind": "TrendsQuery", "series": series, "interval": self.interval,
                    "trendsFilter": {"display": display}})
            }
        };
        query["dateRange"] = range;
        if let Some(filter) = self.filter() {
            query["properties"] = json!([filter]);
        }
        if let Some(index) = group {
            if matches!(
                self.kind.as_str(),
                "funnels" | "retention" | "lifecycle" | "paths"
            ) {
                query["aggregation_group_type_index"] = json!(index);
            }
        }
        if matches!(self.kind.as_str(), "trends" | "funnels") {
            if let Some(breakdown) = self.breakdown_filter() {
                query["breakdownFilter"] = breakdown;
            }
        }
        query
    }
}

fn options<'a>(items: impl IntoIterator<Item = (&'a str, String)>, current: &str) -> String {
    items
        .into_iter()
        .map(|(value, label)| {
            let selected = if value == current { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{selected}>{}</option>",
                esc(value),
                esc(&label)
            )
        })
        .collect()
}

fn form(ctx: &Context, builder: &Builder, event_names: &[String]) -> String {
    let p = ctx.id().0;
    let kinds = options(
        KINDS.iter().map(|(v, l)| (*v, l.to_string())),
        &builder.kind,
    );
    let mut counted = vec![
        ("total".to_string(), "Total count".to_string()),
        ("persons".to_string(), "Unique persons".to_string()),
    ];
    for t in &ctx.group_types {
        counted.push((
            t.group_type_index.to_string(),
            format!("Unique {}", t.plural()),
        ));
    }
    let counted = options(
        counted.iter().map(|(v, l)| (v.as_str(), l.clone())),
        &builder.counted_by,
    );
    let ranges = options(
        RANGES.iter().map(|(v, l)| (*v, l.to_string())),
        &builder.date_from,
    );
    let intervals = options(
        INTERVALS.iter().map(|i| (*i, capitalised(i))),
        &builder.interval,
    );
    let mut breakdown_types = vec![
        ("event".to_string(), "Event property".to_string()),
        ("person".to_string(), "Person property".to_string()),
    ];
    for t in &ctx.group_types {
        breakdown_types.push((
            format!("group:{}", t.group_type_index),
            format!("{} property", capitalised(&t.singular())),
        ));
    }
    let filter_types = options(
        breakdown_types.iter().map(|(v, l)| (v.as_str(), l.clone())),
        &builder.filter_type,
    );
    let breakdown_types = options(
        breakdown_types.iter().map(|(v, l)| (v.as_str(), l.clone())),
        &builder.breakdown_type,
    );
    let operators = filters::operator_options();
    let operators = options(
        operators.iter().map(|(v, l)| (v.as_str(), l.clone())),
        &builder.filter_op,
    );
    let displays = options(
        [
            ("line", "Line".to_string()),
            ("bar", "Bars".to_string()),
            ("number", "Total value".to_string()),
        ],
        &builder.display,
    );
    let datalist: String = event_names
        .iter()
        .map(|e| format!("<option value=\"{}\">", esc(e)))
        .collect();
    let event = |n: usize, value: &str, label: &str| {
        format!(
            "<label for=\"event{n}\">{label}</label><input id=\"event{n}\" name=\"event{n}\" list=\"event-names\" value=\"{}\">",
            esc(value)
        )
    };
    format!(
        "<form method=\"get\" action=\"/project/{p}/insights\" class=\"card builder\">\
         <datalist id=\"event-names\">{datalist}</datalist>\
         <div class=\"fields\">\
         <label for=\"kind\">Insight</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
         {e1}{e2}{e3}\
         <label for=\"counted_by\">Counted by</label><select id=\"counted_by\" name=\"counted_by\">{counted}</select>\
         <label for=\"date_from\">Date range</label><select id=\"date_from\" name=\"date_from\">{ranges}</select>\
         <label for=\"interval\">Interval</label><select id=\"interval\" name=\"interval\">{intervals}</select>\
         <label for=\"breakdown_type\">Breakdown by</label><select id=\"breakdown_type\" name=\"breakdown_type\">{breakdown_types}</select>\
         <label for=\"breakdown\">Breakdown property</label><input id=\"breakdown\" name=\"breakdown\" value=\"{breakdown}\" placeholder=\"e.g. plan\">\
         <label for=\"filter_type\">Filter on</label><select id=\"filter_type\" name=\"filter_type\">{filter_types}</select>\
         <label for=\"filter_key\">Filter property</label><input id=\"filter_key\" name=\"filter_key\" value=\"{filter_key}\" placeholder=\"e.g. $browser\">\
         <label for=\"filter_op\">Filter operator</label><select id=\"filter_op\" name=\"filter_op\">{operators}</select>\
         <label for=\"filter_value\">Filter value</label><input id=\"filter_value\" name=\"filter_value\" value=\"{filter_value}\">\
         <label for=\"display\">Trends display</label><select id=\"display\" name=\"display\">{displays}</select>\
         </div><p class=\"muted\">Funnels use the events as steps; retention starts with the first event and returns with the second (or the first again).</p>\
         <button type=\"submit\" class=\"primary\">Calculate</button></form>",
        e1 = event(1, &builder.event1, "Event (or step 1)"),
        e2 = event(2, &builder.event2, "Second event (or step 2)"),
        e3 = event(3, &builder.event3, "Third event (or step 3)"),
        breakdown = esc(&builder.breakdown),
        filter_key = esc(&builder.filter_key),
        filter_value = esc(&builder.filter_value),
    )
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn series_label(item: &Value) -> String {
    // With a breakdown, PostHog's `label` is the value; the event is the action's name.
    let event = item["action"]["name"]
        .as_str()
        .or(item["label"].as_str())
        .unwrap_or("");
    match &item["breakdown_value"] {
        Value::Null => event.to_string(),
        value => format!("{event} · {}", value_text(value)),
    }
}

/// A table of the numbers behind a series chart.
fn numbers_table(labels: &[String], series: &[Series]) -> String {
    let mut head = String::from("<th scope=\"col\">Series</th>");
    for label in labels {
        let _ = write!(head, "<th scope=\"col\">{}</th>", esc(label));
    }
    let mut rows = String::new();
    for s in series {
        let _ = write!(rows, "<tr><th scope=\"row\">{}</th>", esc(&s.name));
        for v in &s.values {
            let _ = write!(rows, "<td>{}</td>", number(*v));
        }
        rows.push_str("</tr>");
    }
    format!("<details><summary>Numbers</summary><div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></details>")
}

fn render(builder: &Builder, results: &Value) -> String {
    let empty = "<p class=\"muted\">No data in this range.</p>".to_string();
    let Some(items) = results.as_array() else {
        return empty;
    };
    if items.is_empty() {
        return empty;
    }
    match builder.kind.as_str() {
        "funnels" => {
            // With a breakdown, one funnel per value.
            let funnels: Vec<&Value> = if items[0].is_array() {
                items.iter().take(6).collect()
            } else {
                vec![results]
            };
            funnels
                .iter()
                .map(|steps| {
                    let steps = steps.as_array().map(Vec::as_slice).unwrap_or(&[]);
                    let heading = steps.first().and_then(|s| match &s["breakdown_value"] {
                        Value::Null => None,
                        Value::Array(values) => {
                            Some(values.iter().map(value_text).collect::<Vec<_>>().join(", "))
                        }
                        value => Some(value_text(value)),
                    });
                    let bars: Vec<(String, f64, Option<f64>)> = steps
                        .iter()
                        .map(|s| {
                            (
                                s["name"].as_str().unwrap_or("").to_string(),
                                s["count"].as_f64().unwrap_or(0.0),
                                s["average_conversion_time"].as_f64(),
                            )
                        })
                        .collect();
                    let heading = heading
                        .map(|h| format!("<h3>{}</h3>", esc(&h)))
                        .unwrap_or_default();
                    heading + &charts::funnel(&bars)
                })
                .collect()
        }
        "retention" => {
            let rows: Vec<(String, Vec<f64>)> = items
                .iter()
                .map(|r| {
                    let values = r["values"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .map(|c| c["count"].as_f64().unwrap_or(0.0))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        r["label"]
                            .as_str()
                            .or(r["date"].as_str())
                            .unwrap_or("")
                            .to_string(),
                        values,
                    )
                })
                .collect();
            charts::retention(&rows, &capitalised(&builder.interval))
        }
        "paths" => {
            let mut rows = String::new();
            for link in items.iter().take(30) {
                let _ = write!(
                    rows,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(link["source"].as_str().unwrap_or("")),
                    esc(link["target"].as_str().unwrap_or("")),
                    number(link["value"].as_f64().unwrap_or(0.0))
                );
            }
            format!("<table><thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th><th scope=\"col\">Count</th></tr></thead><tbody>{rows}</tbody></table>")
        }
        _ => {
            let labels = strings(&items[0]["labels"]);
            let series: Vec<Series> = items
                .iter()
                .map(|item| Series {
                    name: match builder.kind.as_str() {
                        "lifecycle" => item["status"].as_str().unwrap_or("").to_string(),
                        _ => series_label(item),
                    },
                    values: floats(&item["data"]),
                })
                .collect();
            if builder.kind == "trends" && builder.display == "number" {
                return items
                    .iter()
                    .map(|item| {
                        let value = item["aggregated_value"]
                            .as_f64()
                            .or(item["count"].as_f64())
                            .unwrap_or(0.0);
                        format!(
                            "<p class=\"bold-number\"><strong>{}</strong> {}</p>",
                            number(value),
                            esc(&series_label(item))
                        )
                    })
                    .collect();
            }
            let chart = match builder.kind.as_str() {
                "lifecycle" => charts::stacked_chart("Lifecycle", &labels, &series),
                "stickiness" => charts::series_chart("Stickiness", &labels, &series, true),
                _ => charts::series_chart("Trends", &labels, &series, builder.display == "bar"),
            };
            chart + &numbers_table(&labels, &series)
        }
    }
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    Query(builder): Query<Builder>,
    RawQuery(raw): RawQuery,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let event_names = with_conn(&state.store, move |conn| {
        insights::event_names(conn, id, 200)
    })
    .await?;
    let p = id.0;
    let mut body = format!(
        "<nav class=\"tabs\" aria-label=\"Insights\"><a href=\"/project/{p}/insights\" aria-current=\"page\">New insight</a>\
         <a href=\"/project/{p}/insights/saved\">Saved insights</a></nav>"
    );
    body.push_str(&form(&ctx, &builder, &event_names));
    let has_events = !builder.events().is_empty() || builder.kind == "paths";
    if raw.is_some() && has_events {
        let query = builder.query();
        match answer(&state, id, query.clone()).await {
            Ok(result) => {
                let _ = write!(
                    body,
                    "<section class=\"card result\"><h2>Result</h2>{}\
                     <details><summary>Query JSON (for <code>POST /api/projects/{p}/query/</code>)</summary><pre><code>{}</code></pre></details>\
                     <form method=\"post\" action=\"/project/{p}/insights/save\" class=\"inline\">\
                     <input type=\"hidden\" name=\"params\" value=\"{}\">\
                     <label for=\"name\">Save as</label><input id=\"name\" name=\"name\" required placeholder=\"e.g. Weekly active companies\">\
                     <button type=\"submit\">Save insight</button></form></section>",
                    render(&builder, &result["results"]),
                    esc(&serde_json::to_string_pretty(&query).unwrap_or_default()),
                    esc(raw.as_deref().unwrap_or("")),
                );
            }
            Err(error @ (ApiError::InvalidField { .. } | ApiError::BadRequest(_))) => {
                body.push_str(&notice("error", &error.to_string()));
            }
            Err(error) => return Err(error),
        }
    } else if raw.is_some() {
        body.push_str(&notice("error", "Choose at least one event."));
    }
    Ok(ctx.page(Section::Insights, "Insights", &body))
}

#[derive(Deserialize)]
pub struct SaveForm {
    name: String,
    params: String,
}

pub async fn save(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
    Form(form): Form<SaveForm>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let name = match form.name.trim() {
        "" => "Untitled insight".to_string(),
        name => name.to_string(),
    };
    with_conn(&state.store, move |conn| {
        insights::save_insight(conn, id, &name, &form.params)
    })
    .await?;
    Ok(Redirect::to(&format!("/project/{project}/insights/saved")).into_response())
}

pub async fn saved(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let list = with_conn(&state.store, move |conn| insights::list_insights(conn, id)).await?;
    let p = id.0;
    let mut rows = String::new();
    for insight in &list {
        let builder: Builder = builder_from(&insight.params);
        let kind = KINDS
            .iter()
            .find(|(k, _)| *k == builder.kind)
            .map_or("Trends", |(_, l)| l);
        let _ = write!(
            rows,
            "<tr><td><a href=\"/project/{p}/insights?{params}\">{name}</a></td><td>{kind}</td><td>{events}</td><td>{created}</td>\
             <td><form method=\"post\" action=\"/project/{p}/insights/{id}/delete\"><button type=\"submit\" class=\"danger\" aria-label=\"Delete {name}\">Delete</button></form></td></tr>",
            params = esc(&insight.params),
            name = esc(&insight.name),
            events = esc(&builder.events().join(" → ")),
            created = when(insight.created_at),
            id = insight.id,
        );
    }
    let table = if rows.is_empty() {
        format!("<p class=\"muted\">No saved insight yet: <a href=\"/project/{p}/insights\">build one</a> and save it.</p>")
    } else {
        format!("<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Kind</th><th scope=\"col\">Events</th><th scope=\"col\">Saved</th><th scope=\"col\"><span class=\"sr\">Actions</span></th></tr></thead><tbody>{rows}</tbody></table>")
    };
    let body = format!(
        "<nav class=\"tabs\" aria-label=\"Insights\"><a href=\"/project/{p}/insights\">New insight</a>\
         <a href=\"/project/{p}/insights/saved\" aria-current=\"page\">Saved insights</a></nav>{table}"
    );
    Ok(ctx.page(Section::Insights, "Saved insights", &body))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((project, insight)): Path<(i64, i64)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    with_conn(&state.store, move |conn| {
        insights::delete_insight(conn, id, insight)
    })
    .await?;
    Ok(Redirect::to(&format!("/project/{project}/insights/saved")).into_response())
}

/// A saved insight's parameters read back into the builder, as the page
/// reads them from its query string.
fn builder_from(params: &str) -> Builder {
    format!("/?{params}")
        .parse::<axum::http::Uri>()
        .ok()
        .and_then(|uri| Query::<Builder>::try_from_uri(&uri).ok())
        .map(|Query(builder)| builder)
        .unwrap_or_default()
}
