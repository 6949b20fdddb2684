//! Events: the latest events of the project, optionally of one event name.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use cairn_store::entities::EventFilter;

use super::html::Section;
use super::people::events_table;
use super::{Context, SignedIn};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::storage::with_storage;

const LATEST: usize = 100;

/// Seconds between reloads of the live list.
const LIVE_EVERY: u32 = 5;

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    event: String,
    /// Reload the list every few seconds.
    #[serde(default)]
    live: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    Query(query): Query<EventsQuery>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let id = ctx.id();
    let name = query.event.trim().to_string();
    let wanted = name.clone();
    let events = with_storage(&state.storage, move |store| {
        let filter = EventFilter {
            event: (!wanted.is_empty()).then_some(wanted.as_str()),
            limit: LATEST,
            ..EventFilter::default()
        };
        store.entities.list_events(id, &filter)
    })
    .await?;
    let live = query.live.is_some();
    let body = html! {
        form.search method="get" action={"/project/" (id.0) "/events"} {
            label for="event" { "Event name" }
            input #event name="event" value=(name) placeholder="any event";
            label {
                input.check type="checkbox" name="live" value="1" checked[live];
                " Live (reload every " (LIVE_EVERY) " s)"
            }
            button type="submit" { "Show" }
        }
        p.muted { "The latest " (LATEST) " events, newest first." }
        (events_table(id, &events))
    };
    Ok(ctx.refreshing_page(Section::Events, "Events", body, live.then_some(LIVE_EVERY)))
}
