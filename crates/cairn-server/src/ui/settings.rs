//! Settings: the project's name, timezone and week start, the group types'
//! display names, the project API key with snippets for the SDKs, personal
//! API keys (created and revoked here) and recent ingestion warnings.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use uuid::Uuid;

use cairn_store::keys;
use cairn_store::read;

use super::html::{esc, notice, origin, value_text, when, Section};
use super::{Context, SignedIn};
use crate::api::groups::{rename_group_types as rename, GroupTypeNames};
use crate::api::projects::{apply_changes, new_key, revoke_key as revoke, ProjectChanges};
use crate::api::with_conn;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct Flash {
    saved: Option<String>,
}

fn snippets(ctx: &Context, host: &str) -> String {
    let key = esc(&ctx.project.api_token);
    format!(
        "<h3>posthog-js</h3><pre><code>posthog.init('{key}', {{ api_host: '{host}' }})</code></pre>\
         <h3>posthog-python</h3><pre><code>from posthog import Posthog\nposthog = Posthog('{key}', host='{host}')</code></pre>\
         <h3>cairn-sdk (Rust)</h3><pre><code>let client = cairn_sdk::Client::builder(\"{key}\").host(\"{host}\").build()?;</code></pre>"
    )
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
    let (keys, warnings) = with_conn(&state.store, move |conn| {
        Ok((
            keys::list_personal_keys(conn, id)?,
            read::list_warnings(conn, id, 20)?,
        ))
    })
    .await?;
    let mut body = String::new();
    if let Some(error) = error {
        body.push_str(&notice("error", &error));
    }
    if let Some(message) = message {
        body.push_str(&notice("note", &message));
    }
    let project = &ctx.project;
    let week = |day: i16, label: &str| {
        let selected = if project.week_start_day == day {
            " selected"
        } else {
            ""
        };
        format!("<option value=\"{day}\"{selected}>{label}</option>")
    };
    let _ = write!(
        body,
        "<section class=\"card\"><h2>Project</h2><form method=\"post\" action=\"/project/{p}/settings\" class=\"grid\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required value=\"{name}\">\
         <label for=\"timezone\">Timezone</label><input id=\"timezone\" name=\"timezone\" required value=\"{tz}\" aria-describedby=\"tz-help\">\
         <span id=\"tz-help\" class=\"muted\">An IANA name such as Europe/Berlin; insights bucket days in it.</span>\
         <label for=\"week_start_day\">Weeks start on</label><select id=\"week_start_day\" name=\"week_start_day\">{sunday}{monday}</select>\
         <button type=\"submit\" class=\"primary\">Save project</button></form></section>",
        name = esc(&project.name),
        tz = esc(&project.timezone),
        sunday = week(0, "Sunday"),
        monday = week(1, "Monday"),
    );

    let mut types = String::new();
    for group_type in &ctx.group_types {
        let i = group_type.group_type_index;
        let _ = write!(
            types,
            "<tr><th scope=\"row\"><code>{kind}</code></th>\
             <td><label class=\"sr\" for=\"singular_{i}\">Singular name of {kind}</label><input id=\"singular_{i}\" name=\"singular_{i}\" value=\"{singular}\"></td>\
             <td><label class=\"sr\" for=\"plural_{i}\">Plural name of {kind}</label><input id=\"plural_{i}\" name=\"plural_{i}\" value=\"{plural}\"></td></tr>",
            kind = esc(&group_type.group_type),
            singular = esc(&group_type.singular()),
            plural = esc(&group_type.plural()),
        );
    }
    if types.is_empty() {
        body.push_str("<section class=\"card\"><h2>Group types</h2><p class=\"muted\">No group type yet: send an event with <code>$groups</code> or a <code>$groupidentify</code>.</p></section>");
    } else {
        let _ = write!(
            body,
            "<section class=\"card\"><h2>Group types</h2><p class=\"muted\">How each group type is called across Cairn.</p>\
             <form method=\"post\" action=\"/project/{p}/settings/group-types\"><table>\
             <thead><tr><th scope=\"col\">Type</th><th scope=\"col\">Singular</th><th scope=\"col\">Plural</th></tr></thead>\
             <tbody>{types}</tbody></table><button type=\"submit\" class=\"primary\">Save names</button></form></section>"
        );
    }

    let _ = write!(
        body,
        "<section class=\"card\"><h2>Project API key</h2><p>SDKs send events with this public key:</p>\
         <p><code class=\"key\">{key}</code></p>{snippets}</section>",
        key = esc(&project.api_token),
        snippets = snippets(&ctx, host),
    );

    let mut key_rows = String::new();
    for key in &keys {
        let _ = write!(
            key_rows,
            "<tr><td>{label}</td><td><code>{mask}</code></td><td>{created}</td>\
             <td><form method=\"post\" action=\"/project/{p}/settings/keys/{id}/revoke\">\
             <button type=\"submit\" class=\"danger\" aria-label=\"Revoke {label}\">Revoke</button></form></td></tr>",
            label = esc(&key.label),
            mask = esc(&key.mask_value),
            created = when(key.created_at),
            id = key.id,
        );
    }
    let _ = write!(
        body,
        "<section class=\"card\"><h2>Personal API keys</h2><p class=\"muted\">Secret keys for the private API (<code>Authorization: Bearer phx_…</code>) and for SDKs that evaluate flags locally.</p>\
         <table><thead><tr><th scope=\"col\">Label</th><th scope=\"col\">Key</th><th scope=\"col\">Created</th><th scope=\"col\"><span class=\"sr\">Actions</span></th></tr></thead><tbody>{key_rows}</tbody></table>\
         <form method=\"post\" action=\"/project/{p}/settings/keys\" class=\"inline\"><label for=\"label\">New key's label</label>\
         <input id=\"label\" name=\"label\" required placeholder=\"e.g. backend flags\"><button type=\"submit\">Create key</button></form></section>"
    );

    let mut warning_rows = String::new();
    for warning in &warnings {
        let _ = write!(
            warning_rows,
            "<tr><td><code>{}</code></td><td class=\"clip\">{}</td><td>{}</td></tr>",
            esc(warning.kind.as_str()),
            esc(&value_text(&warning.details)),
            when(warning.timestamp)
        );
    }
    let warnings_html = if warning_rows.is_empty() {
        "<p class=\"muted\">None: every event was ingested as sent.</p>".to_string()
    } else {
        format!("<table><thead><tr><th scope=\"col\">Warning</th><th scope=\"col\">Details</th><th scope=\"col\">Time</th></tr></thead><tbody>{warning_rows}</tbody></table>")
    };
    let _ = write!(
        body,
        "<section class=\"card\"><h2>Ingestion warnings</h2>{warnings_html}</section>"
    );
    Ok(ctx.page(Section::Settings, "Settings", &body))
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
    render(&state, ctx, message, None, &origin(&headers)).await
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
                &origin(&headers),
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
    render(&state, ctx, Some(message), None, &origin(&headers)).await
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
