//! Persons & Groups: a tab for persons and one per group type (by its
//! plural display name), each a searchable, paged table; a person's or a
//! group's page shows its properties and its latest events.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use cairn_core::ProjectId;
use cairn_store::entities::{EventFilter, GroupFilter, PersonFilter, StoredEvent};

use super::html::{
    self, capitalised, origin, pager, properties_table, search_form, table, url_part, when, Section,
};
use super::{Context, SignedIn};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

/// Rows per page of a list.
pub(super) const PAGE: usize = 50;
const RECENT_EVENTS: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    offset: usize,
}

/// The tab row: Persons, then each group type.
fn tabs(ctx: &Context, current: Option<u8>) -> Markup {
    let p = ctx.id().0;
    html! {
        nav.tabs aria-label="Persons and group types" {
            a href={"/project/" (p) "/persons"} aria-current=[html::current(current.is_none())] { "Persons" }
            @for group_type in &ctx.group_types {
                @let index = group_type.group_type_index;
                a href={"/project/" (p) "/groups/" (index)} aria-current=[html::current(current == Some(index))] {
                    (capitalised(&group_type.plural()))
                }
            }
        }
    }
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
    rows: Option<Markup>,
    empty: Markup,
    (offset, has_more): (usize, bool),
) -> Markup {
    html! {
        (tabs(ctx, tab))
        (search_form(action, search_label, search))
        @match rows {
            Some(rows) => (table(columns, rows)),
            None => (empty),
        }
        (pager(&format!("{action}?search={}&", url_part(search)), offset, PAGE, has_more))
    }
}

/// A person's or a group's page: facts, then properties beside events.
fn detail(back: Markup, facts: &[(&str, Markup)], properties: Markup, events: Markup) -> Markup {
    html! {
        p { (back) }
        dl.facts {
            @for (name, value) in facts {
                dt { (name) }
                dd { (value) }
            }
        }
        div.columns {
            section { h2 { "Properties" } (properties) }
            section { h2 { "Latest events" } (events) }
        }
    }
}

/// The getting-started box an empty project shows.
fn first_event_help(ctx: &Context, origin: &str) -> Markup {
    let key = &ctx.project.api_token;
    let curl = format!(
        "curl -X POST {origin}/batch/ -H 'Content-Type: application/json' -d '{{\"api_key\": \"{key}\",\n  \"batch\": [{{\"event\": \"signed_up\", \"distinct_id\": \"alice\",\n    \"properties\": {{\"$groups\": {{\"company\": \"acme\"}}}}}}]}}'"
    );
    html! {
        section.card {
            h2 { "Send your first event" }
            p {
                "Nothing has arrived in this project yet. Point any PostHog SDK at this server with the project API key "
                code { (key) } ", or try it with curl:"
            }
            pre { code { (curl) } }
            p {
                "Or fill it with a realistic B2B data set: stop the server and run " code { "cairn demo" } ". "
                a href={"/project/" (ctx.id().0) "/settings"} { "Settings" }
                " has snippets for posthog-js, posthog-python and cairn-sdk."
            }
        }
    }
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
    let persons = with_storage(&state.storage, move |store| {
        let filter = PersonFilter {
            search: (!term.is_empty()).then_some(term.as_str()),
            distinct_id: None,
            id: None,
            offset,
            limit: PAGE + 1,
            ..Default::default()
        };
        store.entities.list_persons(id, &filter)
    })
    .await?;
    let has_more = persons.len() > PAGE;
    let p = id.0;
    let rows = (!persons.is_empty()).then(|| {
        html! {
            @for person in persons.iter().take(PAGE) {
                @let more = person.distinct_ids.len().saturating_sub(1);
                tr {
                    td { a href={"/project/" (p) "/persons/" (person.id)} { (person.display_name()) } }
                    td {
                        code { (person.distinct_ids.first().map_or("", String::as_str)) }
                        @if more > 0 { " " span.muted { "+" (more) } }
                    }
                    td { (when(person.created_at)) }
                }
            }
        }
    });
    let empty = if search.is_empty() && offset == 0 {
        first_event_help(&ctx, &origin(state.config.public_url.as_ref(), &headers))
    } else {
        html! { p.muted { "No person matches." } }
    };
    let body = listing(
        &ctx,
        None,
        &format!("/project/{p}/persons"),
        "Search persons",
        &search,
        ["Person", "Distinct ID", "First seen"],
        rows,
        empty,
        (offset, has_more),
    );
    Ok(ctx.page(Section::People, "Persons & Groups", body))
}

