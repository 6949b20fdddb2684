//! Person and group rules over HTTP, as PostHog applies them.

mod common;

use common::{event, properties_without_creator, Server};
use serde_json::{json, Value};

#[test]
fn set_set_once_and_unset_precedence() {
    let server = Server::start();
    server.capture(json!([
        {"event": "$set", "distinct_id": "u2", "$set": {"plan": "free"}},
        {"event": "$set_once", "distinct_id": "u2", "$set_once": {"plan": "pro", "first": "x"}},
        {"event": "$set", "distinct_id": "u2", "$set": {"plan": "team"}},
        {"event": "$set_once", "distinct_id": "u2", "$set_once": {"first": "y"}},
        event("e", "u3", json!({"$set": {"k": 1, "z": 2}, "$set_once": {"k": 99, "o": 1}, "$unset": ["z"]})),
    ]));
    assert_eq!(
        properties_without_creator(&server.person("u2").unwrap()),
        json!({"plan": "team", "first": "x"})
    );
    assert_eq!(
        properties_without_creator(&server.person("u3").unwrap()),
        json!({"k": 1, "o": 1})
    );
}

#[test]
fn alias_merges_into_the_previous_id_and_target_wins() {
    let server = Server::start();
    server.capture(json!([
        {"event": "$set", "distinct_id": "B", "$set": {"name": "b", "only_b": 1}, "timestamp": "2024-01-01T00:00:00Z"},
        {"event": "$set", "distinct_id": "A", "$set": {"name": "a", "only_a": 1}, "timestamp": "2024-02-01T00:00:00Z"},
    ]));
    // posthog-python's alias(previous_id="A", distinct_id="B").
    server.capture(json!([event(
        "$create_alias",
        "A",
        json!({"distinct_id": "A", "alias": "B"})
    )]));
    let person = server.person("A").unwrap();
    assert_eq!(server.person("B").unwrap()["id"], person["id"]);
    let mut ids: Vec<&str> = person["distinct_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["A", "B"]);
    assert_eq!(
        properties_without_creator(&person),
        json!({"name": "a", "only_a": 1, "only_b": 1})
    );
    assert_eq!(person["is_identified"], true);
    assert_eq!(person["created_at"], "2024-01-01T00:00:00Z");
    let persons = server.get("/persons/");
    assert_eq!(persons["results"].as_array().unwrap().len(), 1);

    // The merged-away person's events now belong to the surviving person.
    let by_person = server.events(&format!("person_id={}", person["id"].as_str().unwrap()));
    assert_eq!(by_person.len(), 3);
}

#[test]
fn identified_sources_and_illegal_ids_are_not_merged() {
    let server = Server::start();
    server.capture(json!([
        {"event": "$set", "distinct_id": "A", "$set": {"a": 1}},
        event("$identify", "A", json!({"$anon_distinct_id": "anon-a"})),
        {"event": "$set", "distinct_id": "C", "$set": {"c": 1}},
    ]));
    server.capture(json!([event(
        "$identify",
        "C",
        json!({"$anon_distinct_id": "A"})
    )]));
    assert_ne!(
        server.person("C").unwrap()["id"],
        server.person("A").unwrap()["id"]
    );
    assert!(server
        .warning_types()
        .contains(&"cannot_merge_already_identified".to_string()));

    server.capture(json!([event(
        "$identify",
        "D",
        json!({"$anon_distinct_id": "A"})
    )]));
    assert_eq!(
        server.person("D").unwrap()["id"],
        server.person("A").unwrap()["id"]
    );

    server.capture(json!([
        event("$create_alias", "anonymous", json!({"alias": "u9"})),
        event("$create_alias", "u9", json!({"alias": "null"})),
    ]));
    assert_ne!(
        server.person("u9").unwrap()["id"],
        server.person("anonymous").unwrap()["id"]
    );
    assert!(server.person("null").is_none());
    assert!(server
        .warning_types()
        .contains(&"cannot_merge_with_illegal_distinct_id".to_string()));
    assert_eq!(
        server.events("event=%24create_alias").len(),
        2,
        "refused merges still store their events"
    );
}

#[test]
fn personless_events_make_no_person_and_no_group() {
    let server = Server::start();
    server.capture(json!([event(
        "anon_evt",
        "f1b4c0de-0000-4000-8000-000000000001",
        json!({"$process_person_profile": false, "$groups": {"company": "acme"}, "$set": {"x": 1}})
    )]));
    assert!(server
        .person("f1b4c0de-0000-4000-8000-000000000001")
        .is_none());
    let stored = &server.events("")[0];
    assert_eq!(stored["groups"], json!({}));
    assert!(server.get("/groups_types/").as_array().unwrap().is_empty());
}

#[test]
fn group_types_appear_in_first_seen_order_up_to_the_limit() {
    let server = Server::start();
    let identifies: Vec<Value> = (1..=6)
        .map(|i| {
            event(
                "$groupidentify",
                "u",
                json!({"$group_type": format!("t{i}"), "$group_key": "k", "$group_set": {"n": i}}),
            )
        })
        .collect();
    server.capture(Value::Array(identifies));
    let types = server.get("/groups_types/");
    let listed: Vec<(String, u64)> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["group_type"].as_str().unwrap().to_string(),
                t["group_type_index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        (1..=5)
            .map(|i| (format!("t{i}"), i - 1))
            .collect::<Vec<_>>()
    );
    assert!(server
        .warning_types()
        .contains(&"group_type_limit_reached".to_string()));

    server.capture(json!([event(
        "e",
        "u",
        json!({"$groups": {"t6": "k", "t2": "k2"}})
    )]));
    let stored = server.events("event=e");
    assert_eq!(stored.len(), 1, "over-the-limit events are still stored");
    assert_eq!(stored[0]["groups"], json!({"t2": "k2"}));
    assert!(
        server.group(1, "k2").is_some(),
        "a group referenced by an event exists"
    );
}

#[test]
fn the_group_type_limit_is_configurable() {
    let server = Server::start_with(&["--group-type-limit", "7"]);
    let events: Vec<Value> = (0..7)
        .map(|i| event("e", "u", json!({"$groups": {format!("t{i}"): "k"}})))
        .collect();
    server.capture(Value::Array(events));
    assert_eq!(server.get("/groups_types/").as_array().unwrap().len(), 7);
    assert_eq!(server.events("group_type_index=6&group_key=k").len(), 1);
}

#[test]
fn groupidentify_merges_properties_and_groups_are_listed() {
    let server = Server::start();
    server.capture(json!([event(
        "$groupidentify",
        "x",
        json!({"$group_type": "company", "$group_key": "acme",
        "$group_set": {"name": "Acme", "seats": 5}})
    )]));
    server.capture(json!([event(
        "$groupidentify",
        "y",
        json!({"$group_type": "company", "$group_key": "acme",
        "$group_set": {"seats": 7, "tier": "gold"}})
    )]));
    let group = server.group(0, "acme").unwrap();
    assert_eq!(
        group["group_properties"],
        json!({"name": "Acme", "seats": 7, "tier": "gold"})
    );
    assert_eq!(group["display_name"], "Acme");
    assert!(
        server.person("x").is_none(),
        "$groupidentify creates no person"
    );

    // Groups only referenced by events are listed too, under their key.
    server.capture(json!([event(
        "e",
        "u",
        json!({"$groups": {"company": "globex"}})
    )]));
    let listed = server.get("/groups/?group_type_index=0");
    let keys: Vec<&str> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"acme") && keys.contains(&"globex"));
    let found = server.get("/groups/?group_type_index=0&search=gold");
    assert_eq!(found["results"][0]["group_key"], "acme");

    let response = server
        .authed(server.client.get(server.api("/groups/")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().unwrap();
    assert_eq!(body["attr"], "group_type_index");

    let definitions = server.get("/groups/property_definitions");
    assert_eq!(definitions["0"].as_array().unwrap().len(), 3);
    let values = server.get("/groups/property_values?group_type_index=0&key=tier");
    assert_eq!(values, json!([{"name": "gold", "count": 1}]));
}

#[test]
fn bad_group_keys_are_warnings_and_the_event_is_kept() {
    let server = Server::start();
    let long = "k".repeat(401);
    server.capture(json!([
        event(
            "$groupidentify",
            "u",
            json!({"$group_type": "company", "$group_key": long})
        ),
        event(
            "e",
            "u",
            json!({"$groups": {"company": ["a", "b"], "team": 7}})
        ),
    ]));
    assert!(server.group(0, &long).is_none());
    let types = server.warning_types();
    assert!(
        types.contains(&"group_key_too_long".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"invalid_group_key".to_string()),
        "{types:?}"
    );
    assert_eq!(server.events("").len(), 2);
    // An invalid key claims no group-type slot: `team` is the first type.
    let types = server.get("/groups_types/");
    assert_eq!(types.as_array().unwrap().len(), 1);
    assert_eq!(types[0]["group_type"], "team");
    assert!(server.group(0, "7").is_some(), "numbers are keys as text");
}

#[test]
fn group_type_display_names_can_be_changed() {
    let server = Server::start();
    server.capture(json!([event(
        "e",
        "u",
        json!({"$groups": {"company": "acme"}})
    )]));
    let response = server
        .authed(server.client.patch(server.api("/groups_types/update_metadata")))
        .json(&json!([{"group_type_index": 0, "name_singular": "organisation", "name_plural": "organisations"}]))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let types = server.get("/groups_types/");
    assert_eq!(types[0]["name_plural"], "organisations");
    assert_eq!(types[0]["group_type"], "company");
    let response = server
        .authed(
            server
                .client
                .patch(server.api("/groups_types/update_metadata")),
        )
        .json(&json!([{"group_type_index": 4, "name_singular": "x"}]))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
}

/// The seed's payloads for libraries without group support (Segment's
/// among them): `$groups` on a tracked event and `$groupidentify` with
/// `$group_set`, the distinct id inside the properties, posted to `/capture/`.
#[test]
fn segment_style_payloads_from_the_group_analytics_docs() {
    let server = Server::start();
    let post = |body: Value| {
        let response = server
            .client
            .post(server.url("/capture/"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    };
    post(
        json!({"api_key": common::PROJECT_KEY, "event": "some event",
        "properties": {"distinct_id": "segment_user", "key1": "value1", "key2": "value2",
            "$groups": {"company": "id:5"}}}),
    );
    post(
        json!({"api_key": common::PROJECT_KEY, "event": "$groupidentify",
        "properties": {"distinct_id": "segment_user", "$group_type": "company", "$group_key": "id:5",
            "$group_set": {"company_name": "Awesome Inc", "employees": 11}}}),
    );
    let event = &server.events("event=some%20event")[0];
    assert_eq!(event["distinct_id"], "segment_user");
    assert_eq!(event["properties"]["$groups"], json!({"company": "id:5"}));
    assert_eq!(event["properties"]["key1"], "value1");
    let company = server.group(0, "id:5").unwrap();
    assert_eq!(
        company["group_properties"],
        json!({"company_name": "Awesome Inc", "employees": 11})
    );
    assert!(server.person("segment_user").is_some());
}

/// PostHog stores `$group_<index>: <key as sent>` in the properties of an
/// event carrying `$groups`: the events API shows it and a property filter
/// on `$group_0` selects by it.
#[test]
fn groups_are_written_into_event_properties() {
    let server = Server::start();
    server.capture(json!([
        event(
            "$groupidentify",
            "u",
            json!({"$group_type": "company", "$group_key": "acme"})
        ),
        event(
            "$groupidentify",
            "u",
            json!({"$group_type": "team", "$group_key": "core"})
        ),
        event(
            "opened",
            "u",
            json!({"$groups": {"company": "acme", "team": "core"}})
        ),
        event("opened", "v", json!({"$groups": {"company": "globex"}})),
        event("opened", "w", json!({"$groups": {"company": 42}})),
        event("opened", "x", json!({})),
    ]));
    let group_props = |distinct_id: &str| {
        let stored = server.events(&format!("event=opened&distinct_id={distinct_id}"));
        let props = stored[0]["properties"].as_object().unwrap().clone();
        let mut groups: Vec<(String, Value)> = props
            .into_iter()
            .filter(|(k, _)| k.starts_with("$group_"))
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups
    };
    let pair = |k: &str, v: Value| (k.to_string(), v);
    assert_eq!(
        group_props("u"),
        [
            pair("$group_0", json!("acme")),
            pair("$group_1", json!("core"))
        ]
    );
    assert_eq!(group_props("v"), [pair("$group_0", json!("globex"))]);
    assert_eq!(group_props("w"), [pair("$group_0", json!(42))], "as sent");
    assert!(group_props("x").is_empty());

    let response = server
        .authed(server.client.post(server.api("/query/")))
        .json(
            &json!({"query": {"kind": "TrendsQuery", "dateRange": {"date_from": "-1d"},
            "series": [{"kind": "EventsNode", "event": "opened", "math": "total"}],
            "trendsFilter": {"display": "BoldNumber"},
            "properties": [{"key": "$group_0", "value": ["acme", "42"],
                "operator": "exact", "type": "event"}]}}),
        )
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["results"][0]["aggregated_value"], json!(2), "{body}");
}
