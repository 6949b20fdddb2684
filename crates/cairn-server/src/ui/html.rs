//! HTML building blocks: escaping, the page shell with its navigation, and
//! the tables every page uses. Pages are plain server-rendered HTML; the
//! only script is none at all, so every page works with JavaScript off.

use std::fmt::Write;

use axum::response::Html;
use chrono::{DateTime, Utc};
use serde_json::Value;

use cairn_core::ProjectId;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_part(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// "companies" → "Companies".
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The address SDKs should use: the one the browser used to reach us.
pub fn origin(headers: &axum::http::HeaderMap) -> String {
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

/// A whole page inside the signed-in shell.
pub fn page(shell: &Shell<'_>, section: Section, title: &str, body: &str) -> Html<String> {
    let p = shell.project.0;
    let link = |target: Section, href: String, label: &str| {
        let current = if target == section {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    };
    let nav = [
        link(
            Section::People,
            format!("/project/{p}/persons"),
            "Persons &amp; Groups",
        ),
        link(
            Section::Insights,
            format!("/project/{p}/insights"),
            "Insights",
        ),
        link(
            Section::Flags,
            format!("/project/{p}/feature_flags"),
            "Feature flags",
        ),
        link(Section::Events, format!("/project/{p}/events"), "Events"),
        link(
            Section::Settings,
            format!("/project/{p}/settings"),
            "Settings",
        ),
    ]
    .join("");
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{title} · Cairn</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
         <body><header class=\"top\"><a class=\"brand\" href=\"/project/{p}/persons\">Cairn</a>\
         <span class=\"project\">{project}</span><nav aria-label=\"Sections\">{nav}</nav>\
         <form method=\"post\" action=\"/logout\" class=\"who\"><span>{email}</span>\
         <button type=\"submit\" class=\"link\">Sign out</button></form></header>\
         <main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title),
        refresh = shell
            .refresh
            .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
            .unwrap_or_default(),
        project = esc(shell.project_name),
        email = esc(shell.email),
    ))
}

/// A page outside the shell (sign-in, first start).
pub fn bare_page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Cairn</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
         <body class=\"bare\"><main id=\"main\" class=\"card narrow\"><p class=\"brand\">Cairn</p>\
         <h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    ))
}

/// A message box (`kind`: `error` or `note`).
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!(
        "<p class=\"notice {kind}\" role=\"{role}\">{}</p>",
        esc(text)
    )
}

pub fn when(at: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339(),
        at.format("%Y-%m-%d %H:%M")
    )
}

/// A property value as text: strings bare, anything else as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Properties as a two-column table, sorted by name.
pub fn properties_table(properties: &serde_json::Map<String, Value>) -> String {
    if properties.is_empty() {
        return "<p class=\"muted\">No properties.</p>".into();
    }
    let mut keys: Vec<&String> = properties.keys().collect();
    keys.sort();
    let mut rows = String::new();
    for key in keys {
        let _ = write!(
            rows,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(key),
            esc(&value_text(&properties[key]))
        );
    }
    format!("<table class=\"props\"><caption class=\"sr\">Properties</caption><tbody>{rows}</tbody></table>")
}

/// "Previous / Next" links for offset paging; `base` ends with `?…&` or `?`.
pub fn pager(base: &str, offset: usize, limit: usize, has_more: bool) -> String {
    let mut links = Vec::new();
    if offset > 0 {
        links.push(format!(
            "<a href=\"{base}offset={}\" rel=\"prev\">← Previous</a>",
            offset.saturating_sub(limit)
        ));
    }
    if has_more {
        links.push(format!(
            "<a href=\"{base}offset={}\" rel=\"next\">Next →</a>",
            offset + limit
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(
        "<nav class=\"pager\" aria-label=\"Pages\">{}</nav>",
        links.join("")
    )
}

/// A search box that keeps the current page's path.
pub fn search_form(action: &str, label: &str, value: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"{action}\" role=\"search\">\
         <label for=\"search\">{label}</label>\
         <input id=\"search\" name=\"search\" type=\"search\" value=\"{}\">\
         <button type=\"submit\">Search</button></form>",
        esc(value)
    )
}
