//! Compatibility: the real posthog-node SDK (from npm, pinned in
//! `scripts/node-compat.json`) sends to Cairn unchanged, and its flags,
//! remote and local, give the server's answers.

mod common;
#[path = "../../../scripts/node_compat.rs"]
mod node_compat;

use common::{properties_without_creator, Server, PERSONAL_KEY, PROJECT_KEY};
use node_compat::run_node;
use serde_json::json;

#[test]
fn posthog_node_captures_identifies_aliases_groups_and_flags() {
    let server = Server::start();
    server.capture(
        json!([{"event": "$groupidentify", "distinct_id": "admin", "properties":
        {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}}]),
    );
    server.create_flag(json!({"key": "company-beta", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}],
        "payloads": {"true": "{\"beta\": true}"}}}));
    server.create_flag(
        json!({"key": "acme-staff", "filters": {"groups": [{"properties": [
        {"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}]}]}}),
    );

    let out = run_node(
        "posthog_node.mjs",
        &[&server.base, PROJECT_KEY, PERSONAL_KEY],
        false,
    );
    assert_eq!(out["errors"], json!([]), "{out}");

    // Flags: the server reads the stored company and person properties.
    assert_eq!(out["remote_group"], true, "{out}");
    assert_eq!(out["remote_other_group"], false);
    assert_eq!(out["remote_no_group"], false);
    assert_eq!(out["remote_payload"], json!({"beta": true}));
    assert_eq!(out["remote_person"], true);
    // Locally, from the definitions and the properties passed.
    assert_eq!(out["local_group"], true);
    assert_eq!(out["local_no_group"], false);
    assert_eq!(
        out["local_all"],
        json!({"company-beta": true, "acme-staff": true})
    );

    // What the SDK sent, as stored.
    let person = server.person("node_user").unwrap();
    let mut ids: Vec<String> = serde_json::from_value(person["distinct_ids"].clone()).unwrap();
    ids.sort();
    assert_eq!(ids, ["node_anon", "node_user"]);
    assert_eq!(
        properties_without_creator(&person),
        json!({"email": "dev@acme.io", "first_seen": "node"})
    );
    let pricing = server.events("event=viewed_pricing");
    assert_eq!(pricing[0]["person_id"], person["id"]);
    assert_eq!(pricing[0]["properties"]["$lib"], "posthog-node");
    let report = server.events("event=report_generated");
    assert_eq!(
        report[0]["properties"]["$groups"],
        json!({"company": "acme"})
    );
    assert_eq!(report[0]["properties"]["format"], "pdf");
    let initech = server.group(0, "initech").unwrap();
    assert_eq!(
        initech["group_properties"],
        json!({"name": "Initech", "plan": "free"})
    );
    // Flag reads were reported, with the groups they were made for.
    let called = server.events("event=$feature_flag_called&distinct_id=node_user");
    assert!(called
        .iter()
        .any(|e| e["properties"]["$feature_flag"] == "company-beta"
            && e["properties"]["$groups"] == json!({"company": "acme"})));
}