/// The events table every page with events shows.
pub(super) fn events_table(project: ProjectId, events: &[StoredEvent]) -> Markup {
    if events.is_empty() {
        return html! { p.muted { "No events yet." } };
    }
    let rows = html! {
        @for event in events {
            @let url = event.properties.get("$current_url").and_then(|u| u.as_str()).unwrap_or("");
            tr {
                td { (event.event) }
                td {
                    @match event.person_id {
                        Some(person) => a href={"/project/" (project.0) "/persons/" (person)} { (event.distinct_id) },
                        None => (event.distinct_id),
                    }
                }
                td.clip { (url) }
                td { (when(event.timestamp)) }
            }
        }
    };
    table(["Event", "Person", "URL", "Time"], rows)
}

pub async fn person(
    State(state): State<Arc<AppState>>,
    Path((project, person_id)): Path<(i64, Uuid)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let (person, events) = with_storage(&state.storage, move |store| {
        let filter = PersonFilter {
            search: None,
            distinct_id: None,
            id: Some(person_id),
            offset: 0,
            limit: 1,
            ..Default::default()
        };
        let person = store.entities.list_persons(id, &filter)?.pop();
        let events = EventFilter {
            person_id: Some(person_id),
            limit: RECENT_EVENTS,
            ..EventFilter::default()
        };
        Ok((person, store.entities.list_events(id, &events)?))
    })
    .await?;
    let person =
        person.ok_or_else(|| ApiError::NotFound(format!("there is no person {person_id}")))?;
    let ids = html! {
        @for (i, distinct_id) in person.distinct_ids.iter().enumerate() {
            @if i > 0 { " " }
            code { (distinct_id) }
        }
    };
    let body = detail(
        html! { a href={"/project/" (id.0) "/persons"} { "← Persons" } },
        &[
            ("Distinct IDs", ids),
            ("First seen", when(person.created_at)),
            (
                "Identified",
                html! { (if person.is_identified { "yes" } else { "no" }) },
            ),
        ],
        properties_table(&person.properties),
        events_table(id, &events),
    );
    Ok(ctx.page(Section::People, &person.display_name(), body))
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
    let groups = with_storage(&state.storage, move |store| {
        let filter = GroupFilter {
            group_type_index: index,
            search: (!term.is_empty()).then_some(term.as_str()),
            key_contains: None,
            name_or_key_contains: None,
            offset,
            limit: PAGE + 1,
            ..Default::default()
        };
        store.entities.list_groups(id, &filter)
    })
    .await?;
    let has_more = groups.len() > PAGE;
    let p = id.0;
    let rows = (!groups.is_empty()).then(|| {
        html! {
            @for group in groups.iter().take(PAGE) {
                tr {
                    td {
                        a href={"/project/" (p) "/groups/" (index) "/" (url_part(&group.group_key))} {
                            (group.display_name())
                        }
                    }
                    td { code { (group.group_key) } }
                    td { (when(group.created_at)) }
                }
            }
        }
    });
    let plural = capitalised(&group_type.plural());
    // The group type's name comes from whoever sent `$groups`: maud escapes it here like any text.
    let body = listing(
        &ctx,
        Some(index),
        &format!("/project/{p}/groups/{index}"),
        &format!("Search {}", group_type.plural()),
        &search,
        [&capitalised(&group_type.singular()), "Key", "First seen"],
        rows,
        html! { p.muted { "No group matches." } },
        (offset, has_more),
    );
    Ok(ctx.page(
        Section::People,
        &format!("Persons & Groups · {plural}"),
        body,
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
    let lookup = key.clone();
    let (group, events) = with_storage(&state.storage, move |store| {
        let group = store.entities.find_group(id, index, &lookup)?;
        let events = EventFilter {
            group: Some((index, lookup.as_str())),
            limit: RECENT_EVENTS,
            ..EventFilter::default()
        };
        Ok((group, store.entities.list_events(id, &events)?))
    })
    .await?;
    let group = group.ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no {} with key {key}",
            group_type.singular()
        ))
    })?;
    let body = detail(
        html! {
            a href={"/project/" (id.0) "/groups/" (index)} { "← " (capitalised(&group_type.plural())) }
        },
        &[
            ("Type", html! { (group_type.singular()) }),
            ("Key", html! { code { (group.group_key) } }),
            ("First seen", when(group.created_at)),
        ],
        properties_table(&group.properties),
        events_table(id, &events),
    );
    Ok(ctx.page(Section::People, &group.display_name(), body))
}
