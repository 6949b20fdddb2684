//! Feature flags: the list with each flag's status, and a form to create
//! or edit one (key, description, "Match by" persons or a group type,
//! release conditions of property filters and rollout, variants, payloads),
//! with a "test this flag" box that evaluates it as `/flags` would.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use cairn_store::catalog::StoredFlag;

use super::filters;
use super::html::{capitalised, notice, table, value_text, Section};
use super::{Context, SignedIn};
use crate::api::feature_flags::{create_flag, find, update_flag};
use crate::error::{ApiError, ApiResult};
use crate::flags::evaluate::evaluate_for;
use crate::state::AppState;
use crate::storage::with_storage;

const CONDITIONS: usize = 3;
const FILTERS: usize = 2;
const VARIANTS: usize = 4;

/// A property filter as the form shows it: key, operator, value.
type FilterRow = (String, String, String);

/// A flag as the form shows it.
#[derive(Default)]
struct Draft {
    key: String,
    name: String,
    active: bool,
    /// `None` for persons, else a group type index.
    match_by: Option<u8>,
    /// Per condition set: filters (key, operator, value) and rollout %.
    conditions: Vec<(Vec<FilterRow>, String)>,
    /// Key, rollout %, payload.
    variants: Vec<(String, String, String)>,
    payload: String,
}

impl Draft {
    fn new_flag() -> Self {
        Self {
            active: true,
            conditions: vec![(Vec::new(), "100".into())],
            ..Self::default()
        }
    }

