//! The actors behind one number of an insight: its drill-down. Every
//! number of an insight's result links here with its cell (PostHog's
//! `InsightActorsQuery` or `FunnelsActorsQuery`, as JSON in `?cell=`), so
//! the page can be bookmarked. It lists the persons or groups through the
//! query API's code (`api::actors`), with what the insight knows of each:
//! searchable, sortable, filtered by one of their properties, with property
//! columns of choice, paged; `format=csv` downloads every row.

use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use cairn_query::actors::Fact;
use cairn_query::sql::Actor;

use super::charts::{duration, number};
use super::filters;
use super::html::{capitalised, fixable, pager, table, url_part, value_text, when, Section};
use super::insights::{breakdown_text, options};
use super::people::PAGE;
use super::{Context, SignedIn};
use crate::api::actors::{self, Column, Listing, Request};
use crate::api::export;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Links from an insight's numbers to the actors page of their cells.
pub struct Drill<'a> {
    pub project: i64,
    /// The insight's query JSON: the cells' `source`.
    pub query: &'a Value,
}

impl Drill<'_> {
    /// A trends, lifecycle, stickiness or retention cell at `coordinates`
    /// (`day`, `series`, `breakdown`, …; null ones are left out).
    pub fn insight(&self, coordinates: Value) -> String {
        self.href("InsightActorsQuery", self.query.clone(), coordinates)
    }

    /// Who reached funnel step `step` (1-based), or dropped off before
    /// step −`step`, in the funnel of `breakdown`.
    pub fn funnel(&self, step: i64, breakdown: &Value) -> String {
        self.href(
            "FunnelsActorsQuery",
            self.query.clone(),
            json!({"funnelStep": step, "funnelStepBreakdown": breakdown}),
        )
    }

    /// A paths node or edge: `keys` set `pathsFilter` keys (`pathStartKey`,
    /// `pathEndKey`) to nodes as the results name them (`2_/pricing`).
    pub fn path(&self, keys: &[(&str, &str)]) -> String {
        let mut source = self.query.clone();
        for (name, node) in keys {
            source["pathsFilter"][*name] = json!(node);
        }
        self.href("InsightActorsQuery", source, json!({}))
    }

    fn href(&self, kind: &str, source: Value, coordinates: Value) -> String {
        let mut cell = json!({"kind": kind, "source": source});
        if let Value::Object(fields) = coordinates {
            for (name, value) in fields.into_iter().filter(|(_, v)| !v.is_null()) {
                cell[name] = value;
            }
        }
        let cell = url_part(&cell.to_string());
        format!("/project/{}/insights/actors?cell={cell}", self.project)
    }
}

/// The page's parameters, as its links and its form carry them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Params {
    /// The cell's JSON.
    cell: String,
    search: String,
    /// An `orderBy` term: `event_count DESC`, `properties.plan`, …
    sort: String,
    /// Property keys to show as columns, comma-separated.
    columns: String,
    /// Whose property the filter reads (`person` or `group:<index>`): the
    /// form sets it to the kind of actors listed.
    filter_type: String,
    filter_key: String,
    filter_op: String,
    filter_value: String,
    offset: usize,
}

const NO_CELL: &str =
    "this page lists the actors behind a number of an insight: open it from an insight's result";

