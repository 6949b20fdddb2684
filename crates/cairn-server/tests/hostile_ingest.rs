//! Hostile ingestion against the real binary: decompression bombs on capture
//! and `/flags`, event times chrono cannot represent, and groups that grow
//! without bound. Each is refused with a message naming the limit, quickly
//! and in bounded memory; the server keeps serving capture, `/flags` and the
//! UI, and what was stored before is intact.

mod common;

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use common::{event, memory_kb, Server, PROJECT_KEY};
use serde_json::{json, Value};

/// The server's memory may not pass this while it refuses a bomb.
const RSS_LIMIT_KB: u64 = 300 * 1024;
/// A bomb must be refused within this.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
const FORM: &str = "application/x-www-form-urlencoded";

/// lz-string base64 that expands to `(codes + 1)(codes + 2) / 2` times "a":
/// every code names the dictionary entry it defines (lz-string's bit layout:
/// codes least significant bit first, in 6-bit characters most significant
/// bit first).
fn lz64_bomb(codes: u32) -> String {
    const KEY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    let mut chars = Vec::new();
    let (mut buffer, mut filled) = (0u8, 0);
    let mut write = |width: u32, value: u32| {
        for position in 0..width {
            buffer = (buffer << 1) | ((value >> position) & 1) as u8;
            filled += 1;
            if filled == 6 {
                chars.push(KEY[buffer as usize]);
                (buffer, filled) = (0, 0);
            }
        }
    };
    write(2, 0); // a literal of 8 bits
    write(8, u32::from(b'a'));
    let (mut entries, mut width, mut enlarge_in) = (4u32, 3, 4u64);
    for _ in 0..codes {
        write(width, entries);
        entries += 1;
        enlarge_in -= 1;
        if enlarge_in == 0 {
            enlarge_in = 1 << width;
            width += 1;
        }
    }
    write(width, 2); // end of stream
    write(6, 0);
    String::from_utf8(chars).unwrap()
}

/// ~2 GB once expanded.
fn big_lz64_bomb() -> &'static str {
    static BOMB: OnceLock<String> = OnceLock::new();
    BOMB.get_or_init(|| lz64_bomb(63_000))
}

/// 1 GiB of spaces, gzipped to about 1 MB.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..1024 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.finish().unwrap()
    })
}

fn form_data(data: &str, compression: Option<&str>) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("data", data);
    if let Some(compression) = compression {
        form.append_pair("compression", compression);
    }
    form.finish().into_bytes()
}

struct Attack {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

/// Sends `attack` and requires a 413 naming the bound, within a second,
/// with the server's memory high-water mark under the limit.
fn assert_refused_quickly(server: &Server, pid: u32, attack: Attack) {
    let started = Instant::now();
    let response = server
        .client
        .post(server.url(attack.path))
        .header("Content-Type", attack.content_type)
        .body(attack.body)
        .send()
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let (rss, peak) = memory_kb(pid);
    eprintln!(
        "{}: {status} in {elapsed:?}, server RSS {rss} kB, peak {peak} kB",
        attack.name
    );
    assert_eq!(status, 413, "{}: {body}", attack.name);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("20 MiB"), "{}: {detail}", attack.name);
    assert!(elapsed < REFUSAL_TIME, "{}: took {elapsed:?}", attack.name);
    assert!(peak < RSS_LIMIT_KB, "{}: peak RSS {peak} kB", attack.name);
}

/// Capture, `/flags` and a UI page answer, and the events stored so far
/// (named by `expected`) are all there.
fn assert_still_serving(server: &Server, expected: &[&str]) {
    server.capture(json!([event("after", "survivor", json!({}))]));
    let flags = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"token": PROJECT_KEY, "distinct_id": "survivor"}))
        .send()
        .unwrap();
    assert_eq!(flags.status(), 200, "/flags: {}", flags.text().unwrap());
    let page = server.client.get(server.url("/login")).send().unwrap();
    assert_eq!(page.status(), 200, "UI: {}", page.text().unwrap());
    let names: Vec<String> = server
        .events("")
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for name in expected.iter().chain(&["after"]) {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
}

#[test]
fn the_lz64_bomb_helper_writes_what_lz_string_reads() {
    let expanded = lz_str::decompress_from_base64(&lz64_bomb(200)).unwrap();
    assert_eq!(expanded.len(), 201 * 202 / 2);
    assert!(expanded.iter().all(|&unit| unit == u16::from(b'a')));
}

