//! Insights: a builder form for trends, funnels, retention, lifecycle,
//! stickiness and paths, each counted by persons or any group type (by its
//! display name), over a date range, with an optional breakdown; the answer
//! comes from the same query engine as the API and is drawn as a chart with
//! its numbers. Insights are saved as the builder's parameters.

use std::sync::Arc;

use axum::extract::{Path, RawForm, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use cairn_query::breakdown::{NULL_LABEL, OTHER_LABEL};

use super::actors::Drill;
use super::charts::{self, number, Series, Step};
use super::csrf;
use super::filters;
use super::html::{capitalised, fixable, linked, notice, table, value_text, when, Section};
use super::{Context, SignedIn};
use crate::api::query::answer;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::storage::with_storage;

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
        filters::property(
            &self.filter_type,
            &self.filter_key,
            &self.filter_op,
            &self.filter_value,
        )
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

pub(super) fn options<'a>(
    items: impl IntoIterator<Item = (&'a str, String)>,
    current: &str,
) -> Markup {
    html! {
        @for (value, label) in items {
            option value=(value) selected[value == current] { (label) }
        }
    }
}

fn form(ctx: &Context, builder: &Builder, event_names: &[String]) -> Markup {
    let p = ctx.id().0;
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
    let mut property_types = vec![
        ("event".to_string(), "Event property".to_string()),
        ("person".to_string(), "Person property".to_string()),
    ];
    for t in &ctx.group_types {
        property_types.push((
            format!("group:{}", t.group_type_index),
            format!("{} property", capitalised(&t.singular())),
        ));
    }
    let property_types = |current: &str| {
        options(
            property_types.iter().map(|(v, l)| (v.as_str(), l.clone())),
            current,
        )
    };
    let event = |n: usize, value: &str, label: &str| {
        let id = format!("event{n}");
        html! {
            label for=(id) { (label) }
            input id=(id) name=(id) list="event-names" value=(value);
        }
    };
    html! {
        form.card.builder method="post" action={"/project/" (p) "/insights"} {
            (ctx.csrf_field())
            datalist #event-names {
                @for name in event_names { option value=(name); }
            }
            div.fields {
                label for="kind" { "Insight" }
                select #kind name="kind" {
                    (options(KINDS.iter().map(|(v, l)| (*v, l.to_string())), &builder.kind))
                }
                (event(1, &builder.event1, "Event (or step 1)"))
                (event(2, &builder.event2, "Second event (or step 2)"))
                (event(3, &builder.event3, "Third event (or step 3)"))
                label for="counted_by" { "Counted by" }
                select #counted_by name="counted_by" {
                    (options(counted.iter().map(|(v, l)| (v.as_str(), l.clone())), &builder.counted_by))
                }
                label for="date_from" { "Date range" }
                select #date_from name="date_from" {
                    (options(RANGES.iter().map(|(v, l)| (*v, l.to_string())), &builder.date_from))
                }
                label for="interval" { "Interval" }
                select #interval name="interval" {
                    (options(INTERVALS.iter().map(|i| (*i, capitalised(i))), &builder.interval))
                }
                label for="breakdown_type" { "Breakdown by" }
                select #breakdown_type name="breakdown_type" { (property_types(&builder.breakdown_type)) }
                label for="breakdown" { "Breakdown property" }
                input #breakdown name="breakdown" value=(builder.breakdown) placeholder="e.g. plan";
                label for="filter_type" { "Filter on" }
                select #filter_type name="filter_type" { (property_types(&builder.filter_type)) }
                (filters::fields(&builder.filter_key, &builder.filter_op, &builder.filter_value, "$browser"))
                label for="display" { "Trends display" }
                select #display name="display" {
                    (options(
                        [("line", "Line".to_string()), ("bar", "Bars".to_string()), ("number", "Total value".to_string())],
                        &builder.display,
                    ))
                }
            }
            p.muted {
                "Funnels use the events as steps; retention starts with the first event and returns with the second (or the first again)."
            }
            button.primary type="submit" { "Calculate" }
        }
    }
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
        value => format!("{event} · {}", breakdown_text(value)),
    }
}

