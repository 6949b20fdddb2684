//! The web UI against hostile data, over plain HTTP: text that anyone with
//! the public project key can send (a group type name, person and group
//! properties, an event name) and a flag's description show as text on
//! every page and never as markup (flag keys are limited to letters, digits,
//! `-` and `_`); every response carries the security headers; a form
//! post without this session's CSRF token is refused; insights run only on
//! the form's POST.

mod common;

use std::time::Duration;

use common::{event, Server, PERSONAL_KEY};
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

/// Script-bearing text per field, each distinct so a failure names the field.
const GROUP_TYPE: &str = "\"><script>alert('group type')</script>";
const PERSON_PROPERTY: &str = "\"><script>alert('person property')</script>";
const GROUP_PROPERTY: &str = "\"><script>alert('group property')</script>";
const EVENT: &str = "\"><script>alert('event')</script>";
const FLAG_NAME: &str = "\"><script>alert('flag name')</script>";

const CSP: &str = "default-src 'self'; script-src 'none'; frame-ancestors 'none'";

/// The markup a payload must never appear as.
fn raw(payload: &str) -> String {
    payload.trim_start_matches("\">").to_string()
}

/// How the payload reads once escaped (the part without quotes, which
/// needs no escaping in text).
fn escaped(payload: &str) -> String {
    raw(payload).replace('<', "&lt;").replace('>', "&gt;")
}

/// A browser-like session: a cookie, same-origin posts, no redirects followed.
struct Browser<'a> {
    server: &'a Server,
    client: Client,
    cookie: String,
}

impl<'a> Browser<'a> {
    /// Creates the first account through `/setup` and keeps its session.
    fn sign_up(server: &'a Server) -> Self {
        Self::open(server, "/setup")
    }

    /// A second session of that account, through `/login`.
    fn sign_in(server: &'a Server) -> Self {
        Self::open(server, "/login")
    }

    fn open(server: &'a Server, path: &str) -> Self {
        let client = Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let response = client
            .post(server.url(path))
            .header(ORIGIN, &server.base)
            .form(&[
                ("email", "admin@example.com"),
                ("password", "correct horse battery"),
            ])
            .send()
            .unwrap();
        assert_eq!(response.status(), 303, "{}", response.text().unwrap());
        let cookie = response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        Self {
            server,
            client,
            cookie,
        }
    }

