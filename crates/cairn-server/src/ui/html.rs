//! HTML building blocks: the page shell with its navigation, and the tables
//! every page uses. Pages are plain server-rendered HTML built with maud,
//! which escapes every spliced value, so text from events, persons, groups
//! or flags can never become markup. There is no script at all, so every
//! page works with JavaScript off (and the Content-Security-Policy forbids
//! scripts anyway).

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use cairn_core::ProjectId;

use super::csrf::{self, CsrfToken};
use crate::error::{ApiError, ApiResult};

/// Percent-encodes a path segment or query value. A space becomes `%20`,
/// which both read as a space (a `+` stays a plus in a path).
pub fn url_part(text: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    // byte_serialize writes a plus as `%2B`, so each `+` left is a space.
    encoded.replace('+', "%20")
}

/// "companies" → "Companies".
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The address SDKs should use: `--public-url` when set, else the one the
/// browser used to reach us.
pub fn origin(public_url: Option<&url::Url>, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = public_url {
        return url.as_str().trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8000");
    format!("http://{host}")
}

/// Who is looking, and at which project: what the navigation shows.
pub struct Shell<'a> {
    pub project: ProjectId,
    pub project_name: &'a str,
    pub email: &'a str,
    /// Reload the page every this many seconds (the live events list).
    pub refresh: Option<u32>,
    /// For the sign-out form.
    pub csrf: &'a CsrfToken,
}

/// The main sections, for highlighting the current one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    People,
    Insights,
    Flags,
    Events,
    Settings,
}

/// `aria-current="page"` on the link to where the user is.
pub fn current(active: bool) -> Option<&'static str> {
    active.then_some("page")
}

fn head(title: &str, refresh: Option<u32>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(seconds) = refresh {
                meta http-equiv="refresh" content=(seconds);
            }
            title { (title) " · Cairn" }
            link rel="stylesheet" href="/ui/style.css";
        }
    }
}

/// A whole page inside the signed-in shell.
pub fn page(shell: &Shell<'_>, section: Section, title: &str, body: Markup) -> Markup {
    let p = shell.project.0;
    let nav = [
        (Section::People, "persons", "Persons & Groups"),
        (Section::Insights, "insights", "Insights"),
        (Section::Flags, "feature_flags", "Feature flags"),
        (Section::Events, "events", "Events"),
        (Section::Settings, "settings", "Settings"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, shell.refresh))
            body {
                header.top {
                    a.brand href={"/project/" (p) "/persons"} { "Cairn" }
                    span.project { (shell.project_name) }
                    nav aria-label="Sections" {
                        @for (target, path, label) in nav {
                            a href={"/project/" (p) "/" (path)} aria-current=[current(target == section)] { (label) }
                        }
                    }
                    form.who method="post" action="/logout" {
                        (csrf::field(shell.csrf))
                        span { (shell.email) }
                        button.link type="submit" { "Sign out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside the shell (sign-in, first start).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare {
                main #main .card.narrow {
                    p.brand { "Cairn" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A message box (`kind`: `error` or `note`).
pub fn notice(kind: &str, text: &str) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { p class={"notice " (kind)} role=(role) { (text) } }
}

/// An error the user can fix (a field of what they asked for) as a message
/// on the page; any other error stays an error.
pub fn fixable(error: ApiError) -> ApiResult<Markup> {
    match error {
        ApiError::InvalidField { .. } | ApiError::BadRequest(_) => {
            Ok(notice("error", &error.to_string()))
        }
        error => Err(error),
    }
}

/// `content` as a link to `href`, or alone without one.
pub fn linked(href: Option<&str>, content: Markup) -> Markup {
    html! {
        @match href {
            Some(href) => a href=(href) { (content) },
            None => (content),
        }
    }
}

pub fn when(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M")) } }
}

/// A property value as text: strings bare, anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Properties as a two-column table, sorted by name.
pub fn properties_table(properties: &serde_json::Map<String, Value>) -> Markup {
    if properties.is_empty() {
        return html! { p.muted { "No properties." } };
    }
    let mut keys: Vec<&String> = properties.keys().collect();
    keys.sort();
    html! {
        table.props {
            caption.sr { "Properties" }
            tbody {
                @for key in keys {
                    tr {
                        th scope="row" { (key) }
                        td { (value_text(&properties[key])) }
                    }
                }
            }
        }
    }
}

/// A table with a header row of `columns` and the given rows.
pub fn table<'a>(columns: impl IntoIterator<Item = &'a str>, rows: Markup) -> Markup {
    html! {
        table {
            thead { tr { @for column in columns { th scope="col" { (column) } } } }
            tbody { (rows) }
        }
    }
}

/// "Previous / Next" links for offset paging; `base` ends with `?…&` or `?`.
pub fn pager(base: &str, offset: usize, limit: usize, has_more: bool) -> Markup {
    if offset == 0 && !has_more {
        return html! {};
    }
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a href={(base) "offset=" (offset.saturating_sub(limit))} rel="prev" { "← Previous" }
            }
            @if has_more {
                a href={(base) "offset=" (offset + limit)} rel="next" { "Next →" }
            }
        }
    }
}

/// A search box that keeps the current page's path.
pub fn search_form(action: &str, label: &str, value: &str) -> Markup {
    html! {
        form.search method="get" action=(action) role="search" {
            label for="search" { (label) }
            input #search name="search" type="search" value=(value);
            button type="submit" { "Search" }
        }
    }
}
