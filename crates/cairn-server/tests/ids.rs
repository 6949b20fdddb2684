//! Distinct ids and group keys mean the same to capture, person processing
//! and `/flags` (one set of rules, `cairn_core::ids`), and a project key that
//! opens nothing is refused before anything else of a request is read.

mod common;

use common::{event, Server, PROJECT_KEY};
use serde_json::{json, Value};

fn flags(server: &Server, body: Value) -> Value {
    let response = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn flags_find_the_person_and_group_stored_under_ids_with_nul() {
    let server = Server::start();
    server.capture(json!([
        {"event": "$groupidentify", "distinct_id": "admin",
         "properties": {"$group_type": "company", "$group_key": "acme\0", "$group_set": {"plan": "enterprise"}}},
        event("signed up", "ana\0", json!({"$set": {"email": "ana@acme.io"}})),
    ]));
    server.create_flag(
        json!({"key": "acme-staff", "filters": {"groups": [{"properties": [
        {"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}]}]}}),
    );
    server.create_flag(json!({"key": "enterprise", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}]}}));

    let answer = flags(
        &server,
        json!({"token": PROJECT_KEY, "distinct_id": "ana\0", "groups": {"company": "acme\0"}}),
    );
    assert_eq!(answer["flags"]["acme-staff"]["enabled"], true, "{answer}");
    assert_eq!(answer["flags"]["enterprise"]["enabled"], true, "{answer}");
}

#[test]
fn a_group_key_too_long_to_be_stored_names_no_group_for_flags() {
    let server = Server::start();
    server.capture(json!([event(
        "e",
        "u",
        json!({"$groups": {"company": "acme"}})
    )]));
    server.create_flag(
        json!({"key": "companies", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [], "rollout_percentage": 100}]}}),
    );

    let longest = flags(
        &server,
        json!({"token": PROJECT_KEY, "distinct_id": "u", "groups": {"company": "k".repeat(400)}}),
    );
    assert_eq!(longest["flags"]["companies"]["enabled"], true, "{longest}");
    let too_long = flags(
        &server,
        json!({"token": PROJECT_KEY, "distinct_id": "u", "groups": {"company": "k".repeat(401)}}),
    );
    assert_eq!(too_long["flags"]["companies"]["enabled"], false);
    assert_eq!(
        too_long["flags"]["companies"]["reason"]["code"],
        "no_group_type"
    );
    // Ingestion does not attach such a key to an event either.
    server.capture(json!([event(
        "e",
        "u",
        json!({"$groups": {"company": "k".repeat(401)}})
    )]));
    assert!(server
        .warning_types()
        .contains(&"group_key_too_long".to_string()));
}

#[test]
fn merges_find_the_person_an_anonymous_id_was_stored_under() {
    let server = Server::start();
    let long = "y".repeat(250);
    server.capture(json!([
        event(
            "$pageview",
            "anon\0",
            json!({"$set": {"first_visit": "home"}})
        ),
        event(
            "$pageview",
            &long,
            json!({"$set": {"second_visit": "pricing"}})
        ),
    ]));
    server.capture(json!([
        event("$identify", "user", json!({"$anon_distinct_id": "anon\0"})),
        event("$create_alias", "user", json!({"alias": long})),
    ]));
    let person = server.person("user").expect("person");
    assert_eq!(person["properties"]["first_visit"], "home", "{person}");
    assert_eq!(person["properties"]["second_visit"], "pricing", "{person}");
    let mut ids: Vec<&str> = person["distinct_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["anon\u{FFFD}", "user", &"y".repeat(200)]);
}

#[test]
fn an_unknown_key_is_refused_before_the_rest_of_the_request_is_read() {
    let server = Server::start();
    // The event has no distinct id: a known key would get a 400 for it.
    let capture = server
        .client
        .post(server.url("/batch/"))
        .json(&json!({"api_key": "phc_nobody", "batch": [{"event": "e"}]}))
        .send()
        .unwrap();
    assert_eq!(capture.status(), 401);
    let detail = capture.json::<Value>().unwrap()["detail"].clone();
    assert!(detail.as_str().unwrap().contains("phc_nobody"), "{detail}");

    let flags = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"token": "phc_nobody", "distinct_id": ["not", "an", "id"]}))
        .send()
        .unwrap();
    assert_eq!(flags.status(), 401);
}

#[test]
fn the_api_finds_persons_and_events_by_the_distinct_id_as_sent() {
    let server = Server::start();
    let long = "x".repeat(250);
    server.capture(json!([
        event(
            "signed up",
            "ana\0",
            json!({"$set": {"email": "ana@acme.io"}})
        ),
        event("signed up", &long, json!({})),
    ]));
    for sent in ["ana%00", long.as_str()] {
        let persons = server.get(&format!("/persons/?distinct_id={sent}"));
        assert_eq!(
            persons["results"].as_array().unwrap().len(),
            1,
            "{sent}: {persons}"
        );
        let person = server.get(&format!("/persons/{sent}/"));
        assert!(person["uuid"].is_string(), "{sent}: {person}");
        assert_eq!(
            server.events(&format!("distinct_id={sent}")).len(),
            1,
            "{sent}"
        );
    }
}
