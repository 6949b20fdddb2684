//! Attacks on sign-in and on who may do what, against the real binary: a
//! flood of first-account posts, cross-site and rebound form posts, racing
//! first accounts, `/metrics` without a key, and accounts that are members
//! of one project.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{event, Server, PERSONAL_KEY, PROJECT_KEY};
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

/// A browser of the web UI: keeps its cookies, sends `Origin` on posts as
/// browsers do, follows no redirect, and posts forms with the hidden fields
/// of the page they are on.
struct Browser {
    client: Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// `name="value"` of one attribute inside an HTML tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// The hidden fields of the forms on a page (a CSRF token, say), each once.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for rest in html.split("<input").skip(1) {
        let Some(tag) = rest.find('>').map(|end| &rest[..end]) else {
            continue;
        };
        if attribute(tag, "type") != Some("hidden") {
            continue;
        }
        let Some(name) = attribute(tag, "name") else {
            continue;
        };
        if fields.iter().all(|(known, _)| known != name) {
            let value = attribute(tag, "value").unwrap_or_default();
            fields.push((name.to_string(), value.to_string()));
        }
    }
    fields
}

impl Browser {
    fn new(server: &Server) -> Self {
        Self::at(server, IpAddr::from([127, 0, 0, 1]))
    }

    /// A browser on another machine: its own loopback address (the server
    /// counts sign-in attempts per address).
    fn at(server: &Server, address: IpAddr) -> Self {
        Self {
            client: Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .local_address(address)
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep_cookies(&mut self, response: &Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&mut self, path: &str) -> Response {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// The form fields to post from `page`: its hidden ones, then `fields`.
    fn form_from(&mut self, page: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let html = self.get(page).text().unwrap();
        let mut form = hidden_fields(&html);
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        form
    }

    /// Posts `form` to `action` as a page of this server would.
    fn post(&mut self, action: &str, form: &[(String, String)]) -> Response {
        let response = self
            .client
            .post(format!("{}{action}", self.base))
            .header("Origin", &self.base)
            .header("Cookie", self.cookie_header())
            .form(form)
            .send()
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Fills in the form on `page` and posts it to `action`.
    fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let form = self.form_from(page, fields);
        self.post(action, &form)
    }

    fn sign_in(server: &Server, email: &str, password: &str) -> Self {
        let mut browser = Self::new(server);
        let response = browser.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        );
        assert_eq!(response.status(), 303, "{email} cannot sign in");
        browser
    }
}

fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

fn signed_in(response: &Response) -> bool {
    response.status() == 303
        && response.headers().get_all("set-cookie").iter().any(|c| {
            c.to_str().unwrap().starts_with("cairn_session=")
                && !c.to_str().unwrap().starts_with("cairn_session=;")
        })
}

/// Capture still answers, and what was sent before is still there.
fn capture_works(server: &Server) {
    server.capture(json!([event("after-attack", "u1", json!({}))]));
    let flags = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"api_key": PROJECT_KEY, "distinct_id": "u1"}))
        .send()
        .unwrap();
    assert_eq!(flags.status(), 200);
}