#[test]
fn lz64_bombs_are_refused_at_the_bound_on_capture_and_flags() {
    let server = Server::start();
    server.capture(json!([event("before", "u", json!({}))]));
    let pid = server.pid();
    let bomb = big_lz64_bomb();
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    for (name, path) in [
        ("lz64 form on /e/", "/e/"),
        ("lz64 form on /batch/", "/batch/"),
        ("lz64 form on /flags/", "/flags/?v=2"),
        ("lz64 form on /decide/", "/decide/?v=3"),
    ] {
        let attack = Attack {
            name,
            path,
            content_type: FORM,
            body: form_data(bomb, Some("lz64")),
        };
        assert_refused_quickly(&server, pid, attack);
    }
    // The compression named in the query string instead of the form.
    let attack = Attack {
        name: "lz64 named in the query",
        path: "/e/?compression=lz64",
        content_type: FORM,
        body: form_data(bomb, None),
    };
    assert_refused_quickly(&server, pid, attack);
    assert_still_serving(&server, &["before"]);
}

#[test]
fn gzip_and_base64_bombs_are_refused_at_the_bound() {
    let server = Server::start();
    server.capture(json!([event("before", "u", json!({}))]));
    let pid = server.pid();
    let gzip = gzip_bomb();
    let base64 = base64::engine::general_purpose::STANDARD.encode(gzip);
    let attacks = [
        (
            "gzip body on /batch/",
            "/batch/",
            "application/json",
            gzip.to_vec(),
        ),
        (
            "gzip body on /flags/",
            "/flags/?v=2",
            "application/json",
            gzip.to_vec(),
        ),
        (
            "base64 of gzip on /e/",
            "/e/",
            "text/plain",
            base64.clone().into_bytes(),
        ),
        (
            "base64 of gzip on /batch/",
            "/batch/",
            "text/plain",
            base64.clone().into_bytes(),
        ),
        (
            "base64 of gzip on /flags/",
            "/flags/?v=2",
            "text/plain",
            base64.into_bytes(),
        ),
    ];
    for (name, path, content_type, body) in attacks {
        let attack = Attack {
            name,
            path,
            content_type,
            body,
        };
        assert_refused_quickly(&server, pid, attack);
    }
    assert_still_serving(&server, &["before"]);
}

