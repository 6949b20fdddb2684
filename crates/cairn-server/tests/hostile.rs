//! Hostile and malformed capture requests: each is refused with a 4xx whose
//! message names the problem, the server stays up, and what was stored
//! before is intact.

mod common;

use std::io::Write;

use base64::Engine;
use common::{event, Server, PROJECT_KEY};
use serde_json::{json, Value};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn batch(events: Value) -> Vec<u8> {
    json!({"api_key": PROJECT_KEY, "batch": events})
        .to_string()
        .into_bytes()
}

/// One hostile request: where it goes, its content type and body, and a
/// phrase the refusal must contain.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    expect: &'static str,
}

fn case(name: &'static str, body: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        path: "/batch/",
        content_type: "application/json",
        body,
        expect,
    }
}

fn corpus() -> Vec<Case> {
    let good = batch(json!([event("e", "u", json!({}))]));
    let mut cases = vec![
        case("truncated gzip", gzip(&good)[..20].to_vec(), "gzip"),
        // 1 GiB of zeros, 1 MB compressed.
        case(
            "gzip bomb",
            gzip(&vec![b' '; 1 << 30]),
            "exceeds 20 MiB",
        ),
        case("invalid UTF-8", [b"{\"api_key\": \"".as_slice(), &[0xff, 0xfe], b"\"}"].concat(), "UTF-8"),
        case("NUL bytes", b"{\"api_key\"\0: 1}".to_vec(), "JSON"),
        case(
            "deeply nested JSON",
            format!(
                "{{\"api_key\": \"{PROJECT_KEY}\", \"batch\": [{{\"event\": \"e\", \"distinct_id\": \"u\", \"properties\": {{\"deep\": {}{}}}}}]}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            "JSON",
        ),
        case("a JSON string", b"\"hello\"".to_vec(), "JSON"),
        case("a JSON number", b"42".to_vec(), ""),
        case("batch is an object", batch(json!({"event": "e"})), "`batch`"),
        case("batch of strings", batch(json!(["e"])), "event #0"),
        case("event is null", batch(json!([{"event": null, "distinct_id": "u"}])), "event"),
        case("properties is a list", batch(json!([{"event": "e", "distinct_id": "u", "properties": [1, 2]}])), "properties"),
        case("uuid is a bool", batch(json!([{"event": "e", "distinct_id": "u", "uuid": true}])), "uuid"),
        case("$set is a string", batch(json!([{"event": "e", "distinct_id": "u", "$set": "x"}])), "$set"),
        case("api_key is a number", json!({"api_key": 5, "batch": [event("e", "u", json!({}))]}).to_string().into_bytes(), "api_key"),
        case("an empty event name", batch(json!([{"event": "", "distinct_id": "u"}])), "event"),
    ];
    let huge: serde_json::Map<String, Value> =
        (0..200_000).map(|i| (format!("p{i}"), json!(i))).collect();
    cases.push(case(
        "huge property count",
        batch(json!([{"event": "e", "distinct_id": "u", "properties": huge}])),
        "",
    ));
    cases.push(Case {
        name: "invalid base64 form",
        path: "/e/",
        content_type: "application/x-www-form-urlencoded",
        body: b"data=%%%not-base64%%%&compression=base64".to_vec(),
        expect: "base64",
    });
    cases.push(Case {
        name: "base64 of garbage",
        path: "/e/",
        content_type: "application/x-www-form-urlencoded",
        body: format!(
            "data={}",
            base64::engine::general_purpose::STANDARD.encode([0xff, 0x00, 0x13])
        )
        .into_bytes(),
        expect: "",
    });
    cases.push(Case {
        name: "an image",
        path: "/batch/",
        content_type: "image/png",
        body: vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0],
        expect: "",
    });
    cases.push(Case {
        name: "multipart form",
        path: "/e/",
        content_type: "multipart/form-data; boundary=x",
        body: b"--x\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{}\r\n--x--".to_vec(),
        expect: "",
    });
    cases
}

#[test]
fn malformed_requests_are_refused_by_name_and_harm_nothing() {
    let server = Server::start();
    server.capture(json!([event("before", "u", json!({"kept": true}))]));
    let mut wrong = Vec::new();
    for case in corpus() {
        let response = server
            .client
            .post(server.url(case.path))
            .header("Content-Type", case.content_type)
            .body(case.body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or_default();
        let refused = (400..500).contains(&status) && !detail.is_empty();
        if !refused || !detail.contains(case.expect) {
            wrong.push(format!(
                "{}: {status} {text} (expected `{}`)",
                case.name, case.expect
            ));
        }
        let health = server.client.get(server.url("/_health")).send().unwrap();
        assert!(health.status().is_success(), "down after {}", case.name);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let stored = server.events("");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["properties"]["kept"], true);
}

/// Where PostHog takes a wrong type, Cairn does too: a distinct id of any
/// JSON type is stringified, and a timestamp that is neither a date string
/// nor epoch seconds or milliseconds is ignored (the event gets the time it
/// arrived) with an ingestion warning.
#[test]
fn wrong_types_posthog_tolerates_are_tolerated_the_same_way() {
    let server = Server::start();
    server.capture(json!([
        {"event": "object id", "distinct_id": {"a": 1}},
        {"event": "boolean time", "distinct_id": "u", "timestamp": true},
    ]));
    assert_eq!(
        server.events("event=object%20id")[0]["distinct_id"],
        "{\"a\":1}"
    );
    let late = &server.events("event=boolean%20time")[0];
    let stored: chrono::DateTime<chrono::Utc> =
        late["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(chrono::Utc::now() - stored < chrono::Duration::minutes(1));
    assert!(
        server
            .warning_types()
            .iter()
            .any(|t| t.contains("timestamp")),
        "{:?}",
        server.warning_types()
    );
}

#[test]
fn stalled_clients_are_cut_off_and_hold_no_one_up() {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let server = Server::start_with(&["--request-timeout", "2"]);
    let address = server.base.trim_start_matches("http://").to_string();
    // Half stall in the middle of the body, half in the middle of the headers.
    let stalled: Vec<(bool, TcpStream)> = (0..40)
        .map(|i| {
            let mut stream = TcpStream::connect(&address).unwrap();
            let in_body = i % 2 == 0;
            let request: &[u8] = if in_body {
                b"POST /batch/ HTTP/1.1\r\nHost: cairn\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"api_key\""
            } else {
                b"POST /batch/ HTTP/1.1\r\nHost: cairn\r\nContent-Le"
            };
            stream.write_all(request).unwrap();
            (in_body, stream)
        })
        .collect();
    let started = Instant::now();
    for _ in 0..10 {
        server.capture(json!([event("meanwhile", "u", json!({}))]));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "capture waited on stalled clients: {:?}",
        started.elapsed()
    );
    for (in_body, mut stream) in stalled {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        // Answered, then closed; never left hanging.
        stream.read_to_string(&mut answer).unwrap();
        if in_body {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            assert!(answer.contains("did not arrive within 2 s"), "{answer}");
        }
    }
    assert_eq!(server.events("event=meanwhile").len(), 10);
}
