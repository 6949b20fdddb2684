//! Persons & Groups: a tab for persons and one per group type (by its
//! plural display name), each a searchable, paged table; a person's or a
//! group's page shows its properties and its latest events.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use cairn_core::ProjectId;
use cairn_store::read::{self, EventFilter, GroupFilter, PersonFilter, StoredEvent};

use super::html::{
    capitalised, esc, origin, pager, properties_table, search_form, url_part, when, Section,
};
use super::{Context, SignedIn};
use crate::api::with_conn;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const PAGE: usize = 50;
const RECENT_EVENTS: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    offset: usize,
}

/// The tab row: Persons, then each group type.
fn tabs(ctx: &Context, current: Option<u8>) -> String {
    let p = ctx.id().0;
    let mut tabs = String::new();
    let tab = |href: String, label: &str, active: bool| {
        let current = if active { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"{href}\"{current}>{}</a>", esc(label))
    };
    tabs.push_str(&tab(
        format!("/project/{p}/persons"),
        "Persons",
        current.is_none(),
    ));
    for group_type in &ctx.group_types {
        let index = group_type.group_type_index;
        tabs.push_str(&tab(
            format!("/project/{p}/groups/{index}"),
            &capitalised(&group_type.plural()),
            current == Some(index),
        ));
    }
    format!("<nav class=\"tabs\" aria-label=\"Persons and group types\">{tabs}</nav>")
}