#[test]
fn millions_of_tiny_events_in_one_request_are_refused_without_parsing_them() {
    let server = Server::start();
    server.capture(json!([event("before", "u", json!({}))]));
    let pid = server.pid();
    // Six million `{}` in 18 MB, gzipped to ~20 KB: parsed, ~0.7 GB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    write!(
        encoder,
        "{{\"api_key\": \"{PROJECT_KEY}\", \"batch\": [{{}}"
    )
    .unwrap();
    for _ in 0..(6_000_000 / 1000) {
        encoder.write_all(",{}".repeat(1000).as_bytes()).unwrap();
    }
    encoder.write_all(b"]}").unwrap();
    let started = Instant::now();
    let response = server
        .client
        .post(server.url("/batch/"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let (rss, peak) = memory_kb(pid);
    eprintln!("6M events: {status} in {elapsed:?}, server RSS {rss} kB, peak {peak} kB");
    assert_eq!(status, 413, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("6000001 events") && detail.contains("50000"),
        "{detail}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} kB");
    assert_still_serving(&server, &["before"]);
}

/// Milliseconds between now and chrono's earliest time, less `margin`.
fn offset_to_near_minimum(margin_ms: i64) -> i64 {
    (Utc::now() - DateTime::<Utc>::MIN_UTC).num_milliseconds() - margin_ms
}

#[test]
fn events_at_impossible_times_are_refused_with_a_warning_and_the_rest_stored() {
    let server = Server::start();
    server.capture(json!([event("before", "known", json!({}))]));
    let far_future = (Utc::now() + chrono::Duration::hours(48)).to_rfc3339();
    let personless = json!({"$process_person_profile": false});
    let bad = [
        json!({"event": "offset i64::MIN", "distinct_id": "u", "offset": i64::MIN}),
        json!({"event": "offset i64::MAX", "distinct_id": "u", "offset": i64::MAX}),
        // Lands 30 s after chrono's minimum: a minute before it is not a time.
        json!({"event": "near the minimum", "distinct_id": "known", "offset": offset_to_near_minimum(30_000),
            "properties": personless}),
        json!({"event": "near the minimum as text", "distinct_id": "known",
            "timestamp": "-262143-01-01T00:00:30Z", "properties": personless}),
        json!({"event": "year one", "distinct_id": "u", "timestamp": "0001-01-01T00:00:00Z"}),
        json!({"event": "1999", "distinct_id": "u", "timestamp": "1999-12-31T23:59:59Z"}),
        json!({"event": "far future", "distinct_id": "u", "timestamp": far_future}),
    ];
    let good = [
        json!({"event": "good now", "distinct_id": "u"}),
        json!({"event": "good 2000", "distinct_id": "u", "timestamp": "2000-01-01T00:00:00Z"}),
    ];
    let batch: Vec<Value> = bad.iter().chain(&good).cloned().collect();
    let response = server.post_batch(Value::Array(batch));
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());

    // A sent_at far ahead of the timestamp skews it to before chrono's minimum.
    let skewed = json!({"api_key": PROJECT_KEY, "sent_at": "+200000-01-01T00:00:00Z", "batch": [
        {"event": "skewed past the minimum", "distinct_id": "known", "timestamp": "2024-01-01T00:00:00Z",
            "properties": personless},
    ]});
    let response = server.post_batch_raw(skewed.to_string());
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());

    // One event alone on a browser path, as posthog-js sends it.
    let single = json!({"event": "alone", "distinct_id": "u", "offset": i64::MIN,
        "properties": {"token": PROJECT_KEY}});
    let response = server
        .client
        .post(server.url("/e/"))
        .json(&single)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());

    let stored: Vec<String> = server
        .events("")
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec!["before", "good now", "good 2000"];
    expected.sort();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    assert_eq!(stored_sorted, expected);

    let mut refused: Vec<String> = server
        .warnings()
        .iter()
        .filter(|w| w["type"] == "event_timestamp_out_of_range")
        .map(|w| w["details"]["event"].as_str().unwrap().to_string())
        .collect();
    refused.sort();
    let mut expected: Vec<String> = bad
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .chain(["skewed past the minimum".into(), "alone".into()])
        .collect();
    expected.sort();
    assert_eq!(refused, expected);
    assert_still_serving(&server, &["before", "good now", "good 2000"]);
}

#[test]
fn an_oversize_group_update_is_refused_and_the_group_keeps_its_properties() {
    let server = Server::start();
    let identify = |set: Value| {
        json!({"event": "$groupidentify", "distinct_id": "admin", "properties": {
            "$group_type": "company", "$group_key": "acme", "$group_set": set}})
    };
    server.capture(json!([identify(json!({"plan": "pro"}))]));
    // 700 kB: under the 1 MB event limit, over the 640 kB properties cap.
    server.capture(json!([identify(json!({"blob": "x".repeat(700_000)}))]));
    let group = server.group(0, "acme").expect("the group");
    assert_eq!(group["group_properties"], json!({"plan": "pro"}), "{group}");
    let warning = server
        .warnings()
        .into_iter()
        .find(|w| w["type"] == "group_properties_size_violation")
        .expect("a size warning");
    assert_eq!(warning["details"]["group_key"], "acme");
    assert_eq!(warning["details"]["limit"], 655_360);

    // Growing past the cap a little at a time is refused the same way.
    let half = "y".repeat(400_000);
    server.capture(json!([identify(json!({"first": half}))]));
    server.capture(json!([identify(json!({"second": half}))]));
    let group = server.group(0, "acme").unwrap();
    let properties = group["group_properties"].as_object().unwrap();
    assert!(properties.contains_key("first") && !properties.contains_key("second"));

    // A new group whose first properties are over the cap gets none of them.
    server.capture(json!([{"event": "$groupidentify", "distinct_id": "admin", "properties": {
        "$group_type": "company", "$group_key": "huge", "$group_set": {"blob": "x".repeat(700_000)}}}]));
    assert!(server
        .group(0, "huge")
        .is_none_or(|g| g["group_properties"] == json!({})));
    assert_still_serving(&server, &["$groupidentify"]);
}
