//! Persons and groups live in the entity state on disk (`entities/`), not in
//! memory rebuilt at start: after a crash, a restart, or on a data directory
//! from before the entity state existed, merges, `$set_once` and `/flags`
//! carry on from what was stored, and `/metrics` shows the cache.

mod common;

use common::{event, Server, PROJECT_KEY};
use serde_json::{json, Value};

/// An anonymous visitor who signed up as ana@acme.io, at a company.
fn seed(server: &Server) -> Vec<Value> {
    let batch = vec![
        event(
            "$pageview",
            "anon-1",
            json!({"$set_once": {"first_seen": "landing"}}),
        ),
        event(
            "$identify",
            "ana",
            json!({"$anon_distinct_id": "anon-1", "$set": {"email": "ana@acme.io"},
                "$groups": {"company": "acme"}}),
        ),
        event(
            "$groupidentify",
            "ana",
            json!({"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}),
        ),
    ];
    // With uuids, as SDKs send them: a resent event is recognised by its uuid.
    let batch: Vec<Value> = batch
        .into_iter()
        .map(|mut e| {
            e["uuid"] = json!(uuid::Uuid::now_v7());
            e
        })
        .collect();
    server.capture(Value::Array(batch.clone()));
    server.create_flag(
        json!({"key": "acme-staff", "filters": {"groups": [{"properties": [
        {"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}]}]}}),
    );
    server.create_flag(json!({"key": "enterprise", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}]}}));
    batch
}

fn flags(server: &Server, distinct_id: &str) -> Value {
    let response = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"api_key": PROJECT_KEY, "distinct_id": distinct_id, "groups": {"company": "acme"}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

/// What the seeded state must answer, however the server was restarted.
fn assert_carries_on(server: &Server, seeded: Vec<Value>) {
    let answer = flags(server, "anon-1");
    assert_eq!(answer["flags"]["acme-staff"]["enabled"], true, "{answer}");
    assert_eq!(answer["flags"]["enterprise"]["enabled"], true, "{answer}");

    // The merged person takes more events, under either id; `$set_once`
    // keeps the first value; the company keeps its index and properties.
    server.capture(json!([
        event(
            "e",
            "anon-1",
            json!({"$set_once": {"first_seen": "later"}, "$set": {"seats": 3}})
        ),
        event("e", "ana", json!({"$groups": {"company": "acme"}})),
        event(
            "$groupidentify",
            "ana",
            json!({"$group_type": "company", "$group_key": "acme",
            "$group_set": {"seats": 40}})
        ),
    ]));
    let person = server.person("ana").expect("ana");
    assert_eq!(server.person("anon-1").unwrap()["id"], person["id"]);
    let properties = &person["properties"];
    assert_eq!(properties["first_seen"], "landing", "{person}");
    assert_eq!(properties["email"], "ana@acme.io");
    assert_eq!(properties["seats"], 3);
    let company = server.group(0, "acme").expect("acme");
    assert_eq!(
        company["group_properties"],
        json!({"plan": "enterprise", "seats": 40})
    );
    let types = server.get("/groups_types/");
    assert_eq!(types.as_array().map(Vec::len), Some(1), "{types}");

    // Resent events are still recognised.
    server.capture(Value::Array(seeded));
    assert_eq!(server.events("event=%24identify").len(), 1);
    assert_eq!(server.events("event=%24pageview").len(), 1);
}

#[test]
fn persons_and_groups_outlive_a_restart() {
    let mut server = Server::start();
    let seeded = seed(&server);
    server.stop();
    assert!(
        server.data_dir().join("event-uuids.filters").is_file(),
        "a stop saves the uuid filters"
    );
    server.spawn();
    assert_carries_on(&server, seeded);
}

#[test]
fn persons_and_groups_outlive_a_crash() {
    let mut server = Server::start();
    let seeded = seed(&server);
    server.kill();
    server.spawn();
    assert_carries_on(&server, seeded);
}

#[test]
fn a_data_directory_from_before_the_entity_state_gets_one_at_start() {
    let mut server = Server::start();
    let seeded = seed(&server);
    server.kill();
    for gone in ["entities", "event-uuids.filters"] {
        let path = server.data_dir().join(gone);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    server.spawn();
    assert!(server.data_dir().join("entities").is_dir());
    assert_carries_on(&server, seeded);
}

#[test]
fn metrics_show_the_entity_cache_and_store() {
    let server = Server::start_with(&["--entity-cache-size", "16MiB"]);
    seed(&server);
    flags(&server, "ana");
    let metrics = server.metrics();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
            .parse()
            .unwrap()
    };
    // 16 MiB, of which a quarter goes to the store's block cache.
    assert_eq!(
        value("cairn_entity_cache_capacity_bytes"),
        (12 << 20) as f64
    );
    assert!(value("cairn_entity_cache_bytes") > 0.0);
    assert!(
        value("cairn_entity_cache_entries") >= 3.0,
        "ana, her id, acme"
    );
    assert!(value("cairn_entity_cache_hits_total") >= 1.0);
    let rate = value("cairn_entity_cache_hit_rate");
    assert!((0.0..=1.0).contains(&rate) && rate > 0.0, "{rate}");
    assert!(value("cairn_entity_store_disk_bytes") > 0.0);
    // What was just written is still in the store's write buffer.
    assert!(value("cairn_entity_store_write_buffer_bytes") > 0.0);
    let block_cache = value("cairn_entity_store_block_cache_bytes");
    assert!(
        (0.0..=(4 << 20) as f64).contains(&block_cache),
        "{block_cache}"
    );
}