    fn get(&self, path: &str) -> Response {
        self.client
            .get(self.server.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .unwrap()
    }

    /// A page's HTML, after checking it loaded with the security headers.
    fn page(&self, path: &str) -> String {
        let response = self.get(path);
        assert_eq!(response.status(), 200, "GET {path}");
        assert_security_headers(response.headers(), path);
        response.text().unwrap()
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.server.url(path))
            .header(COOKIE, &self.cookie)
            .header(ORIGIN, &self.server.base)
            .form(form)
            .send()
            .unwrap()
    }
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(
        headers
            .get(CONTENT_SECURITY_POLICY)
            .map(|v| v.to_str().unwrap()),
        Some(CSP),
        "{what}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
}

/// The value of the first hidden CSRF field on a page.
fn csrf_token(html: &str) -> String {
    let field = "name=\"csrf_token\" value=\"";
    let start = html.find(field).expect("the page has a CSRF field") + field.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The first link on a page that starts with `prefix`.
fn first_link(html: &str, prefix: &str) -> String {
    let start = html
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("no link to {prefix}"))
        + "href=\"".len();
    html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// No payload appears as markup; each expected one appears as text.
fn assert_shown_as_text(html: &str, page: &str, expected: &[&str]) {
    for payload in [
        GROUP_TYPE,
        PERSON_PROPERTY,
        GROUP_PROPERTY,
        EVENT,
        FLAG_NAME,
    ] {
        assert!(
            !html.contains(&raw(payload)),
            "{page} shows {payload:?} as markup"
        );
    }
    assert!(!html.contains("<script"), "{page} has a script element");
    for payload in expected {
        assert!(
            html.contains(&escaped(payload)),
            "{page} does not show {payload:?} as text"
        );
    }
}

/// A server holding the hostile data, and the id of its hostile flag.
fn hostile_server() -> (Server, i64) {
    let server = Server::start();
    server.capture(json!([
        event(
            EVENT,
            "hostile-person",
            json!({
                "$set": {PERSON_PROPERTY: PERSON_PROPERTY},
                "$groups": {GROUP_TYPE: "hostile-group"},
            })
        ),
        event(
            "$groupidentify",
            "hostile-person",
            json!({
                "$group_type": GROUP_TYPE,
                "$group_key": "hostile-group",
                "$group_set": {GROUP_PROPERTY: GROUP_PROPERTY},
            })
        ),
    ]));
    let flag = server.create_flag(json!({
        "key": "hostile",
        "name": FLAG_NAME,
        "filters": {"aggregation_group_type_index": 0,
            "groups": [{"properties": [], "rollout_percentage": 100}]},
    }));
    (server, flag["id"].as_i64().unwrap())
}

#[test]
fn hostile_names_and_properties_render_as_text_on_every_page() {
    let (server, flag) = hostile_server();
    let browser = Browser::sign_up(&server);

    let persons = browser.page("/project/1/persons");
    assert_shown_as_text(&persons, "persons", &[GROUP_TYPE]);
    let person = browser.page(&first_link(&persons, "/project/1/persons/"));
    assert_shown_as_text(&person, "person", &[PERSON_PROPERTY, EVENT]);

    // The reported hole: the group type's name in the search label.
    let groups = browser.page("/project/1/groups/0");
    assert_shown_as_text(&groups, "groups", &[GROUP_TYPE]);
    assert!(
        groups.contains(&format!("Search &quot;&gt;{}", escaped(GROUP_TYPE))),
        "{groups}"
    );
    let group = browser.page(&first_link(&groups, "/project/1/groups/0/"));
    assert_shown_as_text(&group, "group", &[GROUP_TYPE, GROUP_PROPERTY, EVENT]);

    let events = browser.page("/project/1/events");
    assert_shown_as_text(&events, "events", &[EVENT]);

    let insights = browser.page("/project/1/insights");
    assert_shown_as_text(&insights, "insights", &[GROUP_TYPE, EVENT]);
    let token = csrf_token(&insights);
    let result = browser.post(
        "/project/1/insights",
        &[
            ("csrf_token", &token),
            ("kind", "trends"),
            ("event1", EVENT),
            ("date_from", "all"),
            ("breakdown_type", "person"),
            ("breakdown", PERSON_PROPERTY),
        ],
    );
    assert_eq!(result.status(), 200);
    assert_security_headers(result.headers(), "insights result");
    let result = result.text().unwrap();
    assert!(result.contains("class=\"card result\""), "{result}");
    assert_shown_as_text(&result, "insights result", &[EVENT, PERSON_PROPERTY]);

    let flags = browser.page("/project/1/feature_flags");
    assert_shown_as_text(&flags, "flags", &[FLAG_NAME, GROUP_TYPE]);
    let flag = browser.page(&format!("/project/1/feature_flags/{flag}"));
    assert_shown_as_text(&flag, "flag", &[FLAG_NAME, GROUP_TYPE]);

    let settings = browser.page("/project/1/settings");
    assert_shown_as_text(&settings, "settings", &[GROUP_TYPE]);
}

#[test]
fn security_headers_are_on_pages_api_and_capture_responses() {
    let server = Server::start();
    let client = &server.client;
    let responses = [
        (
            "sign-in page",
            client.get(server.url("/login")).send().unwrap(),
        ),
        (
            "style sheet",
            client.get(server.url("/ui/style.css")).send().unwrap(),
        ),
        ("health", client.get(server.url("/_health")).send().unwrap()),
        (
            "capture",
            server.post_batch(json!([event("e", "u", json!({}))])),
        ),
        (
            "flags",
            client
                .post(server.url("/flags/?v=2"))
                .json(&json!({"api_key": common::PROJECT_KEY, "distinct_id": "u"}))
                .send()
                .unwrap(),
        ),
        (
            "private API",
            client
                .get(server.api("/persons/"))
                .bearer_auth(PERSONAL_KEY)
                .send()
                .unwrap(),
        ),
        (
            "unknown path",
            client.get(server.url("/no/such/page")).send().unwrap(),
        ),
    ];
    for (what, response) in responses {
        assert_security_headers(response.headers(), what);
    }
}

#[test]
fn a_form_post_needs_the_sessions_csrf_token() {
    let server = Server::start();
    let browser = Browser::sign_up(&server);
    let settings = browser.page("/project/1/settings");
    let token = csrf_token(&settings);

    // Without a token, with another's, or with a mangled one: refused before anything happens.
    let other = Browser::sign_in(&server);
    let other_token = csrf_token(&other.page("/project/1/settings"));
    assert_ne!(token, other_token, "two sessions share a CSRF token");
    for (what, form) in [
        ("no token", vec![("label", "stolen")]),
        (
            "another session's token",
            vec![("label", "stolen"), ("csrf_token", other_token.as_str())],
        ),
        (
            "a mangled token",
            vec![("label", "stolen"), ("csrf_token", "AAAA")],
        ),
    ] {
        let response = browser.post("/project/1/settings/keys", &form);
        assert_eq!(response.status(), 403, "{what}");
        let message = response.text().unwrap();
        assert!(message.contains("CSRF token"), "{what}: {message}");
    }
    let keys = server.get("/personal_api_keys/");
    assert!(!keys.to_string().contains("stolen"), "{keys}");

    // Every state-changing form of the signed-in UI is guarded, sign-out included.
    for path in [
        "/project/1/settings",
        "/project/1/settings/group-types",
        "/project/1/feature_flags/new",
        "/project/1/insights",
        "/project/1/insights/save",
        "/logout",
    ] {
        assert_eq!(
            browser.post(path, &[("name", "x")]).status(),
            403,
            "POST {path}"
        );
    }
    assert_eq!(
        browser.get("/project/1/settings").status(),
        200,
        "still signed in"
    );

    // With the token the form works.
    let created = browser.post(
        "/project/1/settings/keys",
        &[("label", "mine"), ("csrf_token", &token)],
    );
    assert_eq!(created.status(), 200);
    assert!(created.text().unwrap().contains("Created “mine”"));
    let renamed = browser.post(
        "/project/1/settings",
        &[
            ("csrf_token", &token),
            ("name", "Renamed"),
            ("timezone", "UTC"),
            ("week_start_day", "1"),
        ],
    );
    assert_eq!(renamed.status(), 303);
    assert!(browser
        .page("/project/1/settings")
        .contains("value=\"Renamed\""));
    let signed_out = browser.post("/logout", &[("csrf_token", &token)]);
    assert_eq!(signed_out.status(), 303);
    assert_eq!(signed_out.headers()[LOCATION], "/login");
}

/// The builder's first event field holding "signed up", and the result box.
const FILLED_IN: &str = "name=\"event1\" list=\"event-names\" value=\"signed up\"";
const RESULT: &str = "class=\"card result\"";

#[test]
fn insights_run_on_the_forms_post_not_on_a_link() {
    let server = Server::start();
    server.capture(json!([event("signed up", "u1", json!({}))]));
    let browser = Browser::sign_up(&server);
    let params = "kind=trends&event1=signed+up&date_from=all&display=number";

    // A link (a saved insight's, or one from anywhere) fills the builder in and runs nothing.
    let page = browser.page(&format!("/project/1/insights?{params}"));
    assert!(page.contains(FILLED_IN), "the builder is not filled in");
    assert!(!page.contains(RESULT), "a GET ran the insight");

    let token = csrf_token(&page);
    let run = browser.post(
        "/project/1/insights",
        &[
            ("csrf_token", &token),
            ("kind", "trends"),
            ("event1", "signed up"),
            ("date_from", "all"),
            ("display", "number"),
        ],
    );
    assert_eq!(run.status(), 200);
    let run = run.text().unwrap();
    assert!(run.contains(RESULT) && run.contains("bold-number"), "{run}");

    // Saved, it comes back as a link to the filled-in builder.
    let saved = browser.post(
        "/project/1/insights/save",
        &[
            ("csrf_token", &token),
            ("name", "Sign-ups"),
            ("params", params),
        ],
    );
    assert_eq!(saved.status(), 303);
    let list = browser.page("/project/1/insights/saved");
    let link = first_link(&list, "/project/1/insights?");
    let reopened = browser.page(&link);
    assert!(
        reopened.contains(FILLED_IN) && !reopened.contains(RESULT),
        "{reopened}"
    );
}