impl Params {
    /// What says which list this is (all but the page).
    fn fields(&self) -> [(&'static str, &str); 8] {
        [
            ("cell", &self.cell),
            ("search", &self.search),
            ("sort", &self.sort),
            ("columns", &self.columns),
            ("filter_type", &self.filter_type),
            ("filter_key", &self.filter_key),
            ("filter_op", &self.filter_op),
            ("filter_value", &self.filter_value),
        ]
    }

    /// This list's address, ready for `offset=…` or `format=csv` to follow.
    fn base(&self, project: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.fields() {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        format!("/project/{project}/insights/actors?{}&", query.finish())
    }

    fn property_columns(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in self.columns.split(',').map(str::trim) {
            if !key.is_empty() && !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
        keys
    }

    fn filter(&self) -> Option<Value> {
        let operator = match self.filter_op.as_str() {
            "" => "exact",
            op => op,
        };
        filters::property(
            &self.filter_type,
            &self.filter_key,
            operator,
            &self.filter_value,
        )
    }

    /// The query API's `ActorsQuery` node for this page.
    fn node(&self) -> ApiResult<Map<String, Value>> {
        let cell: Value =
            serde_json::from_str(&self.cell).map_err(|_| ApiError::field("cell", NO_CELL))?;
        let mut node = Map::new();
        node.insert("kind".into(), json!("ActorsQuery"));
        node.insert("source".into(), cell);
        if !self.search.trim().is_empty() {
            node.insert("search".into(), json!(self.search));
        }
        if !self.sort.is_empty() {
            node.insert("orderBy".into(), json!([self.sort]));
        }
        if let Some(filter) = self.filter() {
            node.insert("properties".into(), json!([filter]));
        }
        node.insert("limit".into(), json!(PAGE));
        node.insert("offset".into(), json!(self.offset));
        Ok(node)
    }
}

/// The listing the parameters ask for, with their property columns.
async fn list(state: &AppState, ctx: &Context, params: &Params) -> ApiResult<Listing> {
    let request = Request::parse(&params.node()?)?;
    let mut listing = actors::list(state, ctx.id(), request).await?;
    // After the insight's own columns, which are known once it has run.
    listing
        .columns
        .extend(params.property_columns().into_iter().map(Column::Property));
    Ok(listing)
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    Query(params): Query<Params>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let listing = list(&state, &ctx, &params).await;
    if export::wants_csv(&headers, raw.as_deref()) {
        return Ok(export::actors_csv(listing?));
    }
    // A cell or form field the insight cannot answer shows as a message
    // above the form, kept so it can be put right.
    let (title, form, shown) = match listing {
        Ok(listing) => (
            title(&ctx, &params, &listing),
            controls(&ctx, &params, Some(&listing)),
            shown(&ctx, &params, &listing)?,
        ),
        Err(error) => (
            "Actors".to_string(),
            controls(&ctx, &params, None),
            fixable(error)?,
        ),
    };
    let body = html! {
        p { a href={"/project/" (project) "/insights"} { "← Insights" } }
        @if !params.cell.is_empty() { (form) }
        (shown)
    };
    Ok(ctx.page(Section::Insights, &title, body))
}

/// "Organisations · dropped off before step 2 (activated)".
fn title(ctx: &Context, params: &Params, listing: &Listing) -> String {
    let cell: Value = serde_json::from_str(&params.cell).unwrap_or_default();
    let actors = capitalised(&noun(ctx, listing.set.actor, true));
    match describe(&cell).as_str() {
        "" => actors,
        what => format!("{actors} · {what}"),
    }
}

/// What a cell counts, in words.
fn describe(cell: &Value) -> String {
    let source = &cell["source"];
    let event = |series: u64| {
        let node = &source["series"][series as usize];
        let name = node["custom_name"].as_str().or(node["event"].as_str());
        name.unwrap_or("all events").to_string()
    };
    let series = cell["series"].as_u64().unwrap_or(0);
    let day = || match &cell["day"] {
        Value::Null => "the whole range".to_string(),
        day => value_text(day),
    };
    let mut parts = match source["kind"].as_str().unwrap_or_default() {
        "FunnelsQuery" => {
            let step = cell["funnelStep"].as_i64().unwrap_or(0);
            let name = event(step.unsigned_abs().saturating_sub(1));
            vec![match step {
                s if s < 0 => format!("dropped off before step {} ({name})", -s),
                s => format!("reached step {s} ({name})"),
            }]
        }
        "TrendsQuery" => vec![event(series), day()],
        "LifecycleQuery" => vec![value_text(&cell["status"]), day()],
        "StickinessQuery" => {
            let interval = source["interval"].as_str().unwrap_or("day");
            let count = cell["day"].as_u64().unwrap_or(0);
            let plural = if count == 1 { "" } else { "s" };
            vec![
                event(series),
                format!("active in {count} {interval}{plural}"),
            ]
        }
        "RetentionQuery" => {
            let period = source["retentionFilter"]["period"]
                .as_str()
                .unwrap_or("Day");
            let mut parts = vec![format!("{period} {} cohort", cell["interval"])];
            if let Some(column) = cell["column"].as_u64() {
                parts.push(format!("came back in {period} {column}"));
            }
            parts
        }
        "PathsQuery" => {
            let filter = &source["pathsFilter"];
            let key = |name: &str| filter[name].as_str().map(path_node);
            match (
                key("pathStartKey"),
                key("pathEndKey"),
                key("pathDropoffKey"),
            ) {
                (Some(from), Some(to), _) => vec![format!("{from} → {to}")],
                (None, Some(to), _) => vec![format!("reached {to}")],
                (Some(from), None, _) => vec![format!("went on from {from}")],
                (None, None, Some(node)) => vec![format!("stopped at {node}")],
                (None, None, None) => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    for breakdown in [&cell["breakdown"], &cell["funnelStepBreakdown"]] {
        if !breakdown.is_null() {
            parts.push(breakdown_text(breakdown));
        }
    }
    parts.join(" · ")
}

/// A paths node as the results name it (`2_/pricing`), in words.
fn path_node(key: &str) -> String {
    match key.split_once('_') {
        Some((step, name)) => format!("{name} (step {step})"),
        None => key.to_string(),
    }
}

/// "person" or "persons", or the group type's display name.
fn noun(ctx: &Context, actor: Actor, plural: bool) -> String {
    let (one, many) = match actor {
        Actor::Person => ("person".to_string(), "persons".to_string()),
        Actor::Group(index) => ctx
            .group_type(index)
            .map_or(("group".into(), "groups".into()), |t| {
                (t.singular(), t.plural())
            }),
    };
    if plural {
        many
    } else {
        one
    }
}

/// The search box, the sort, the property columns and the filter.
fn controls(ctx: &Context, params: &Params, listing: Option<&Listing>) -> Markup {
    // The filter reads the listed actors' own properties.
    let filter_type = match listing.map(|l| l.set.actor) {
        Some(Actor::Person) => "person".to_string(),
        Some(Actor::Group(index)) => format!("group:{index}"),
        None => params.filter_type.clone(),
    };
    let sorts = sort_options(listing, &params.sort);
    html! {
        form.card.builder method="get" action={"/project/" (ctx.id().0) "/insights/actors"} {
            input type="hidden" name="cell" value=(params.cell);
            input type="hidden" name="filter_type" value=(filter_type);
            div.fields {
                label for="search" { "Search" }
                input #search name="search" type="search" value=(params.search);
                label for="sort" { "Sort by" }
                select #sort name="sort" {
                    (options(sorts.iter().map(|(v, l)| (v.as_str(), l.clone())), &params.sort))
                }
                label for="columns" { "Property columns" }
                input #columns name="columns" value=(params.columns) placeholder="e.g. plan, industry";
                (filters::fields(&params.filter_key, &params.filter_op, &params.filter_value, "plan"))
            }
            button.primary type="submit" { "Apply" }
        }
    }
}

/// `(orderBy term, label)`: by name, and by each fact or property column
/// the list shows (the current choice is kept even if it is not one).
fn sort_options(listing: Option<&Listing>, current: &str) -> Vec<(String, String)> {
    let mut sorts = vec![
        (String::new(), "Default".to_string()),
        ("display_name ASC".into(), "Name, A to Z".into()),
        ("display_name DESC".into(), "Name, Z to A".into()),
    ];
    for column in listing.map_or(&[][..], |l| &l.columns) {
        let (term, label) = match column {
            // Appearances are a list: nothing to order by.
            Column::Fact(Fact::Appearances) => continue,
            Column::Fact(fact) => (fact.name().to_string(), fact_label(*fact).to_string()),
            Column::Property(key) => (format!("properties.{key}"), key.clone()),
            _ => continue,
        };
        sorts.push((format!("{term} DESC"), format!("{label}, descending")));
        sorts.push((format!("{term} ASC"), format!("{label}, ascending")));
    }
    if !sorts.iter().any(|(term, _)| term == current) {
        sorts.push((current.to_string(), current.to_string()));
    }
    sorts
}

/// The list: its size, the CSV link, a page of rows, the pager, and the
/// query that gives the same list through the API.
fn shown(ctx: &Context, params: &Params, listing: &Listing) -> ApiResult<Markup> {
    let p = ctx.id().0;
    let actor = listing.set.actor;
    let (rows, has_more, missing) = listing.page(params.offset, PAGE)?;
    let base = params.base(p);
    let headers: Vec<String> = listing
        .columns
        .iter()
        .map(|c| column_label(ctx, actor, c))
        .collect();
    let body = html! {
        @for row in &rows {
            tr {
                @for (column, value) in listing.columns.iter().zip(row) {
                    td { (cell(p, actor, column, value)) }
                }
            }
        }
    };
    let node = params.node().ok().map(Value::Object).unwrap_or_default();
    Ok(html! {
        p.muted {
            (number(listing.set.rows.len() as f64)) " " (noun(ctx, actor, true)) " behind this number"
            @if params.filter().is_some() { " pass the filter" }
            " · " a href={(base) "format=csv"} { "Download CSV" }
        }
        @if rows.is_empty() {
            p.muted { "No one matches." }
        } @else {
            (table(headers.iter().map(String::as_str), body))
        }
        @if missing > 0 {
            p.muted { (missing) " of these have no stored profile: events name them, but nothing more is known." }
        }
        (pager(&base, params.offset, PAGE, has_more))
        details {
            summary { "Query JSON (for " code { "POST /api/projects/" (p) "/query/" } ")" }
            pre { code { (serde_json::to_string_pretty(&node).unwrap_or_default()) } }
        }
    })
}

fn column_label(ctx: &Context, actor: Actor, column: &Column) -> String {
    match column {
        Column::Actor | Column::DisplayName => capitalised(&noun(ctx, actor, false)),
        Column::Id => "ID".into(),
        Column::CreatedAt => "First seen".into(),
        Column::Property(key) => key.clone(),
        Column::Fact(fact) => fact_label(*fact).into(),
    }
}

fn fact_label(fact: Fact) -> &'static str {
    match fact {
        Fact::EventCount => "Events",
        Fact::FirstEvent => "First event",
        Fact::LastEvent => "Last event",
        Fact::TimeToConvert => "Time to convert",
        Fact::Members => "Members",
        Fact::Appearances => "Came back",
    }
}

/// One cell of the table, as its kind of value reads best.
fn cell(project: i64, actor: Actor, column: &Column, value: &Value) -> Markup {
    let time = || {
        value
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .map(when)
    };
    match column {
        Column::Actor => actor_link(project, actor, value),
        Column::Fact(Fact::EventCount | Fact::Members) => {
            html! { (value.as_f64().map(number).unwrap_or_default()) }
        }
        Column::Fact(Fact::TimeToConvert) => {
            html! { (value.as_f64().map(duration).unwrap_or_default()) }
        }
        Column::Fact(Fact::FirstEvent | Fact::LastEvent) | Column::CreatedAt => {
            html! { (time().unwrap_or_default()) }
        }
        Column::Fact(Fact::Appearances) => appearances(value),
        _ if value.is_null() => html! {},
        _ => html! { (value_text(value)) },
    }
}

/// Whether a retention actor came back in each period: ✓ or ·.
fn appearances(value: &Value) -> Markup {
    let marks: Vec<&str> = value
        .as_array()
        .map(|periods| {
            periods
                .iter()
                .map(|p| {
                    if p.as_bool() == Some(true) {
                        "✓"
                    } else {
                        "·"
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    html! { span title="From period 0 on: ✓ came back" { (marks.join(" ")) } }
}

/// An actor's name, linking to its page when it has a stored profile (the
/// API's actor object then has `created_at`).
fn actor_link(project: i64, actor: Actor, object: &Value) -> Markup {
    let id = value_text(&object["id"]);
    let name = object["name"]
        .as_str()
        .or(object["display_name"].as_str())
        .unwrap_or(&id);
    let href = match actor {
        Actor::Person => format!("/project/{project}/persons/{}", url_part(&id)),
        Actor::Group(index) => format!("/project/{project}/groups/{index}/{}", url_part(&id)),
    };
    html! {
        @if object.get("created_at").is_some() { a href=(href) { (name) } } @else { (name) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_link_with_their_whole_cell_in_the_address() {
        let query = json!({"kind": "FunnelsQuery", "series": []});
        let drill = Drill {
            project: 3,
            query: &query,
        };
        let href = drill.funnel(-2, &Value::Null);
        let (path, cell) = href.split_once("?cell=").unwrap();
        assert_eq!(path, "/project/3/insights/actors");
        let cell: String = form_urlencoded::parse(format!("cell={cell}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        assert_eq!(
            serde_json::from_str::<Value>(&cell).unwrap(),
            json!({"kind": "FunnelsActorsQuery", "source": query, "funnelStep": -2})
        );
        let edge = drill.path(&[("pathStartKey", "1_a b"), ("pathEndKey", "2_c")]);
        assert!(!edge.contains(' ') && !edge.contains('"'), "{edge}");
    }

    #[test]
    fn a_hostile_name_is_text_and_its_key_stays_in_its_path_segment() {
        let company = json!({"id": "a/b c?d", "display_name": "<script>alert(1)</script>",
            "created_at": "2024-01-01T00:00:00Z"});
        let html = actor_link(1, Actor::Group(0), &company).into_string();
        assert_eq!(
            html,
            "<a href=\"/project/1/groups/0/a%2Fb%20c%3Fd\">&lt;script&gt;alert(1)&lt;/script&gt;</a>"
        );
        // No stored profile: the name alone, no link to a missing page.
        let missing = json!({"id": "u1", "distinct_ids": []});
        assert_eq!(actor_link(1, Actor::Person, &missing).into_string(), "u1");
    }

    #[test]
    fn cells_are_described_in_words() {
        let funnel = json!({"kind": "FunnelsActorsQuery", "funnelStep": -2,
            "source": {"kind": "FunnelsQuery", "series": [{"event": "signed up"}, {"event": "activated"}]}});
        assert_eq!(describe(&funnel), "dropped off before step 2 (activated)");
        let trends = json!({"kind": "InsightActorsQuery", "day": "2024-01-01", "breakdown": "pro",
            "source": {"kind": "TrendsQuery", "series": [{"event": "viewed"}]}});
        assert_eq!(describe(&trends), "viewed · 2024-01-01 · pro");
        let paths = json!({"kind": "InsightActorsQuery", "source": {"kind": "PathsQuery",
            "pathsFilter": {"pathStartKey": "1_/", "pathEndKey": "2_/pricing"}}});
        assert_eq!(describe(&paths), "/ (step 1) → /pricing (step 2)");
    }

    #[test]
    fn the_address_keeps_what_the_list_is_but_not_its_page() {
        let params = Params {
            cell: "{\"kind\":\"x\"}".into(),
            search: "a b".into(),
            offset: 50,
            ..Params::default()
        };
        assert_eq!(
            params.base(2),
            "/project/2/insights/actors?cell=%7B%22kind%22%3A%22x%22%7D&search=a+b&"
        );
        assert_eq!(Params::default().node().unwrap_err().to_string(), NO_CELL);
    }
}
