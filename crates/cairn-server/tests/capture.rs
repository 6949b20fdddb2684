//! Capture over HTTP: every path, method and body format PostHog's clients
//! use, and every refusal with its status and message.

mod common;

use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{event, Server, PERSONAL_KEY, PROJECT_KEY};
use flate2::write::GzEncoder;
use serde_json::{json, Value};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn stored_names(server: &Server) -> Vec<String> {
    let mut names: Vec<String> = server
        .events("")
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn every_path_with_and_without_trailing_slash_accepts_events() {
    let server = Server::start();
    let paths = ["/batch", "/e", "/i/v0/e", "/capture", "/track", "/engage"];
    let mut expected = Vec::new();
    for path in paths {
        for suffix in ["", "/"] {
            let name = format!("via{path}{suffix}");
            let body = json!({"api_key": PROJECT_KEY, "batch": [event(&name, "u1", json!({}))]});
            let response = server
                .client
                .post(server.url(&format!("{path}{suffix}")))
                .json(&body)
                .send()
                .unwrap();
            assert_eq!(response.status(), 200, "{path}{suffix}");
            let reply: Value = response.json().unwrap();
            assert_eq!(reply, json!({"status": "Ok"}));
            expected.push(name);
        }
    }
    expected.sort();
    assert_eq!(stored_names(&server), expected);
}

#[test]
fn body_formats_of_every_sdk() {
    let server = Server::start();
    let one = |name: &str| json!({"event": name, "distinct_id": "u", "properties": {"token": PROJECT_KEY}});
    let post = |path: &str, body: Vec<u8>, content_type: &str| {
        server
            .client
            .post(server.url(path))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .unwrap()
    };

    // A single event object, and a JSON array (posthog-js).
    assert_eq!(
        post(
            "/e/",
            one("single").to_string().into_bytes(),
            "application/json"
        )
        .status(),
        200
    );
    assert_eq!(
        post(
            "/e/",
            json!([one("array")]).to_string().into_bytes(),
            "application/json"
        )
        .status(),
        200
    );
    // gzip found by its magic bytes, and gzip announced by ?compression=gzip-js.
    let zipped = gzip(json!([one("gzip-magic")]).to_string().as_bytes());
    assert_eq!(post("/e/", zipped, "text/plain").status(), 200);
    let zipped = gzip(json!([one("gzip-js")]).to_string().as_bytes());
    assert_eq!(
        post("/e/?compression=gzip-js", zipped, "text/plain").status(),
        200
    );
    // Content-Encoding: gzip on /batch (posthog-node's default).
    let batch =
        json!({"api_key": PROJECT_KEY, "batch": [event("content-encoding", "u", json!({}))]});
    let response = server
        .client
        .post(server.url("/batch/"))
        .header("Content-Encoding", "gzip")
        .body(gzip(batch.to_string().as_bytes()))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // base64 in a form field, as posthog-js sends without compression.
    let form = format!(
        "data={}",
        STANDARD.encode(json!([one("form-base64")]).to_string())
    );
    assert_eq!(
        post(
            "/e/",
            form.into_bytes(),
            "application/x-www-form-urlencoded"
        )
        .status(),
        200
    );
    // lz64 in a form field.
    let lz = lz_string(&json!([one("lz64")]).to_string());
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("data", &lz)
        .append_pair("compression", "lz64")
        .finish();
    assert_eq!(
        post(
            "/e/",
            form.into_bytes(),
            "application/x-www-form-urlencoded"
        )
        .status(),
        200
    );
    // Plain base64 body.
    assert_eq!(
        post(
            "/capture/",
            STANDARD.encode(one("raw-base64").to_string()).into_bytes(),
            "text/plain"
        )
        .status(),
        200
    );
    // GET with ?data=.
    let data = STANDARD.encode(one("get-data").to_string());
    let response = server
        .client
        .get(server.url("/e/"))
        .query(&[("data", data)])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    // sendBeacon: 204.
    let response = server
        .client
        .post(server.url("/e/?beacon=1"))
        .body(json!([one("beacon")]).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);

    assert_eq!(
        stored_names(&server),
        [
            "array",
            "beacon",
            "content-encoding",
            "form-base64",
            "get-data",
            "gzip-js",
            "gzip-magic",
            "lz64",
            "raw-base64",
            "single"
        ]
    );
}

/// lz-string's compressToBase64, done by the real JavaScript-compatible crate.
fn lz_string(text: &str) -> String {
    lz_str::compress_to_base64(text)
}

#[test]
fn options_and_cors_answer_any_origin() {
    let server = Server::start();
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/e/"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    let plain = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/batch"))
        .send()
        .unwrap();
    assert_eq!(plain.status(), 200);
}