/// What one flooding client saw: (path, status, Retry-After present, body).
type Answers = Vec<(&'static str, u16, bool, String)>;

#[test]
fn a_sign_in_flood_is_throttled_and_capture_stays_fast() {
    let server = Server::start();
    // Six clients, each from its own loopback address, post first-account
    // and sign-in forms as fast as they are answered.
    let clients: Vec<_> = (0..6u8)
        .map(|t| {
            let mut browser = Browser::at(&server, IpAddr::from([127, 0, 0, 2 + t]));
            let hidden = browser.form_from("/setup", &[]);
            (t, browser, hidden)
        })
        .collect();
    let flooding = Instant::now();
    let flood: Vec<_> = clients
        .into_iter()
        .map(|(t, mut browser, hidden)| {
            thread::spawn(move || -> Answers {
                let mut answers = Vec::new();
                let mut i = 0;
                while flooding.elapsed() < Duration::from_secs(3) {
                    i += 1;
                    let path = if i % 2 == 0 { "/login" } else { "/setup" };
                    let mut form = hidden.clone();
                    form.push(("email".into(), format!("flood{t}-{i}@example.com")));
                    form.push(("password".into(), "flood-password".into()));
                    let response = browser.post(path, &form);
                    let status = response.status().as_u16();
                    let retry_after = response.headers().get("retry-after").is_some();
                    answers.push((path, status, retry_after, response.text().unwrap()));
                }
                answers
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut latencies = Vec::new();
    while flooding.elapsed() < Duration::from_millis(2_800) {
        let started = Instant::now();
        server.capture(json!([event("during-flood", "u1", json!({}))]));
        latencies.push(started.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    let clients: Vec<Answers> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!(
        "{} posts; capture during the flood: {} requests, median {median:?}, max {:?}",
        clients.iter().map(Vec::len).sum::<usize>(),
        latencies.len(),
        latencies.last().unwrap()
    );
    for answers in &clients {
        let throttled: Vec<_> = answers.iter().filter(|a| a.1 == 429).collect();
        assert!(!throttled.is_empty(), "a client was never throttled");
        for (_, _, retry_after, body) in &throttled {
            assert!(*retry_after, "a 429 without Retry-After");
            assert!(
                body.contains("10 per minute") && body.contains("sign_in_limit"),
                "{body}"
            );
        }
        // 10 a minute from one address; 3 s refill half of one more.
        let passed = answers.len() - throttled.len();
        assert!(passed <= 11, "{passed} posts from one address got through");
    }
    // Loose enough for a loaded 2-core CI machine running other tests.
    assert!(
        median < Duration::from_secs(1),
        "capture slowed down: {latencies:?}"
    );
    assert!(*latencies.last().unwrap() < Duration::from_secs(2));
    capture_works(&server);
    // Of all those posts, exactly one made the account.
    let made = clients
        .iter()
        .flatten()
        .filter(|(path, status, _, _)| *path == "/setup" && *status == 303)
        .count();
    assert_eq!(made, 1);
}

#[test]
fn form_posts_need_an_origin_of_this_server() {
    let server = Server::start();
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let credentials = [
        ("email", "owner@example.com"),
        ("password", "owner-password"),
    ];
    let post = |headers: &[(&str, &str)]| {
        let mut request = client.post(server.url("/setup")).form(&credentials);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().unwrap()
    };
    // A sandboxed frame on any web page posts with `Origin: null`.
    let response = post(&[("Origin", "null")]);
    assert_eq!(response.status(), 403);
    assert!(response.text().unwrap().contains("Origin: null"));
    // Neither Origin nor Referer: not from Cairn's pages.
    let response = post(&[]);
    assert_eq!(response.status(), 403);
    assert!(response
        .text()
        .unwrap()
        .contains("neither an Origin nor a Referer"));
    let response = post(&[("Origin", "https://evil.example")]);
    assert_eq!(response.status(), 403);
    let referer = server.url("/setup");
    let response = post(&[("Referer", "https://evil.example/setup")]);
    assert_eq!(response.status(), 403);
    // None of these made an account: the first-start page is still there.
    let setup = client.get(server.url("/setup")).send().unwrap();
    assert_eq!(setup.status(), 200);
    // A browser that sends only a Referer of this server may post.
    let response = post(&[("Referer", referer.as_str())]);
    assert!(signed_in(&response), "{}", response.status());
    capture_works(&server);
}

#[test]
fn the_ui_answers_only_its_own_host_names_capture_answers_any() {
    let server = Server::start();
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let with_host = |path: &str, host: &str| {
        client
            .get(server.url(path))
            .header("Host", host)
            .send()
            .unwrap()
    };
    // A page on rebound.evil.example whose name now points at 127.0.0.1:
    // to the browser, its posts are same-origin.
    let rebound = format!("rebound.evil.example:{port}");
    let response = client
        .post(server.url("/setup"))
        .header("Host", &rebound)
        .header("Origin", format!("http://{rebound}"))
        .form(&[("email", "evil@example.com"), ("password", "evil-password")])
        .send()
        .unwrap();
    assert_eq!(response.status(), 421);
    assert!(response.text().unwrap().contains("--public-url"));
    let response = with_host("/login", &rebound);
    assert_eq!(response.status(), 421);
    assert_eq!(
        with_host("/setup", &format!("localhost:{port}")).status(),
        200
    );
    assert_eq!(
        with_host("/setup", &format!("127.0.0.1:{port}")).status(),
        200
    );

    // Capture and /flags are cross-site by design.
    let response = client
        .post(server.url("/batch/"))
        .header("Host", "any.example")
        .json(&json!({"api_key": PROJECT_KEY, "batch": [event("e", "u1", json!({}))]}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(server.url("/flags/?v=2"))
        .header("Host", "any.example")
        .json(&json!({"api_key": PROJECT_KEY, "distinct_id": "u1"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.events("").len(),
        1,
        "the rebound post stored nothing else"
    );

    // With --public-url, the UI answers to that name too.
    let public = Server::start_with(&["--public-url", "https://cairn.example.com"]);
    let response = client
        .get(public.url("/setup"))
        .header("Host", "cairn.example.com")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn concurrent_first_account_posts_make_one_account() {
    let server = Server::start();
    const RACERS: u8 = 6;
    let barrier = Arc::new(Barrier::new(RACERS.into()));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let mut browser = Browser::at(&server, IpAddr::from([127, 0, 0, 10 + i]));
            let barrier = barrier.clone();
            thread::spawn(move || {
                let email = format!("racer{i}@example.com");
                let form = browser.form_from(
                    "/setup",
                    &[("email", email.as_str()), ("password", "racer-password")],
                );
                barrier.wait();
                let response = browser.post("/setup", &form);
                let made = signed_in(&response);
                (
                    email,
                    made,
                    response.status().as_u16(),
                    response.text().unwrap(),
                )
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|r| r.1).collect();
    assert_eq!(winners.len(), 1, "{results:#?}");
    for (_, made, status, body) in &results {
        if !made {
            assert_eq!(*status, 409);
            assert!(body.contains("already has an account"), "{body}");
        }
    }
    // Only the winner's account exists.
    for (email, made, _, _) in &results {
        let mut browser = Browser::new(&server);
        let response = browser.submit(
            "/login",
            "/login",
            &[("email", email), ("password", "racer-password")],
        );
        assert_eq!(signed_in(&response), *made, "{email}");
    }
}

#[test]
fn unknown_emails_take_as_long_to_refuse_as_wrong_passwords() {
    let server = Server::start();
    let mut owner = Browser::new(&server);
    let made = owner.submit(
        "/setup",
        "/setup",
        &[
            ("email", "owner@example.com"),
            ("password", "owner-password"),
        ],
    );
    assert!(signed_in(&made));
    // Alternately, so that load on the machine weighs on both alike; each
    // attempt from its own address, so that none is throttled.
    let attempt = |email: &str, address: u8| {
        let mut browser = Browser::at(&server, IpAddr::from([127, 0, 1, address]));
        let form = browser.form_from(
            "/login",
            &[("email", email), ("password", "wrong-password")],
        );
        let started = Instant::now();
        let response = browser.post("/login", &form);
        let took = started.elapsed();
        assert!(response.text().unwrap().contains("do not match"));
        took
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..7 {
        known.push(attempt("owner@example.com", 10 + i));
        unknown.push(attempt("nobody@example.com", 30 + i));
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[3], unknown[3]);
    println!("median wrong password: {known:?}, unknown email: {unknown:?}");
    assert!(
        unknown * 4 >= known,
        "an unknown email is refused much faster ({unknown:?}) than a wrong password ({known:?})"
    );
}

#[test]
fn metrics_need_a_personal_key_unless_public() {
    let server = Server::start();
    server.capture(json!([event("e", "u1", json!({}))]));
    let response = server.client.get(server.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.text().unwrap().contains("--public-metrics"));
    let response = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth("phx_not_a_key")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = server
        .authed(server.client.get(server.url("/metrics")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .unwrap()
        .contains("cairn_ingest_queue_depth"));

    let public = Server::start_with(&["--public-metrics"]);
    let response = public.client.get(public.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), 200);
}

/// Runs `cairn users …` on a stopped server's data.
fn users(server: &Server, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("users")
        .args(args)
        .arg("--data-dir")
        .arg(server.data_dir())
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cairn users {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The personal key a settings page shows once, after creating it (the
/// list of keys shows them masked: `phx_...abcd`).
fn shown_key(html: &str) -> String {
    html.match_indices("phx_")
        .map(|(start, _)| {
            html[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .find(|key| key.len() > 20)
        .expect("a new key on the page")
}

fn create_project(server: &Server, key: &str, name: &str) -> Response {
    server
        .client
        .post(server.url("/api/projects/"))
        .bearer_auth(key)
        .json(&json!({ "name": name }))
        .send()
        .unwrap()
}

#[test]
fn members_see_only_their_projects_and_only_admins_create_projects() {
    let mut server = Server::start();
    let second = create_project(&server, PERSONAL_KEY, "Second");
    assert_eq!(second.status(), 201);
    server.kill();
    let made = users(
        &server,
        &[
            "create",
            "--email",
            "admin@example.com",
            "--password",
            "admin-password",
        ],
    );
    assert!(made.contains("administrator"), "{made}");
    let made = users(
        &server,
        &[
            "create",
            "--email",
            "member@example.com",
            "--password",
            "member-password",
            "--project",
            "2",
        ],
    );
    assert!(made.contains("member"), "{made}");
    server.spawn();

    let mut member = Browser::sign_in(&server, "member@example.com", "member-password");
    let home = member.get("/");
    assert_eq!(location(&home), "/project/2/persons");
    assert_eq!(member.get("/project/2/persons").status(), 200);
    for path in [
        "/project/1/persons",
        "/project/1/settings",
        "/project/1/events",
    ] {
        assert_eq!(member.get(path).status(), 404, "{path}");
    }
    let mut admin = Browser::sign_in(&server, "admin@example.com", "admin-password");
    for path in ["/project/1/persons", "/project/2/persons"] {
        assert_eq!(admin.get(path).status(), 200, "{path}");
    }

    // A member's personal key works for its project, and creates none.
    let page = member.submit(
        "/project/2/settings",
        "/project/2/settings/keys",
        &[("label", "member key")],
    );
    assert_eq!(page.status(), 200);
    let member_key = shown_key(&page.text().unwrap());
    let own: Value = server
        .client
        .get(server.url("/api/projects/2/"))
        .bearer_auth(&member_key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(own["name"], "Second");
    let refused = create_project(&server, &member_key, "Mine");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("only administrators"),
        "{body}"
    );
    // Nor does a key that key makes.
    let minted: Value = server
        .client
        .post(server.url("/api/projects/2/personal_api_keys/"))
        .bearer_auth(&member_key)
        .json(&json!({"label": "minted"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let minted = minted["value"].as_str().unwrap();
    assert_eq!(create_project(&server, minted, "Mine").status(), 403);

    // An administrator's key does.
    let page = admin.submit(
        "/project/1/settings",
        "/project/1/settings/keys",
        &[("label", "admin key")],
    );
    let admin_key = shown_key(&page.text().unwrap());
    assert_eq!(create_project(&server, &admin_key, "Third").status(), 201);

    // Added to another project, the member sees it too.
    server.kill();
    let added = users(
        &server,
        &[
            "add-member",
            "--email",
            "member@example.com",
            "--project",
            "1",
        ],
    );
    assert!(added.contains("project 1"), "{added}");
    server.spawn();
    let mut member = Browser::sign_in(&server, "member@example.com", "member-password");
    assert_eq!(member.get("/project/1/persons").status(), 200);
    assert_eq!(member.get("/project/3/persons").status(), 404);
}
