//! Feature flags through the real binary: the flags API and its refusals,
//! `/flags` and `/decide` answers from stored person and group properties,
//! and the definitions endpoint SDKs poll.

mod common;

use std::io::Write;

use base64::Engine;
use common::{event, Server, PERSONAL_KEY, PROJECT_KEY};
use reqwest::blocking::Response;
use serde_json::{json, Value};

fn create_flag(server: &Server, flag: Value) -> Response {
    server
        .authed(server.client.post(server.api("/feature_flags/")))
        .json(&flag)
        .send()
        .unwrap()
}

fn flags(server: &Server, path: &str, body: Value) -> Value {
    let response = server
        .client
        .post(server.url(path))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Companies on two plans, and a person who works at one of them.
fn seed(server: &Server) {
    server.capture(json!([
        {"event": "$groupidentify", "distinct_id": "admin",
         "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}},
        {"event": "$groupidentify", "distinct_id": "admin",
         "properties": {"$group_type": "company", "$group_key": "initech", "$group_set": {"plan": "free"}}},
        event("signed up", "ana", json!({"$set": {"email": "ana@acme.io"}, "$groups": {"company": "acme"}})),
    ]));
}

#[test]
fn refusals_name_the_field() {
    let server = Server::start();
    seed(&server);
    server
        .create_flag(json!({"key": "taken", "filters": {"groups": [{"rollout_percentage": 50}]}}));
    let cases = [
        (json!({"key": "taken"}), "key"),
        (json!({"key": "bad key!"}), "key"),
        (json!({"name": "no key"}), "key"),
        (
            json!({"key": "v", "filters": {"multivariate": {"variants": [
                {"key": "a", "rollout_percentage": 60}, {"key": "b", "rollout_percentage": 30}]}}}),
            "filters.multivariate.variants",
        ),
        (
            json!({"key": "g", "filters": {"aggregation_group_type_index": 4, "groups": []}}),
            "filters.aggregation_group_type_index",
        ),
        (
            json!({"key": "o", "filters": {"groups": [{"properties": [
                {"key": "email", "value": "x", "operator": "sounds_like", "type": "person"}]}]}}),
            "filters",
        ),
        (
            json!({"key": "w", "filters": {"groups": [{"variant": "ghost"}],
                "multivariate": {"variants": [{"key": "real", "rollout_percentage": 100}]}}}),
            "filters.groups.0.variant",
        ),
        (
            json!({"key": "d", "filters": {"groups": [{"properties": [
                {"key": "nope", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}}),
            "filters",
        ),
        (json!({"key": "t", "active": "yes"}), "active"),
    ];
    for (flag, attr) in cases {
        let response = create_flag(&server, flag.clone());
        assert_eq!(response.status(), 400, "{flag}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["attr"], attr, "{flag}: {body}");
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    let body: Value = create_flag(
        &server,
        json!({"key": "o", "filters": {"groups": [{"properties": [
        {"key": "email", "value": "x", "operator": "sounds_like"}]}]}}),
    )
    .json()
    .unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("sounds_like"),
        "{body}"
    );
    assert_eq!(
        server.get("/feature_flags/")["count"],
        1,
        "nothing refused was saved"
    );
}

#[test]
fn flags_crud_round_trip() {
    let server = Server::start();
    let flag = server.create_flag(json!({"key": "beta", "name": "Beta",
        "filters": {"groups": [{"properties": [], "rollout_percentage": 30}], "payloads": {"true": "{\"a\":1}"}}}),
    );
    assert_eq!(flag["version"], 1);
    assert_eq!(flag["active"], true);
    let id = flag["id"].as_i64().unwrap();
    let path = format!("/feature_flags/{id}/");
    assert_eq!(
        server.get(&path)["filters"]["groups"][0]["rollout_percentage"],
        30.0
    );

    let patched: Value = server
        .authed(server.client.patch(server.api(&path)))
        .json(&json!({"active": false}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (patched["active"].clone(), patched["version"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(patched["name"], "Beta", "fields not sent are kept");

    let deleted = server
        .authed(server.client.delete(server.api(&path)))
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = server
        .authed(server.client.get(server.api(&path)))
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404);
    // The key is free again.
    server.create_flag(json!({"key": "beta"}));
    let unauthorised = server
        .client
        .get(server.api("/feature_flags/"))
        .send()
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
}

#[test]
fn flags_read_stored_person_and_group_properties() {
    let server = Server::start();
    seed(&server);
    server.create_flag(
        json!({"key": "acme-staff", "filters": {"groups": [{"properties": [
        {"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}]}],
        "payloads": {"true": "{\"welcome\": true}"}}}),
    );
    server.create_flag(json!({"key": "enterprise-companies", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}]}}),
    );
    server.create_flag(json!({"key": "off", "active": false}));

    let answer = flags(
        &server,
        "/flags/?v=2",
        json!({"api_key": PROJECT_KEY, "distinct_id": "ana",
        "groups": {"company": "acme"}}),
    );
    let staff = &answer["flags"]["acme-staff"];
    assert_eq!(staff["enabled"], true, "{answer}");
    assert_eq!(
        staff["reason"],
        json!({"code": "condition_match", "condition_index": 0, "description": "Matched condition set 1"})
    );
    assert_eq!(staff["metadata"]["payload"], "{\"welcome\": true}");
    assert!(staff["metadata"]["id"].is_i64() && staff["metadata"]["version"] == 1);
    assert_eq!(answer["flags"]["enterprise-companies"]["enabled"], true);
    assert!(
        answer["flags"].get("off").is_none(),
        "inactive flags are left out"
    );
    assert_eq!(answer["errorsWhileComputingFlags"], false);

    // Request properties override stored ones; another company is another answer.
    let answer = flags(
        &server,
        "/flags/?v=2",
        json!({"token": PROJECT_KEY, "distinct_id": "ana",
        "person_properties": {"email": "ana@globex.com"}, "groups": {"company": "initech"}}),
    );
    assert_eq!(answer["flags"]["acme-staff"]["enabled"], false);
    assert_eq!(
        answer["flags"]["acme-staff"]["reason"]["code"],
        "no_condition_match"
    );
    assert_eq!(answer["flags"]["enterprise-companies"]["enabled"], false);

    // Without the group, the group flag cannot match.
    let answer = flags(
        &server,
        "/flags/?v=2",
        json!({"token": PROJECT_KEY, "distinct_id": "ana"}),
    );
    assert_eq!(
        answer["flags"]["enterprise-companies"]["reason"]["code"],
        "no_group_type"
    );

    let legacy = flags(
        &server,
        "/flags/?v=1",
        json!({"token": PROJECT_KEY, "distinct_id": "ana"}),
    );
    assert_eq!(
        legacy["featureFlags"],
        json!({"acme-staff": true, "enterprise-companies": false})
    );
    assert_eq!(
        legacy["featureFlagPayloads"],
        json!({"acme-staff": "{\"welcome\": true}"})
    );
    let decide = flags(
        &server,
        "/decide/?v=2",
        json!({"token": PROJECT_KEY, "distinct_id": "ana"}),
    );
    assert_eq!(decide["featureFlags"], json!({"acme-staff": true}));
    assert_eq!(decide["supportedCompression"], json!(["gzip", "gzip-js"]));
    let decide_v1 = flags(
        &server,
        "/decide/",
        json!({"token": PROJECT_KEY, "distinct_id": "ana"}),
    );
    assert_eq!(decide_v1["featureFlags"], json!(["acme-staff"]));
}

#[test]
fn flags_accepts_gzip_and_base64_and_refuses_unknown_keys() {
    let server = Server::start();
    seed(&server);
    server.create_flag(json!({"key": "everyone", "filters": {"groups": [{"properties": []}]}}));
    let body = json!({"token": PROJECT_KEY, "distinct_id": "ana"}).to_string();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let response = server
        .client
        .post(server.url("/flags/?v=2&compression=gzip"))
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap()["flags"]["everyone"]["enabled"],
        true
    );

    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let form = format!(
        "data={}",
        form_urlencoded::byte_serialize(encoded.as_bytes()).collect::<String>()
    );
    let response = server
        .client
        .post(server.url("/flags/?v=2"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap()["flags"]["everyone"]["enabled"],
        true
    );

    let unknown = server
        .client
        .post(server.url("/flags/?v=2"))
        .json(&json!({"token": "phc_nobody", "distinct_id": "ana"}))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert!(unknown.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("project API key"));
    for (body, attr) in [
        (json!({"token": PROJECT_KEY}), "distinct_id"),
        (
            json!({"token": PROJECT_KEY, "distinct_id": "a", "groups": ["acme"]}),
            "groups",
        ),
    ] {
        let response = server
            .client
            .post(server.url("/flags/"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<Value>().unwrap()["attr"], attr);
    }
    let garbage = server
        .client
        .post(server.url("/flags/"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[test]
fn definitions_carry_the_group_mapping_and_revalidate_with_etags() {
    let server = Server::start();
    seed(&server);
    server.create_flag(json!({"key": "base", "filters": {"groups": [{"rollout_percentage": 50}]}}));
    server.create_flag(
        json!({"key": "dependent", "filters": {"groups": [{"properties": [
        {"key": "base", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}}),
    );
    server.create_flag(json!({"key": "paused", "active": false}));

    for path in ["/flags/definitions", "/api/feature_flag/local_evaluation/"] {
        let response = server
            .client
            .get(server.url(&format!("{path}?token={PROJECT_KEY}&send_cohorts")))
            .bearer_auth(PERSONAL_KEY)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with("W/\""), "{etag}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["group_type_mapping"], json!({"0": "company"}));
        let keys: Vec<&str> = body["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["base", "dependent", "paused"],
            "inactive flags included"
        );
        assert_eq!(
            body["flags"][1]["filters"]["groups"][0]["properties"][0]["dependency_chain"],
            json!(["base"])
        );

        let again = server
            .client
            .get(server.url(path))
            .bearer_auth(PERSONAL_KEY)
            .header("If-None-Match", &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // A change gives a new tag.
    server.create_flag(json!({"key": "new"}));
    let response = server
        .client
        .get(server.url("/flags/definitions"))
        .bearer_auth(PERSONAL_KEY)
        .header("If-None-Match", "W/\"0000\"")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    let anonymous = server
        .client
        .get(server.url("/flags/definitions"))
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[test]
fn experience_continuity_keeps_the_variant_seen_before_identifying() {
    let server = Server::start();
    let flag = "new-onboarding";
    // An anonymous id in the rollout, for a person who is not.
    let anon = (0..1000)
        .map(|i| format!("anon-{i}"))
        .find(|id| cairn_flags::hash::in_rollout(flag, id, Some(50.0)))
        .unwrap();
    let user = (0..1000)
        .map(|i| format!("user-{i}"))
        .find(|id| !cairn_flags::hash::in_rollout(flag, id, Some(50.0)))
        .unwrap();
    server.create_flag(json!({"key": flag, "ensure_experience_continuity": true,
               "filters": {"groups": [{"rollout_percentage": 50}]}}));
    let enabled =
        |body: Value| flags(&server, "/flags/?v=2", body)["flags"][flag]["enabled"].clone();
    let ask = json!({"api_key": PROJECT_KEY, "distinct_id": user});
    assert_eq!(
        enabled(ask.clone()),
        json!(false),
        "the person's own id is outside the rollout"
    );
    // The person exists once an event names them; identifying sends the anonymous id.
    server.capture(json!([event("signed up", &user, json!({}))]));
    let mut identifying = ask.clone();
    identifying["$anon_distinct_id"] = json!(anon);
    assert_eq!(
        enabled(identifying),
        json!(true),
        "hashed by the anonymous id"
    );
    assert_eq!(
        enabled(ask),
        json!(true),
        "the stored hash key keeps the experience"
    );
}

#[test]
fn remote_config_tells_posthog_js_what_cairn_supports() {
    let server = Server::start();
    let get = |path: &str| {
        server
            .client
            .get(server.url(path))
            .header("Origin", "http://app.example")
            .send()
            .unwrap()
    };
    let response = get(&format!("/array/{PROJECT_KEY}/config"));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let config: Value = response.json().unwrap();
    assert_eq!(config["token"], PROJECT_KEY);
    assert_eq!(config["supportedCompression"], json!(["gzip", "gzip-js"]));
    assert_eq!(config["hasFeatureFlags"], false);
    assert_eq!(config["sessionRecording"], false);

    server.create_flag(json!({"key": "on"}));
    let script = get(&format!("/array/{PROJECT_KEY}/config.js"))
        .text()
        .unwrap();
    assert!(script.contains(&format!("window._POSTHOG_REMOTE_CONFIG[\"{PROJECT_KEY}\"]")));
    assert!(script.contains("\"hasFeatureFlags\":true"), "{script}");

    let unknown = get("/array/phc_nobody/config");
    assert_eq!(unknown.status(), 404);
    assert!(unknown
        .headers()
        .contains_key("access-control-allow-origin"));
}