/// A tab of Persons & Groups: the tabs, a search box, the table (or
/// `empty`), and the pager.
#[allow(clippy::too_many_arguments)]
fn listing(
    ctx: &Context,
    tab: Option<u8>,
    action: &str,
    search_label: &str,
    search: &str,
    columns: [&str; 3],
    rows: &str,
    empty: &str,
    (offset, has_more): (usize, bool),
) -> String {
    let mut body = tabs(ctx, tab);
    body.push_str(&search_form(action, search_label, search));
    if rows.is_empty() {
        body.push_str(empty);
    } else {
        let head: String = columns
            .iter()
            .map(|c| format!("<th scope=\"col\">{}</th>", esc(c)))
            .collect();
        let _ = write!(
            body,
            "<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        );
    }
    body.push_str(&pager(
        &format!("{action}?search={}&", url_part(search)),
        offset,
        PAGE,
        has_more,
    ));
    body
}

/// A person's or a group's page: facts, then properties beside events.
fn detail(back: &str, facts: &[(&str, String)], properties: &str, events: &str) -> String {
    let facts: String = facts
        .iter()
        .map(|(name, value)| format!("<dt>{name}</dt><dd>{value}</dd>"))
        .collect();
    format!(
        "<p>{back}</p><dl class=\"facts\">{facts}</dl>\
         <div class=\"columns\"><section><h2>Properties</h2>{properties}</section>\
         <section><h2>Latest events</h2>{events}</section></div>"
    )
}

/// The getting-started box an empty project shows.
fn first_event_help(ctx: &Context, origin: &str) -> String {
    format!(
        "<section class=\"card\"><h2>Send your first event</h2>\
         <p>Nothing has arrived in this project yet. Point any PostHog SDK at this server with the project API key \
         <code>{key}</code>, or try it with curl:</p>\
         <pre><code>curl -X POST {origin}/batch/ -H 'Content-Type: application/json' -d '{{\"api_key\": \"{key}\",\n  \"batch\": [{{\"event\": \"signed_up\", \"distinct_id\": \"alice\",\n    \"properties\": {{\"$groups\": {{\"company\": \"acme\"}}}}}}]}}'</code></pre>\
         <p>Or fill it with a realistic B2B data set: stop the server and run <code>cairn demo</code>. \
         <a href=\"/project/{p}/settings\">Settings</a> has snippets for posthog-js, posthog-python and cairn-sdk.</p></section>",
        key = esc(&ctx.project.api_token),
        p = ctx.id().0
    )
}

pub async fn persons(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    Query(query): Query<ListQuery>,
    headers: axum::http::HeaderMap,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let search = query.search.trim().to_string();
    let offset = query.offset;
    let term = search.clone();
    let persons = with_conn(&state.store, move |conn| {
        let filter = PersonFilter {
            search: (!term.is_empty()).then_some(term.as_str()),
            distinct_id: None,
            id: None,
            offset,
            limit: PAGE + 1,
        };
        read::list_persons(conn, id, &filter)
    })
    .await?;
    let has_more = persons.len() > PAGE;
    let mut rows = String::new();
    for person in persons.iter().take(PAGE) {
        let more = person.distinct_ids.len().saturating_sub(1);
        let _ = write!(
            rows,
            "<tr><td><a href=\"/project/{p}/persons/{id}\">{name}</a></td><td><code>{first}</code>{more}</td><td>{created}</td></tr>",
            p = id.0,
            id = person.id,
            name = esc(&person.display_name()),
            first = esc(person.distinct_ids.first().map_or("", String::as_str)),
            more = if more > 0 { format!(" <span class=\"muted\">+{more}</span>") } else { String::new() },
            created = when(person.created_at),
        );
    }
    let p = id.0;
    let empty = if search.is_empty() && offset == 0 {
        first_event_help(&ctx, &origin(&headers))
    } else {
        "<p class=\"muted\">No person matches.</p>".to_string()
    };
    let body = listing(
        &ctx,
        None,
        &format!("/project/{p}/persons"),
        "Search persons",
        &search,
        ["Person", "Distinct ID", "First seen"],
        &rows,
        &empty,
        (offset, has_more),
    );
    Ok(ctx.page(Section::People, "Persons & Groups", &body))
}

/// The events table every page with events shows.
pub(super) fn events_table(project: ProjectId, events: &[StoredEvent]) -> String {
    if events.is_empty() {
        return "<p class=\"muted\">No events yet.</p>".into();
    }
    let mut rows = String::new();
    for event in events {
        let who = match event.person_id {
            Some(person) => format!(
                "<a href=\"/project/{}/persons/{person}\">{}</a>",
                project.0,
                esc(&event.distinct_id)
            ),
            None => esc(&event.distinct_id),
        };
        let url = event
            .properties
            .get("$current_url")
            .and_then(|u| u.as_str())
            .unwrap_or("");
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{who}</td><td class=\"clip\">{}</td><td>{}</td></tr>",
            esc(&event.event),
            esc(url),
            when(event.timestamp)
        );
    }
    format!(
        "<table><thead><tr><th scope=\"col\">Event</th><th scope=\"col\">Person</th><th scope=\"col\">URL</th><th scope=\"col\">Time</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

pub async fn person(
    State(state): State<Arc<AppState>>,
    Path((project, person_id)): Path<(i64, Uuid)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let group_columns = state.store.group_columns();
    let (person, events) = with_conn(&state.store, move |conn| {
        let filter = PersonFilter {
            search: None,
            distinct_id: None,
            id: Some(person_id),
            offset: 0,
            limit: 1,
        };
        let person = read::list_persons(conn, id, &filter)?.pop();
        let events = EventFilter {
            person_id: Some(person_id),
            limit: RECENT_EVENTS,
            ..EventFilter::default()
        };
        Ok((person, read::list_events(conn, id, group_columns, &events)?))
    })
    .await?;
    let person =
        person.ok_or_else(|| ApiError::NotFound(format!("there is no person {person_id}")))?;
    let ids: Vec<String> = person
        .distinct_ids
        .iter()
        .map(|d| format!("<code>{}</code>", esc(d)))
        .collect();
    let body = detail(
        &format!("<a href=\"/project/{}/persons\">← Persons</a>", id.0),
        &[
            ("Distinct IDs", ids.join(" ")),
            ("First seen", when(person.created_at)),
            (
                "Identified",
                (if person.is_identified { "yes" } else { "no" }).to_string(),
            ),
        ],
        &properties_table(&person.properties),
        &events_table(id, &events),
    );
    Ok(ctx.page(Section::People, &person.display_name(), &body))
}

pub async fn groups(
    State(state): State<Arc<AppState>>,
    Path((project, index)): Path<(i64, u8)>,
    Query(query): Query<ListQuery>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let group_type = ctx
        .group_type(index)
        .ok_or_else(|| ApiError::NotFound(format!("there is no group type {index}")))?
        .clone();
    let id = ctx.id();
    let search = query.search.trim().to_string();
    let offset = query.offset;
    let term = search.clone();
    let groups = with_conn(&state.store, move |conn| {
        let filter = GroupFilter {
            group_type_index: index,
            search: (!term.is_empty()).then_some(term.as_str()),
            key_contains: None,
            offset,
            limit: PAGE + 1,
        };
        read::list_groups(conn, id, &filter)
    })
    .await?;
    let has_more = groups.len() > PAGE;
    let p = id.0;
    let mut rows = String::new();
    for group in groups.iter().take(PAGE) {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/project/{p}/groups/{index}/{key_url}\">{name}</a></td><td><code>{key}</code></td><td>{created}</td></tr>",
            key_url = url_part(&group.group_key),
            name = esc(&group.display_name()),
            key = esc(&group.group_key),
            created = when(group.created_at),
        );
    }
    let plural = capitalised(&group_type.plural());
    let body = listing(
        &ctx,
        Some(index),
        &format!("/project/{p}/groups/{index}"),
        &format!("Search {}", group_type.plural()),
        &search,
        [&capitalised(&group_type.singular()), "Key", "First seen"],
        &rows,
        "<p class=\"muted\">No group matches.</p>",
        (offset, has_more),
    );
    Ok(ctx.page(
        Section::People,
        &format!("Persons & Groups · {plural}"),
        &body,
    ))
}

pub async fn group(
    State(state): State<Arc<AppState>>,
    Path((project, index, key)): Path<(i64, u8, String)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let group_type = ctx
        .group_type(index)
        .ok_or_else(|| ApiError::NotFound(format!("there is no group type {index}")))?
        .clone();
    let id = ctx.id();
    let group_columns = state.store.group_columns();
    let lookup = key.clone();
    let (group, events) = with_conn(&state.store, move |conn| {
        let group = read::find_group(conn, id, index, &lookup)?;
        let events = EventFilter {
            group: Some((index, lookup.as_str())),
            limit: RECENT_EVENTS,
            ..EventFilter::default()
        };
        Ok((group, read::list_events(conn, id, group_columns, &events)?))
    })
    .await?;
    let group = group.ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no {} with key {key}",
            group_type.singular()
        ))
    })?;
    let body = detail(
        &format!(
            "<a href=\"/project/{}/groups/{index}\">← {}</a>",
            id.0,
            esc(&capitalised(&group_type.plural()))
        ),
        &[
            ("Type", esc(&group_type.singular())),
            ("Key", format!("<code>{}</code>", esc(&group.group_key))),
            ("First seen", when(group.created_at)),
        ],
        &properties_table(&group.properties),
        &events_table(id, &events),
    );
    Ok(ctx.page(Section::People, &group.display_name(), &body))
}