    fn from_stored(flag: &StoredFlag) -> Self {
        let filters = &flag.filters;
        let payloads = &filters["payloads"];
        let conditions = filters["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|set| {
                let filters = set["properties"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let value = match &f["value"] {
                            Value::Array(items) => {
                                items.iter().map(value_text).collect::<Vec<_>>().join(", ")
                            }
                            Value::Null => String::new(),
                            other => value_text(other),
                        };
                        (
                            f["key"].as_str().unwrap_or("").to_string(),
                            f["operator"].as_str().unwrap_or("exact").to_string(),
                            value,
                        )
                    })
                    .collect();
                let rollout = set["rollout_percentage"]
                    .as_f64()
                    .map_or("100".to_string(), |r| r.to_string());
                (filters, rollout)
            })
            .collect();
        let variants = filters["multivariate"]["variants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let key = v["key"].as_str().unwrap_or("").to_string();
                let payload = payloads.get(&key).map(value_text).unwrap_or_default();
                (
                    key,
                    v["rollout_percentage"].as_f64().unwrap_or(0.0).to_string(),
                    payload,
                )
            })
            .collect();
        Self {
            key: flag.key.clone(),
            name: flag.name.clone(),
            active: flag.active,
            match_by: filters["aggregation_group_type_index"]
                .as_u64()
                .map(|i| i as u8),
            conditions,
            variants,
            payload: payloads.get("true").map(value_text).unwrap_or_default(),
        }
    }

    fn from_form(form: &HashMap<String, String>) -> Self {
        let field = |name: String| {
            form.get(&name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let conditions = (0..CONDITIONS)
            .map(|c| {
                let filters = (0..FILTERS)
                    .map(|f| {
                        (
                            field(format!("c{c}_f{f}_key")),
                            field(format!("c{c}_f{f}_op")),
                            field(format!("c{c}_f{f}_value")),
                        )
                    })
                    .filter(|(key, _, _)| !key.is_empty())
                    .collect::<Vec<_>>();
                (filters, field(format!("c{c}_rollout")))
            })
            .filter(|(filters, rollout)| !filters.is_empty() || !rollout.is_empty())
            .collect();
        let variants = (0..VARIANTS)
            .map(|v| {
                (
                    field(format!("v{v}_key")),
                    field(format!("v{v}_pct")),
                    field(format!("v{v}_payload")),
                )
            })
            .filter(|(key, _, _)| !key.is_empty())
            .collect();
        Self {
            key: field("key".into()),
            name: field("name".into()),
            active: form.contains_key("active"),
            match_by: field("match_by".into()).parse().ok(),
            conditions,
            variants,
            payload: field("payload".into()),
        }
    }

    /// PostHog's fields for the flags API.
    fn changes(&self) -> Map<String, Value> {
        let typed = |key: &str, op: &str, value: &str| {
            let mut filter = json!({"key": key, "operator": op});
            match self.match_by {
                Some(index) => {
                    filter["type"] = json!("group");
                    filter["group_type_index"] = json!(index);
                }
                None => filter["type"] = json!("person"),
            }
            if let Some(value) = filters::value(op, value) {
                filter["value"] = value;
            }
            filter
        };
        let groups: Vec<Value> = self
            .conditions
            .iter()
            .map(|(filters, rollout)| {
                let properties: Vec<Value> =
                    filters.iter().map(|(k, o, v)| typed(k, o, v)).collect();
                let rollout = rollout
                    .parse::<f64>()
                    .map(Value::from)
                    .unwrap_or(Value::Null);
                json!({"properties": properties, "rollout_percentage": rollout})
            })
            .collect();
        let mut payloads = Map::new();
        if !self.payload.is_empty() {
            payloads.insert("true".into(), Value::String(self.payload.clone()));
        }
        let variants: Vec<Value> = self
            .variants
            .iter()
            .map(|(key, pct, payload)| {
                if !payload.is_empty() {
                    payloads.insert(key.clone(), Value::String(payload.clone()));
                }
                json!({"key": key, "rollout_percentage": pct.parse::<f64>().unwrap_or(0.0)})
            })
            .collect();
        let mut filters = json!({"groups": groups, "payloads": payloads,
            "aggregation_group_type_index": self.match_by});
        if !variants.is_empty() {
            filters["multivariate"] = json!({"variants": variants});
        }
        let mut changes = Map::new();
        changes.insert("key".into(), json!(self.key));
        changes.insert("name".into(), json!(self.name));
        changes.insert("active".into(), json!(self.active));
        changes.insert("filters".into(), filters);
        changes
    }
}

/// A `<select>`; `label` is for screen readers (None when a visible label exists).
fn select(name: &str, label: Option<&str>, options: &[(String, String)], current: &str) -> Markup {
    html! {
        @if let Some(label) = label { label.sr for=(name) { (label) } }
        select id=(name) name=(name) {
            @for (value, text) in options {
                option value=(value) selected[value == current] { (text) }
            }
        }
    }
}

fn input(name: &str, label: &str, value: &str, placeholder: &str) -> Markup {
    html! {
        label.sr for=(name) { (label) }
        input id=(name) name=(name) value=(value) placeholder=(placeholder);
    }
}

fn condition(c: usize, (rules, rollout): &(Vec<(String, String, String)>, String)) -> Markup {
    let operators = filters::operator_options();
    let n = c + 1;
    let rollout_id = format!("c{c}_rollout");
    html! {
        fieldset.condition {
            legend { "Condition set " (n) }
            @for f in 0..FILTERS {
                @let (key, op, value) = rules.get(f).cloned().unwrap_or_default();
                div.filter {
                    (input(&format!("c{c}_f{f}_key"), &format!("Condition {n} property {}", f + 1), &key, "property, e.g. plan"))
                    (select(
                        &format!("c{c}_f{f}_op"),
                        Some(&format!("Condition {n} operator {}", f + 1)),
                        &operators,
                        if op.is_empty() { "exact" } else { &op },
                    ))
                    (input(&format!("c{c}_f{f}_value"), &format!("Condition {n} value {}", f + 1), &value, "value"))
                }
            }
            label for=(rollout_id) { "Roll out to" }
            " "
            input.pct id=(rollout_id) name=(rollout_id) value=(rollout) inputmode="decimal";
            " % of those matching"
        }
    }
}

fn form(ctx: &Context, draft: &Draft, action: &str, error: Option<&str>) -> Markup {
    let mut match_by = vec![("".to_string(), "Persons".to_string())];
    for t in &ctx.group_types {
        match_by.push((t.group_type_index.to_string(), capitalised(&t.plural())));
    }
    let no_condition = (Vec::new(), String::new());
    html! {
        @if let Some(error) = error { (notice("error", error)) }
        form.card.flag-form method="post" action=(action) {
            (ctx.csrf_field())
            div.grid {
                label for="key" { "Key" }
                input #key name="key" required value=(draft.key) placeholder="new-dashboard";
                label for="name" { "Description" }
                input #name name="name" value=(draft.name);
                label for="match_by" { "Match by" }
                (select("match_by", None, &match_by, &draft.match_by.map(|i| i.to_string()).unwrap_or_default()))
                label for="active" { "Enabled" }
                input.check #active name="active" type="checkbox" checked[draft.active];
            }
            h2 { "Release conditions" }
            p.muted {
                "A set matches when all its filters hold (on the properties of the person, or of the group it matches by); the first matching set decides. Empty sets are ignored."
            }
            @for c in 0..CONDITIONS {
                (condition(c, draft.conditions.get(c).unwrap_or(&no_condition)))
            }
            h2 { "Variants " span.muted { "(optional; shares add up to 100)" } }
            @for v in 0..VARIANTS {
                @let (key, pct, payload) = draft.variants.get(v).cloned().unwrap_or_default();
                div.filter {
                    (input(&format!("v{v}_key"), &format!("Variant {} key", v + 1), &key, "variant key"))
                    (input(&format!("v{v}_pct"), &format!("Variant {} share", v + 1), &pct, "% share"))
                    (input(&format!("v{v}_payload"), &format!("Variant {} payload", v + 1), &payload, "payload (JSON)"))
                }
            }
            h2 { "Payload" }
            label for="payload" { "Payload when enabled (without variants)" }
            input #payload name="payload" value=(draft.payload) placeholder=r#"{"layout": "grid"}"#;
            p { button.primary type="submit" { "Save flag" } }
        }
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let flags = with_storage(&state.storage, move |store| store.catalog.list_flags(id)).await?;
    let p = id.0;
    let rows = html! {
        @for flag in &flags {
            @let draft = Draft::from_stored(flag);
            tr {
                td { a href={"/project/" (p) "/feature_flags/" (flag.id)} { (flag.key) } }
                td { (flag.name) }
                td {
                    @match draft.match_by.and_then(|i| ctx.group_type(i)) {
                        Some(t) => (capitalised(&t.plural())),
                        None => "Persons",
                    }
                }
                td { (draft.conditions.len()) }
                td {
                    @if flag.active {
                        span.status.on { "Enabled" }
                    } @else {
                        span.status.off { "Disabled" }
                    }
                }
            }
        }
    };
    let body = html! {
        p { a.button.primary href={"/project/" (p) "/feature_flags/new"} { "New feature flag" } }
        @if flags.is_empty() {
            p.muted { "No feature flag yet." }
        } @else {
            (table(["Key", "Description", "Match by", "Condition sets", "Status"], rows))
        }
    };
    Ok(ctx.page(Section::Flags, "Feature flags", body))
}

pub async fn new(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let action = format!("/project/{project}/feature_flags/new");
    let body = form(&ctx, &Draft::new_flag(), &action, None);
    Ok(ctx.page(Section::Flags, "New feature flag", body))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
    Form(fields): Form<HashMap<String, String>>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let draft = Draft::from_form(&fields);
    match create_flag(&state, ctx.id(), &draft.changes()).await {
        Ok(flag) => Ok(Redirect::to(&format!(
            "/project/{project}/feature_flags/{}?saved=1",
            flag.id
        ))
        .into_response()),
        Err(error @ (ApiError::InvalidField { .. } | ApiError::BadRequest(_))) => {
            let action = format!("/project/{project}/feature_flags/new");
            let body = form(&ctx, &draft, &action, Some(&error.to_string()));
            Ok(ctx.page(Section::Flags, "New feature flag", body))
        }
        Err(error) => Err(error),
    }
}

/// What the "test this flag" box asks for.
#[derive(serde::Deserialize, Default)]
pub struct Test {
    #[serde(default)]
    distinct_id: String,
    #[serde(default)]
    group_key: String,
    #[serde(default)]
    saved: Option<String>,
}

async fn edit_page(
    state: &AppState,
    ctx: Context,
    flag: &StoredFlag,
    draft: &Draft,
    error: Option<&str>,
    test: &Test,
) -> ApiResult<Response> {
    let p = ctx.id().0;
    let action = format!("/project/{p}/feature_flags/{}", flag.id);
    let group_type = draft.match_by.and_then(|i| ctx.group_type(i));
    let result = if test.distinct_id.trim().is_empty() {
        None
    } else {
        let mut groups = BTreeMap::new();
        if let (Some(t), false) = (group_type, test.group_key.trim().is_empty()) {
            groups.insert(t.group_type.clone(), test.group_key.trim().to_string());
        }
        Some(evaluate_for(state, ctx.id(), &flag.key, test.distinct_id.trim(), groups).await?)
    };
    let body = html! {
        @if test.saved.is_some() { (notice("note", "Saved.")) }
        (form(&ctx, draft, &action, error))
        section.card {
            h2 { "Test this flag" }
            p.muted {
                "Evaluated as " code { "/flags" } " would, with the stored properties of the person"
                @if group_type.is_some() { " and the group" }
                "."
            }
            form.inline method="get" action=(action) {
                label for="distinct_id" { "Distinct ID" }
                input #distinct_id name="distinct_id" value=(test.distinct_id) required;
                @if let Some(t) = group_type {
                    label for="group_key" { (capitalised(&t.singular())) " key" }
                    input #group_key name="group_key" value=(test.group_key);
                }
                button type="submit" { "Test" }
            }
            @match result {
                Some(Some(e)) => dl.facts.test-result {
                    dt { "Value" }
                    dd { strong { (value_text(&e.value())) } }
                    dt { "Why" }
                    dd { (e.description()) }
                    dt { "Payload" }
                    dd {
                        @match &e.payload {
                            Some(payload) => code { (value_text(payload)) },
                            None => "none",
                        }
                    }
                },
                Some(None) => (notice("error", "The flag is disabled or deleted: /flags does not return it.")),
                None => {},
            }
        }
    };
    Ok(ctx.page(Section::Flags, &format!("Feature flag {}", flag.key), body))
}

pub async fn edit(
    State(state): State<Arc<AppState>>,
    Path((project, id)): Path<(i64, i64)>,
    Query(test): Query<Test>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let flag = find(&state, ctx.id(), id).await?;
    let draft = Draft::from_stored(&flag);
    edit_page(&state, ctx, &flag, &draft, None, &test).await
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Path((project, id)): Path<(i64, i64)>,
    user: SignedIn,
    Form(fields): Form<HashMap<String, String>>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let draft = Draft::from_form(&fields);
    match update_flag(&state, ctx.id(), id, &draft.changes()).await {
        Ok(_) => Ok(
            Redirect::to(&format!("/project/{project}/feature_flags/{id}?saved=1")).into_response(),
        ),
        Err(error @ (ApiError::InvalidField { .. } | ApiError::BadRequest(_))) => {
            let flag = find(&state, ctx.id(), id).await?;
            edit_page(
                &state,
                ctx,
                &flag,
                &draft,
                Some(&error.to_string()),
                &Test::default(),
            )
            .await
        }
        Err(error) => Err(error),
    }
}