/// A breakdown value as a reader sees it: a multi-property value's parts
/// joined, PostHog's "Other" and null labels in words.
pub(super) fn breakdown_text(value: &Value) -> String {
    let part = |v: &Value| match v.as_str() {
        Some(OTHER_LABEL) => "Other".to_string(),
        Some(NULL_LABEL) => "None".to_string(),
        _ => value_text(v),
    };
    match value {
        Value::Array(parts) => parts.iter().map(part).collect::<Vec<_>>().join(", "),
        value => part(value),
    }
}

/// A table of the numbers behind a series chart, each a link to its actors.
fn numbers_table(labels: &[String], series: &[Series]) -> Markup {
    html! {
        details {
            summary { "Numbers" }
            div.scroll {
                table {
                    thead {
                        tr {
                            th scope="col" { "Series" }
                            @for label in labels { th scope="col" { (label) } }
                        }
                    }
                    tbody {
                        @for s in series {
                            tr {
                                th scope="row" { (s.name) }
                                @for (i, v) in s.values.iter().enumerate() {
                                    td { (linked(s.link(i), html! { (number(*v)) })) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The answer's `results` as a chart (or numbers), every number linking
/// to its actors through `drill`.
fn render(builder: &Builder, results: &Value, drill: &Drill<'_>) -> Markup {
    let items = results.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return html! { p.muted { "No data in this range." } };
    }
    match builder.kind.as_str() {
        "funnels" => funnels(items, drill),
        "retention" => retention(items, &capitalised(&builder.interval), drill),
        "paths" => paths(items, drill),
        "trends" if builder.display == "number" => total_values(items, drill),
        _ => series_chart(builder, items, drill),
    }
}

/// The series a result item belongs to (`action.order`); formulas have
/// none, and their values are no counts of actors.
fn series_index(item: &Value) -> Option<u64> {
    item["action"]["order"].as_u64()
}

/// One funnel, or one per breakdown value (the first six).
fn funnels(items: &[Value], drill: &Drill<'_>) -> Markup {
    let funnels: Vec<&[Value]> = if items[0].is_array() {
        items
            .iter()
            .take(6)
            .map(|f| f.as_array().map(Vec::as_slice).unwrap_or(&[]))
            .collect()
    } else {
        vec![items]
    };
    html! {
        @for steps in funnels {
            @let breakdown = steps.first().map_or(&Value::Null, |s| &s["breakdown_value"]);
            @if !breakdown.is_null() { h3 { (breakdown_text(breakdown)) } }
            @let bars: Vec<Step> = steps
                .iter()
                .map(|s| Step {
                    name: s["name"].as_str().unwrap_or("").to_string(),
                    count: s["count"].as_f64().unwrap_or(0.0),
                    seconds: s["average_conversion_time"].as_f64(),
                })
                .collect();
            (charts::funnel(&bars, |step| drill.funnel(step, breakdown)))
        }
    }
}

fn retention(items: &[Value], period: &str, drill: &Drill<'_>) -> Markup {
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
            let label = r["label"].as_str().or(r["date"].as_str()).unwrap_or("");
            (label.to_string(), values)
        })
        .collect();
    charts::retention(&rows, period, |row, column| {
        drill.insight(json!({"interval": row, "column": column,
            "breakdown": items[row]["breakdown_value"]}))
    })
}

/// The busiest links between steps: each node links to who reached it,
/// each count to who went along the link.
fn paths(items: &[Value], drill: &Drill<'_>) -> Markup {
    let node = |key: &str| {
        html! { a href=(drill.path(&[("pathEndKey", key)])) { (key) } }
    };
    table(
        ["From", "To", "Count"],
        html! {
            @for link in items.iter().take(30) {
                @let (from, to) = (link["source"].as_str().unwrap_or(""), link["target"].as_str().unwrap_or(""));
                tr {
                    td { (node(from)) }
                    td { (node(to)) }
                    td {
                        a href=(drill.path(&[("pathStartKey", from), ("pathEndKey", to)])) {
                            (number(link["value"].as_f64().unwrap_or(0.0)))
                        }
                    }
                }
            }
        },
    )
}

/// Trends shown as one total per series: each links to its actors over
/// the whole range.
fn total_values(items: &[Value], drill: &Drill<'_>) -> Markup {
    html! {
        @for item in items {
            @let value = item["aggregated_value"].as_f64().or(item["count"].as_f64()).unwrap_or(0.0);
            @let href = series_index(item)
                .map(|series| drill.insight(json!({"series": series, "breakdown": item["breakdown_value"]})));
            p.bold-number {
                (linked(href.as_deref(), html! { strong { (number(value)) } }))
                " " (series_label(item))
            }
        }
    }
}

/// Trends, lifecycle and stickiness: series over the insight's `days`,
/// each point linking to its actors (a lifecycle bar to its status's).
fn series_chart(builder: &Builder, items: &[Value], drill: &Drill<'_>) -> Markup {
    let lifecycle = builder.kind == "lifecycle";
    let series: Vec<Series> = items
        .iter()
        .map(|item| {
            let days = item["days"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let links = match (lifecycle, series_index(item)) {
                (true, _) => days
                    .iter()
                    .map(|day| drill.insight(json!({"day": day, "status": item["status"]})))
                    .collect(),
                (false, Some(series)) => days
                    .iter()
                    .map(|day| {
                        drill.insight(json!({"day": day, "series": series,
                            "breakdown": item["breakdown_value"]}))
                    })
                    .collect(),
                (false, None) => Vec::new(),
            };
            Series {
                name: match lifecycle {
                    true => item["status"].as_str().unwrap_or("").to_string(),
                    false => series_label(item),
                },
                values: floats(&item["data"]),
                links,
            }
        })
        .collect();
    let labels = strings(&items[0]["labels"]);
    let chart = match builder.kind.as_str() {
        "lifecycle" => charts::stacked_chart("Lifecycle", &labels, &series),
        "stickiness" => charts::series_chart("Stickiness", &labels, &series, true),
        _ => charts::series_chart("Trends", &labels, &series, builder.display == "bar"),
    };
    html! { (chart) (numbers_table(&labels, &series)) }
}

/// The builder, filled in from the query string (a saved insight's link
/// has its parameters there), without running it: queries can be costly,
/// so they run only on the form's explicit POST.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    RawQuery(raw): RawQuery,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let builder = builder_from(raw.as_deref().unwrap_or(""));
    let note = html! {
        @if raw.is_some() { p.muted { "Press Calculate to see the result." } }
    };
    show(&state, ctx, &builder, note).await
}

/// Runs the builder the form posted and shows the result below it.
pub async fn run(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
    RawForm(form): RawForm,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let params = builder_params(&form);
    let builder = builder_from(&params);
    let has_events = !builder.events().is_empty() || builder.kind == "paths";
    if !has_events {
        let result = notice("error", "Choose at least one event.");
        return show(&state, ctx, &builder, result).await;
    }
    let p = ctx.id().0;
    let query = builder.query();
    let drill = Drill {
        project: p,
        query: &query,
    };
    let result = match answer(&state, ctx.id(), query.clone()).await {
        Ok(result) => html! {
            section.card.result {
                h2 { "Result" }
                (render(&builder, &result["results"], &drill))
                details {
                    summary { "Query JSON (for " code { "POST /api/projects/" (p) "/query/" } ")" }
                    pre { code { (serde_json::to_string_pretty(&query).unwrap_or_default()) } }
                }
                form.inline method="post" action={"/project/" (p) "/insights/save"} {
                    (ctx.csrf_field())
                    input type="hidden" name="params" value=(params);
                    label for="name" { "Save as" }
                    input #name name="name" required placeholder="e.g. Weekly active companies";
                    button type="submit" { "Save insight" }
                }
            }
        },
        Err(error) => fixable(error)?,
    };
    show(&state, ctx, &builder, result).await
}

/// The insights page: tabs, the builder, and what goes below it.
async fn show(
    state: &AppState,
    ctx: Context,
    builder: &Builder,
    below: Markup,
) -> ApiResult<Response> {
    let id = ctx.id();
    let event_names = with_storage(&state.storage, move |store| {
        store.entities.event_names(id, 200)
    })
    .await?;
    let p = id.0;
    let body = html! {
        nav.tabs aria-label="Insights" {
            a href={"/project/" (p) "/insights"} aria-current="page" { "New insight" }
            a href={"/project/" (p) "/insights/saved"} { "Saved insights" }
        }
        (form(&ctx, builder, &event_names))
        (below)
    };
    Ok(ctx.page(Section::Insights, "Insights", body))
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
    with_storage(&state.storage, move |store| {
        store.catalog.save_insight(id, &name, &form.params)
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
    let list = with_storage(&state.storage, move |store| store.catalog.list_insights(id)).await?;
    let p = id.0;
    let rows = html! {
        @for insight in &list {
            @let builder = builder_from(&insight.params);
            @let kind = KINDS.iter().find(|(k, _)| *k == builder.kind).map_or("Trends", |(_, l)| l);
            tr {
                td { a href={"/project/" (p) "/insights?" (insight.params)} { (insight.name) } }
                td { (kind) }
                td { (builder.events().join(" → ")) }
                td { (when(insight.created_at)) }
                td {
                    form method="post" action={"/project/" (p) "/insights/" (insight.id) "/delete"} {
                        (ctx.csrf_field())
                        button.danger type="submit" aria-label={"Delete " (insight.name)} { "Delete" }
                    }
                }
            }
        }
    };
    let body = html! {
        nav.tabs aria-label="Insights" {
            a href={"/project/" (p) "/insights"} { "New insight" }
            a href={"/project/" (p) "/insights/saved"} aria-current="page" { "Saved insights" }
        }
        @if list.is_empty() {
            p.muted {
                "No saved insight yet: " a href={"/project/" (p) "/insights"} { "build one" } " and save it."
            }
        } @else {
            table {
                thead {
                    tr {
                        @for column in ["Name", "Kind", "Events", "Saved"] { th scope="col" { (column) } }
                        th scope="col" { span.sr { "Actions" } }
                    }
                }
                tbody { (rows) }
            }
        }
    };
    Ok(ctx.page(Section::Insights, "Saved insights", body))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((project, insight)): Path<(i64, i64)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    with_storage(&state.storage, move |store| {
        store.catalog.delete_insight(id, insight)
    })
    .await?;
    Ok(Redirect::to(&format!("/project/{project}/insights/saved")).into_response())
}

/// The builder's parameters from a posted form, as a query string (what
/// a saved insight keeps): every field but the CSRF token.
fn builder_params(form: &[u8]) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(form) {
        if name != csrf::FIELD {
            params.append_pair(&name, &value);
        }
    }
    params.finish()
}

/// A saved insight's parameters (or the page's query string) read back
/// into the builder; what cannot be read falls back to the defaults.
fn builder_from(params: &str) -> Builder {
    serde_urlencoded::from_str(params).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdown_rows_read_as_words_in_series_names() {
        let formula_other = json!({"action": null, "label": "Formula (A + B)",
            "breakdown_value": [OTHER_LABEL, OTHER_LABEL]});
        assert_eq!(
            series_label(&formula_other),
            "Formula (A + B) · Other, Other"
        );
        let pair = json!({"action": {"name": "viewed"}, "label": "viewed - Chrome::Mac",
            "breakdown_value": ["Chrome", "Mac"]});
        assert_eq!(series_label(&pair), "viewed · Chrome, Mac");
        let single = json!({"action": {"name": "viewed"}, "breakdown_value": NULL_LABEL});
        assert_eq!(series_label(&single), "viewed · None");
    }
}