fn refusal(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    (status, body["detail"].as_str().unwrap().to_string())
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_store_nothing() {
    let server = Server::start();
    let post = |body: &str| {
        server
            .client
            .post(server.url("/batch/"))
            .body(body.to_string())
            .send()
            .unwrap()
    };

    let (status, detail) = refusal(post(""));
    assert_eq!(
        (status, detail.contains("missing data payload")),
        (400, true)
    );
    let (status, detail) = refusal(post("{not json"));
    assert_eq!(
        (status, detail.contains("invalid JSON")),
        (400, true),
        "{detail}"
    );
    let (status, detail) = refusal(post(
        &json!({"api_key": PROJECT_KEY, "batch": []}).to_string(),
    ));
    assert_eq!((status, detail.as_str()), (400, "request holds no event"));
    let (status, detail) = refusal(post(
        &json!({"api_key": PROJECT_KEY, "batch": [{"event": "e"}]}).to_string(),
    ));
    assert_eq!(status, 400);
    assert!(
        detail.contains("event #0") && detail.contains("distinct_id"),
        "{detail}"
    );
    let (status, detail) = refusal(post(
        &json!({"api_key": PROJECT_KEY, "batch": [{"distinct_id": "u", "event": 7}]}).to_string(),
    ));
    assert!(
        status == 400 && detail.contains("`event` must be a string"),
        "{detail}"
    );

    // One bad uuid fails the whole batch: the good event is not stored either.
    let batch = json!({"api_key": PROJECT_KEY, "batch": [event("good", "u", json!({})),
        {"event": "bad", "distinct_id": "u", "uuid": "not-a-uuid"}]});
    let (status, detail) = refusal(post(&batch.to_string()));
    assert!(
        status == 400 && detail.contains("event #1") && detail.contains("uuid"),
        "{detail}"
    );

    let truncated = gzip(
        json!({"api_key": PROJECT_KEY, "batch": [event("z", "u", json!({}))]})
            .to_string()
            .as_bytes(),
    );
    let response = server
        .client
        .post(server.url("/batch/"))
        .body(truncated[..truncated.len() / 2].to_vec())
        .send()
        .unwrap();
    let (status, detail) = refusal(response);
    assert!(status == 400 && detail.contains("gzip"), "{detail}");

    assert!(server.events("").is_empty());
}

#[test]
fn keys_that_open_no_project_are_401() {
    let server = Server::start();
    let with_key = |key: &str| json!({"api_key": key, "batch": [event("e", "u", json!({}))]});
    for (key, expected) in [
        ("phc_unknown", "no project has the API key"),
        (PERSONAL_KEY, "personal API key"),
        (&"k".repeat(65)[..], "longer than 64"),
    ] {
        let (status, detail) = refusal(
            server
                .client
                .post(server.url("/batch/"))
                .json(&with_key(key))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 401, "{key}");
        assert!(detail.contains(expected), "{detail}");
    }
    let no_key = json!([event("e", "u", json!({}))]);
    let (status, detail) = refusal(
        server
            .client
            .post(server.url("/e/"))
            .json(&no_key)
            .send()
            .unwrap(),
    );
    assert!(
        status == 401 && detail.contains("without an api_key"),
        "{detail}"
    );
    let mixed = json!([{"event": "e", "distinct_id": "u", "token": PROJECT_KEY}, {"event": "e", "distinct_id": "u", "token": "phc_other"}]);
    let (status, detail) = refusal(
        server
            .client
            .post(server.url("/e/"))
            .json(&mixed)
            .send()
            .unwrap(),
    );
    assert!(status == 401 && detail.contains("inconsistent"), "{detail}");
    assert!(server.events("").is_empty());
}

#[test]
fn oversize_requests_are_413() {
    let server = Server::start();
    let big_event = json!({"api_key": PROJECT_KEY, "batch": [event("big", "u", json!({"blob": "x".repeat(1_100_000)}))]});
    let (status, detail) = refusal(server.post_batch_raw(big_event.to_string()));
    assert!(status == 413 && detail.contains("1 MB"), "{detail}");

    let over_event_path_limit = json!([{"event": "e", "distinct_id": "u", "token": PROJECT_KEY, "properties": {"blob": "x".repeat(3 * 1024 * 1024)}}]);
    let response = server
        .client
        .post(server.url("/e/"))
        .json(&over_event_path_limit)
        .send()
        .unwrap();
    let (status, detail) = refusal(response);
    assert!(status == 413 && detail.contains("2 MiB"), "{detail}");

    let blobs: Vec<Value> = (0..21)
        .map(|i| {
            event(
                "e",
                &format!("u{i}"),
                json!({"blob": "x".repeat(1024 * 1024 - 200)}),
            )
        })
        .collect();
    let (status, detail) =
        refusal(server.post_batch_raw(json!({"api_key": PROJECT_KEY, "batch": blobs}).to_string()));
    assert!(status == 413 && detail.contains("20 MiB"), "{detail}");
    assert!(server.events("").is_empty());
}

#[test]
fn normalisation_of_ids_names_and_timestamps() {
    let server = Server::start();
    let now = chrono::Utc::now();
    server.capture(json!([
        {"event": "n".repeat(250), "distinct_id": 42, "timestamp": "2024-01-01T12:00:00Z"},
        {"event": "skewed", "distinct_id": "d".repeat(300), "timestamp": "2024-01-01T12:00:00Z"},
        {"event": "future", "distinct_id": "u", "timestamp": (now + chrono::Duration::hours(48)).to_rfc3339()},
        {"event": "offset", "distinct_id": "u", "offset": 60_000},
        {"event": "top-level-set", "distinct_id": "u", "$set": {"plan": "pro"}},
    ]));
    let events = server.events("");
    let find = |name: &str| events.iter().find(|e| e["event"] == name).unwrap().clone();
    let long = find(&"n".repeat(200));
    assert_eq!(long["distinct_id"], "42");
    assert_eq!(long["timestamp"].as_str().unwrap(), "2024-01-01T12:00:00Z");
    assert_eq!(find("skewed")["distinct_id"].as_str().unwrap().len(), 200);
    // More than 23 h ahead: refused with a warning, the rest of the batch stored.
    assert!(events.iter().all(|e| e["event"] != "future"));
    let offset: chrono::DateTime<chrono::Utc> = find("offset")["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(((now - offset).num_seconds() - 60).abs() < 10);
    assert_eq!(find("top-level-set")["properties"]["$set"]["plan"], "pro");
    assert_eq!(server.person("u").unwrap()["properties"]["plan"], "pro");
    assert!(server
        .warning_types()
        .contains(&"event_timestamp_out_of_range".to_string()));

    // Clock skew: sent_at one hour behind our clock moves the event one hour on.
    let sent_at = (now - chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"api_key": PROJECT_KEY, "sent_at": sent_at, "batch": [
        {"event": "with-skew", "distinct_id": "u", "timestamp": (now - chrono::Duration::hours(1) - chrono::Duration::minutes(5)).to_rfc3339()}]});
    assert_eq!(
        server
            .client
            .post(server.url("/batch/"))
            .json(&body)
            .send()
            .unwrap()
            .status(),
        200
    );
    let skewed: chrono::DateTime<chrono::Utc> = server.events("event=with-skew")[0]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(((now - skewed).num_seconds() - 300).abs() < 10, "{skewed}");
}

#[test]
fn metrics_and_health() {
    let server = Server::start();
    server.capture(json!([event("e", "u", json!({}))]));
    let _ = server
        .client
        .post(server.url("/batch/"))
        .body("nope")
        .send()
        .unwrap();
    let health: Value = server
        .client
        .get(server.url("/_health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = server.metrics();
    assert!(
        metrics.contains("cairn_events_accepted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cairn_events_rejected_total{status=\"400\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("cairn_batch_commit_seconds"), "{metrics}");
    assert!(metrics.contains("cairn_ingest_queue_depth"), "{metrics}");
    assert!(
        metrics.contains("cairn_journal_unloaded_bytes"),
        "{metrics}"
    );
    // DuckDB's memory, by what holds it: table data once events are stored.
    let database_bytes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("cairn_database_memory_bytes{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(database_bytes > 0.0, "{metrics}");
    assert!(
        metrics.contains("cairn_database_memory_bytes{tag=\"BASE_TABLE\"}"),
        "{metrics}"
    );
}
