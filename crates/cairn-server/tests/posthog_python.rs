//! Compatibility: the real posthog-python SDK (from PyPI, in a virtualenv the
//! test creates) sends to Cairn, and the stored state is what PostHog would
//! keep (spec/ingest.md §8).

mod common;
#[path = "../../../scripts/posthog_python.rs"]
mod posthog_python;

use std::path::PathBuf;
use std::process::Command;

use posthog_python::python;

use common::{properties_without_creator, Server, PROJECT_KEY};
use serde_json::{json, Value};

fn run_script(server: &Server, script: &str) -> Value {
    run_script_with(server, script, &[])
}

fn run_script_with(server: &Server, script: &str, extra: &[&str]) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let output = Command::new(python())
        .arg(path)
        .arg(&server.base)
        .arg(PROJECT_KEY)
        .args(extra)
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the python script failed:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("script output is not JSON ({e}):\n{stderr}"))
}

#[test]
fn posthog_python_capture_persons_and_groups() {
    let server = Server::start();
    let out = run_script(&server, "posthog_python_capture.py");

    // 2. Only the personal key was refused, with a 401 the SDK reported.
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["status"], 401);
    assert!(server.events("event=never").is_empty());

    // 1. Both transports, the SDK's uuid kept.
    for gzip in ["False", "True"] {
        let uuid = out[format!("e1_gzip_{gzip}")].as_str().unwrap();
        let stored = server.events("event=e1");
        let event = stored
            .iter()
            .find(|e| e["uuid"] == uuid)
            .expect("e1 stored under the SDK's uuid");
        assert_eq!(event["distinct_id"], "u1");
        assert_eq!(event["properties"]["a"], 1);
        assert_eq!(event["properties"]["$lib"], "posthog-python");
    }

    // 3. Personless.
    let anon = &server.events("event=anon_evt")[0];
    assert_eq!(anon["uuid"], out["anon"]);
    assert_eq!(anon["properties"]["$process_person_profile"], false);
    assert_eq!(anon["groups"], json!({}));
    assert!(server
        .person(anon["distinct_id"].as_str().unwrap())
        .is_none());

    // 4, 5.
    assert_eq!(
        properties_without_creator(&server.person("u2").unwrap()),
        json!({"plan": "team", "first": "x"})
    );
    assert_eq!(
        properties_without_creator(&server.person("u3").unwrap()),
        json!({"k": 1, "o": 1})
    );

    // 6. alias(previous_id="A", distinct_id="B"): one person, A's values win.
    let a = server.person("A").unwrap();
    assert_eq!(server.person("B").unwrap()["id"], a["id"]);
    assert_eq!(a["properties"]["name"], "a");
    assert_eq!(
        (
            a["properties"]["only_a"].clone(),
            a["properties"]["only_b"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(a["is_identified"], true);

    // 7. No merge with an identified source; a fresh id joins; illegal ids never merge.
    assert_ne!(server.person("C").unwrap()["id"], a["id"]);
    assert_eq!(server.person("D").unwrap()["id"], a["id"]);
    assert_ne!(
        server.person("u9").unwrap()["id"],
        server.person("anonymous").unwrap()["id"]
    );
    assert!(server.person("null").is_none());
    assert_eq!(server.events("event=%24create_alias").len(), 3);

    // 8. Five group types in first-seen order; t6 ignored with a warning.
    let types = server.get("/groups_types/");
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["group_type"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t1", "t2", "t3", "t4", "t5"]);
    let grouped = &server.events("event=grouped")[0];
    assert_eq!(grouped["uuid"], out["t6_event"]);
    assert_eq!(grouped["groups"], json!({"t2": "k"}));
    assert!(server
        .warning_types()
        .contains(&"group_type_limit_reached".to_string()));

    // 10. Timestamps and dedup.
    let old = &server.events("event=old")[0];
    let stored: chrono::DateTime<chrono::Utc> = old["timestamp"].as_str().unwrap().parse().unwrap();
    let expected: chrono::DateTime<chrono::Utc> = "2024-01-01T12:00:00Z".parse().unwrap();
    assert!((stored - expected).num_seconds().abs() < 5, "{stored}");
    // 48 h ahead: not stored, and a warning names the event.
    assert!(server.events("event=future").is_empty());
    assert!(server.warnings().iter().any(|w| {
        w["type"] == "event_timestamp_out_of_range" && w["details"]["uuid"] == out["future"]
    }));
    let twice = server.events("event=twice");
    assert_eq!(twice.len(), 1);
    assert_eq!(twice[0]["uuid"], out["fixed_uuid"]);
}

#[test]
fn posthog_python_group_identify_and_grouped_capture() {
    let server = Server::start();
    let out = run_script(&server, "posthog_python_groups.py");
    assert!(out["errors"].as_array().unwrap().is_empty(), "{out}");

    // 9. `$groupidentify` shallow-merges, the group is listed and found.
    let acme = server.group(0, "acme").unwrap();
    assert_eq!(
        acme["group_properties"],
        json!({"name": "Acme", "seats": 7, "tier": "gold"})
    );
    let listed = server.get("/groups/?group_type_index=0");
    let keys: Vec<&str> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"acme") && keys.contains(&"company_xyz"),
        "{keys:?}"
    );
    let too_long = "k".repeat(401);
    assert!(server.group(0, &too_long).is_none());
    assert!(server
        .warning_types()
        .contains(&"group_key_too_long".to_string()));

    // The seed's combined tracking: an event in two groups, both groups with
    // their properties, the user with theirs.
    let types = server.get("/groups_types/");
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["group_type"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["company", "team"]);
    let used = &server.events("event=feature_used")[0];
    assert_eq!(used["uuid"], out["feature_used"]);
    assert_eq!(
        used["groups"],
        json!({"company": "company_xyz", "team": "team_frontend"})
    );
    assert_eq!(
        server.group(0, "company_xyz").unwrap()["group_properties"]["industry"],
        "SaaS"
    );
    assert_eq!(
        server.group(1, "team_frontend").unwrap()["display_name"],
        "Frontend Team"
    );
    assert_eq!(
        server.person("user_789").unwrap()["properties"]["role"],
        "Senior Developer"
    );
    let company_events = server.events("group_type_index=0&group_key=company_xyz");
    assert_eq!(company_events.len(), 1);
}

#[test]
fn posthog_python_feature_flags_remote_and_local() {
    let server = Server::start();
    server.capture(json!([
        {"event": "$groupidentify", "distinct_id": "admin", "properties": {
            "$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}},
        {"event": "$groupidentify", "distinct_id": "admin", "properties": {
            "$group_type": "company", "$group_key": "initech", "$group_set": {"plan": "free"}}},
        {"event": "$identify", "distinct_id": "ana", "properties": {"$set": {"email": "ana@acme.io"}}},
    ]));
    for flag in [
        json!({"key": "acme-staff", "filters": {"groups": [{"properties": [
            {"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}]}],
            "payloads": {"true": "{\"welcome\": true}"}}}),
        json!({"key": "enterprise-companies", "filters": {"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}]}}),
        json!({"key": "company-rollout", "filters": {"aggregation_group_type_index": 0,
            "groups": [{"properties": [], "rollout_percentage": 50}]}}),
        json!({"key": "experiment", "filters": {"groups": [{"properties": [], "rollout_percentage": 80}],
            "multivariate": {"variants": [{"key": "control", "rollout_percentage": 50},
                                          {"key": "test", "rollout_percentage": 50}]}}}),
    ] {
        let response = server
            .authed(server.client.post(server.api("/feature_flags/")))
            .json(&flag)
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    }

    let out = run_script_with(&server, "posthog_python_flags.py", &[common::PERSONAL_KEY]);
    assert_eq!(out["errors"], json!([]));
    let remote = &out["remote"];
    assert_eq!(remote["staff"], true);
    assert_eq!(remote["staff_payload"], json!({"welcome": true}));
    assert_eq!(remote["staff_overridden"], false);
    assert_eq!(remote["company_acme"], true);
    assert_eq!(remote["company_initech"], false);
    assert_eq!(remote["company_initech_overridden"], true);
    assert_eq!(remote["company_none"], false);
    assert!(
        [json!("control"), json!("test"), json!(false)].contains(&remote["variant"]),
        "{}",
        remote["variant"]
    );
    assert_eq!(remote["all"]["acme-staff"], true);
    assert_eq!(remote["all"]["enterprise-companies"], true);
    assert_eq!(remote["missing"], Value::Null);

    assert_eq!(
        out["local_loaded"],
        json!([
            "acme-staff",
            "company-rollout",
            "enterprise-companies",
            "experiment"
        ])
    );
    let rows = out["local_vs_remote"].as_array().unwrap();
    for row in rows {
        assert_eq!(row["local"], row["remote"], "{row}");
        assert_eq!(row["local_company"], row["remote_company"], "{row}");
    }
    let values: std::collections::HashSet<String> =
        rows.iter().map(|r| r["local"].to_string()).collect();
    assert!(
        values.len() >= 3,
        "variants and rollout both exercised: {values:?}"
    );
    assert_eq!(out["local_group"], true);
    assert_eq!(out["local_all"]["acme-staff"], true);
    assert_eq!(out["local_all"]["enterprise-companies"], true);

    // The SDK reported its flag calls as events.
    let called = server.events("event=$feature_flag_called");
    assert!(
        called
            .iter()
            .any(|e| e["properties"]["$feature_flag"] == "acme-staff"
                && e["properties"]["$feature_flag_response"] == true),
        "{called:?}"
    );
}
