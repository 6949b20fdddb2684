//! Settings: the project's name, timezone and week start, the group types'
//! display names, the project API key with snippets for the SDKs, personal
//! API keys (created and revoked here) and recent ingestion warnings.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::html::{notice, origin, table, value_text, when, Section};
use super::{Context, SignedIn};
use crate::api::groups::{rename_group_types as rename, GroupTypeNames};
use crate::api::projects::{apply_changes, new_key, revoke_key as revoke, ProjectChanges};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::with_storage;

#[derive(Deserialize, Default)]
pub struct Flash {
    saved: Option<String>,
}

fn snippets(ctx: &Context, host: &str) -> Markup {
    let key = &ctx.project.api_token;
    html! {
        h3 { "posthog-js" }
        pre { code { "posthog.init('" (key) "', { api_host: '" (host) "' })" } }
        h3 { "posthog-python" }
        pre { code { "from posthog import Posthog\nposthog = Posthog('" (key) "', host='" (host) "')" } }
        h3 { "cairn-sdk (Rust)" }
        pre { code { "let client = cairn_sdk::Client::builder(\"" (key) "\").host(\"" (host) "\").build()?;" } }
    }
}

async fn render(
    state: &AppState,
    ctx: Context,
    message: Option<String>,
    error: Option<String>,
    host: &str,
) -> ApiResult<Response> {
    let id = ctx.id();
    let p = id.0;
    let (keys, warnings) = with_storage(&state.storage, move |store| {
        Ok((
            store.catalog.list_personal_keys(id)?,
            store.entities.list_warnings(id, 20)?,
        ))
    })
    .await?;
    let project = &ctx.project;
    let body = html! {
        @if let Some(error) = error { (notice("error", &error)) }
        @if let Some(message) = message { (notice("note", &message)) }
        section.card {
            h2 { "Project" }
            form.grid method="post" action={"/project/" (p) "/settings"} {
                (ctx.csrf_field())
                label for="name" { "Name" }
                input #name name="name" required value=(project.name);
                label for="timezone" { "Timezone" }
                input #timezone name="timezone" required value=(project.timezone) aria-describedby="tz-help";
                span #tz-help .muted { "An IANA name such as Europe/Berlin; insights bucket days in it." }
                label for="week_start_day" { "Weeks start on" }
                select #week_start_day name="week_start_day" {
                    @for (day, label) in [(0, "Sunday"), (1, "Monday")] {
                        option value=(day) selected[project.week_start_day == day] { (label) }
                    }
                }
                button.primary type="submit" { "Save project" }
            }
        }
        section.card {
            h2 { "Group types" }
            @if ctx.group_types.is_empty() {
                p.muted {
                    "No group type yet: send an event with " code { "$groups" } " or a " code { "$groupidentify" } "."
                }
            } @else {
                p.muted { "How each group type is called across Cairn." }
                form method="post" action={"/project/" (p) "/settings/group-types"} {
                    (ctx.csrf_field())
                    (table(["Type", "Singular", "Plural"], html! {
                        @for group_type in &ctx.group_types {
                            @let i = group_type.group_type_index;
                            @let kind = &group_type.group_type;
                            tr {
                                th scope="row" { code { (kind) } }
                                td {
                                    label.sr for={"singular_" (i)} { "Singular name of " (kind) }
                                    input id={"singular_" (i)} name={"singular_" (i)} value=(group_type.singular());
                                }
                                td {
                                    label.sr for={"plural_" (i)} { "Plural name of " (kind) }
                                    input id={"plural_" (i)} name={"plural_" (i)} value=(group_type.plural());
                                }
                            }
                        }
                    }))
                    button.primary type="submit" { "Save names" }
                }
            }
        }
        section.card {
            h2 { "Project API key" }
            p { "SDKs send events with this public key:" }
            p { code.key { (project.api_token) } }
            (snippets(&ctx, host))
        }
        section.card {
            h2 { "Personal API keys" }
            p.muted {
                "Secret keys for the private API (" code { "Authorization: Bearer phx_…" }
                ") and for SDKs that evaluate flags locally."
            }
            table {
                thead {
                    tr {
                        th scope="col" { "Label" }
                        th scope="col" { "Key" }
                        th scope="col" { "Created" }
                        th scope="col" { span.sr { "Actions" } }
                    }
                }
                tbody {
                    @for key in &keys {
                        tr {
                            td { (key.label) }
                            td { code { (key.mask_value) } }
                            td { (when(key.created_at)) }
                            td {
                                form method="post" action={"/project/" (p) "/settings/keys/" (key.id) "/revoke"} {
                                    (ctx.csrf_field())
                                    button.danger type="submit" aria-label={"Revoke " (key.label)} { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action={"/project/" (p) "/settings/keys"} {
                (ctx.csrf_field())
                label for="label" { "New key's label" }
                input #label name="label" required placeholder="e.g. backend flags";
                button type="submit" { "Create key" }
            }
        }
        section.card {
            h2 { "Ingestion warnings" }
            @if warnings.is_empty() {
                p.muted { "None: every event was ingested as sent." }
            } @else {
                (table(["Warning", "Details", "Time"], html! {
                    @for warning in &warnings {
                        tr {
                            td { code { (warning.kind.as_str()) } }
                            td.clip { (value_text(&warning.details)) }
                            td { (when(warning.timestamp)) }
                        }
                    }
                }))
            }
        }
    };
    Ok(ctx.page(Section::Settings, "Settings", body))
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    Query(flash): Query<Flash>,
    headers: axum::http::HeaderMap,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let message = flash.saved.map(|what| format!("Saved {what}."));
    render(
        &state,
        ctx,
        message,
        None,
        &origin(state.config.public_url.as_ref(), &headers),
    )
    .await
}

#[derive(Deserialize)]
pub struct ProjectForm {
    name: String,
    timezone: String,
    week_start_day: i16,
}

pub async fn update_project(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    headers: axum::http::HeaderMap,
    user: SignedIn,
    Form(form): Form<ProjectForm>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let changes = ProjectChanges {
        name: Some(form.name.trim().to_string()),
        timezone: Some(form.timezone.trim().to_string()),
        week_start_day: Some(form.week_start_day),
    };
    match apply_changes(&state, ctx.id(), changes).await {
        Ok(_) => Ok(
            Redirect::to(&format!("/project/{project}/settings?saved=the+project")).into_response(),
        ),
        Err(error @ (ApiError::InvalidField { .. } | ApiError::BadRequest(_))) => {
            render(
                &state,
                ctx,
                None,
                Some(error.to_string()),
                &origin(state.config.public_url.as_ref(), &headers),
            )
            .await
        }
        Err(error) => Err(error),
    }
}

pub async fn rename_group_types(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    user: SignedIn,
    Form(form): Form<HashMap<String, String>>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let name = |field: String| {
        let value = form.get(&field).map(|v| v.trim()).unwrap_or("");
        Some((!value.is_empty()).then(|| value.to_string()))
    };
    let changes = ctx
        .group_types
        .iter()
        .map(|t| {
            let i = t.group_type_index;
            GroupTypeNames {
                group_type_index: i,
                name_singular: name(format!("singular_{i}")),
                name_plural: name(format!("plural_{i}")),
            }
        })
        .collect();
    rename(&state, ctx.id(), changes).await?;
    Ok(Redirect::to(&format!(
        "/project/{project}/settings?saved=the+group+type+names"
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct KeyForm {
    label: String,
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    Path(project): Path<i64>,
    headers: axum::http::HeaderMap,
    user: SignedIn,
    Form(form): Form<KeyForm>,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    let label = match form.label.trim() {
        "" => "API key".to_string(),
        label => label.to_string(),
    };
    let (key, secret) = new_key(&state, ctx.id(), label, Some(ctx.user.id)).await?;
    let message = format!(
        "Created “{}”: {secret} (copy it now; it is not shown again).",
        key.label
    );
    render(
        &state,
        ctx,
        Some(message),
        None,
        &origin(state.config.public_url.as_ref(), &headers),
    )
    .await
}

pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    Path((project, id)): Path<(i64, Uuid)>,
    user: SignedIn,
) -> ApiResult<Response> {
    let ctx = Context::load(&state, project, user.0).await?;
    revoke(&state, ctx.id(), id).await?;
    Ok(Redirect::to(&format!("/project/{project}/settings?saved=the+keys")).into_response())
}
