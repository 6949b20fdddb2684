//! Conformance: for 1,500 distinct ids and 1,200 group keys, over rollout,
//! multivariate, override, holdout, dependency and group flags, every value
//! and payload must equal what posthog-python's own local evaluation gives
//! for the same definitions (installed from PyPI into a virtualenv).

#[path = "../../../scripts/posthog_python.rs"]
mod posthog_python;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use cairn_core::time::{Clock, SystemClock};
use cairn_flags::{FeatureFlag, FlagSet, GroupSubject, Subject};
use posthog_python::python;
use serde_json::{json, Map, Value};

fn flags() -> Vec<FeatureFlag> {
    let definitions = json!([
        {"id": 1, "key": "half-rollout", "filters": {"groups": [
            {"properties": [], "rollout_percentage": 50}]}},
        {"id": 2, "key": "five-variants", "filters": {
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "a", "rollout_percentage": 20},
                {"key": "b", "rollout_percentage": 20},
                {"key": "c", "rollout_percentage": 5},
                {"key": "d", "rollout_percentage": 5}]},
            "payloads": {"control": "{\"color\": \"blue\"}", "a": "\"plain\"", "d": "42"}}},
        {"id": 3, "key": "override-first", "filters": {
            "groups": [
                {"properties": [{"key": "email", "value": "@acme.io", "operator": "icontains", "type": "person"}],
                 "rollout_percentage": 100, "variant": "treatment"},
                {"properties": [{"key": "plan", "value": ["pro", "enterprise"], "operator": "exact", "type": "person"}],
                 "rollout_percentage": 70},
                {"properties": [], "rollout_percentage": 15, "variant": "control"}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 34},
                {"key": "treatment", "rollout_percentage": 66}]}}},
        {"id": 4, "key": "company-rollout", "filters": {
            "aggregation_group_type_index": 0,
            "groups": [
                {"properties": [{"key": "plan", "value": "pro", "operator": "exact", "type": "group", "group_type_index": 0}],
                 "rollout_percentage": 80},
                {"properties": [], "rollout_percentage": 35}],
            "payloads": {"true": "{\"limit\": 10}"}}},
        {"id": 5, "key": "project-variants", "filters": {
            "aggregation_group_type_index": 1,
            "groups": [{"properties": [{"key": "seats", "value": 10, "operator": "gte", "type": "group", "group_type_index": 1}],
                        "rollout_percentage": 90}],
            "multivariate": {"variants": [
                {"key": "small", "rollout_percentage": 33.3},
                {"key": "medium", "rollout_percentage": 33.3},
                {"key": "large", "rollout_percentage": 33.4}]}}},
        {"id": 6, "key": "operators", "filters": {"groups": [
            {"properties": [
                {"key": "age", "value": "30", "operator": "gt", "type": "person"},
                {"key": "plan", "value": "free", "operator": "is_not", "type": "person"},
                {"key": "email", "value": "^[a-m]", "operator": "regex", "type": "person"}],
             "rollout_percentage": 60},
            {"properties": [
                {"key": "app_version", "value": "2.1.0", "operator": "semver_gte", "type": "person"},
                {"key": "signed_up", "value": "2024-03-01", "operator": "is_date_before", "type": "person"}],
             "rollout_percentage": 100}]}},
        {"id": 7, "key": "with-holdout", "filters": {
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50}]},
            "holdout": {"id": 9, "exclusion_percentage": 20},
            "payloads": {"holdout-9": "\"held out\"", "test": "[1, 2]"}}},
        {"id": 8, "key": "needs-half-rollout", "filters": {"groups": [
            {"properties": [{"key": "half-rollout", "value": true, "operator": "flag_evaluates_to", "type": "flag"}],
             "rollout_percentage": 80}]}},
        {"id": 9, "key": "needs-variant-a", "filters": {"groups": [
            {"properties": [{"key": "five-variants", "value": "a", "operator": "flag_evaluates_to", "type": "flag"}]}]}},
        {"id": 10, "key": "inactive", "active": false, "filters": {"groups": [
            {"properties": [], "rollout_percentage": 100}]}}
    ]);
    serde_json::from_value(definitions).expect("definitions parse")
}

struct Case {
    distinct_id: String,
    groups: BTreeMap<String, String>,
    person: Map<String, Value>,
    group_properties: BTreeMap<String, Map<String, Value>>,
}

fn cases() -> Vec<Case> {
    let emails = [
        "ana@acme.io",
        "zed@globex.com",
        "bob@initech.com",
        "Kim@ACME.IO",
    ];
    let plans = ["free", "pro", "enterprise", "PRO"];
    let versions = ["1.9.9", "2.1.0", "2.10.1", "3.0.0"];
    let dates = [
        "2023-12-31",
        "2024-02-29T23:59:59Z",
        "2024-03-02",
        "2025-01-01",
    ];
    (0..1500)
        .map(|i| {
            let distinct_id = match i % 3 {
                0 => format!("user-{i}"),
                1 => format!("{}", 100_000 + i * 7),
                _ => format!("ünïcødé-{i}@example"),
            };
            let person = json!({
                "email": emails[i % 4], "plan": plans[(i / 4) % 4], "age": (i % 60) + 10,
                "app_version": versions[(i / 3) % 4], "signed_up": dates[(i / 5) % 4],
            });
            let (mut groups, mut group_properties) = (BTreeMap::new(), BTreeMap::new());
            if i < 1200 {
                groups.insert("company".to_string(), format!("company-{i}"));
                groups.insert("project".to_string(), format!("p{}", i * 13));
                group_properties.insert(
                    "company".to_string(),
                    json!({"plan": plans[i % 4]}).as_object().unwrap().clone(),
                );
                group_properties.insert(
                    "project".to_string(),
                    json!({"seats": i % 20}).as_object().unwrap().clone(),
                );
            }
            Case {
                distinct_id,
                groups,
                person: person.as_object().unwrap().clone(),
                group_properties,
            }
        })
        .collect()
}

/// What the server reads for a case: the SDK's inputs plus `$group_key`.
fn subject(case: &Case) -> Subject {
    let mut subject = Subject::person(
        case.distinct_id.clone(),
        case.person.clone(),
        SystemClock.now(),
    );
    for (index, name) in [(0u8, "company"), (1, "project")] {
        if let Some(key) = case.groups.get(name) {
            let mut properties = case.group_properties[name].clone();
            properties.insert("$group_key".into(), json!(key));
            subject.groups.insert(
                index,
                GroupSubject {
                    key: key.clone(),
                    properties,
                },
            );
        }
    }
    subject
}

#[test]
fn every_answer_matches_posthog_python_local_evaluation() {
    let set = FlagSet::new(flags());
    set.check_dependencies().expect("no dependency problems");
    let cases = cases();
    let input = json!({
        "definitions": {
            "flags": set.definitions(),
            "group_type_mapping": {"0": "company", "1": "project"},
            "cohorts": {},
        },
        "cases": cases.iter().map(|c| json!({
            "distinct_id": c.distinct_id, "groups": c.groups,
            "person_properties": c.person, "group_properties": c.group_properties,
        })).collect::<Vec<_>>(),
    });
    let dir = tempfile_dir();
    let input_path = dir.join("conformance-input.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/sdk_local_evaluation.py");
    let output = Command::new(python())
        .arg(script)
        .arg(&input_path)
        .output()
        .expect("run the SDK script");
    assert!(
        output.status.success(),
        "SDK script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(expected.len(), cases.len());

    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (case, sdk) in cases.iter().zip(&expected) {
        let ours: BTreeMap<&str, _> = set
            .evaluate_all(&subject(case), None)
            .into_iter()
            .map(|(flag, result)| (flag.key.as_str(), result))
            .collect();
        for flag in set.flags().iter().filter(|f| f.active) {
            let result = &ours[flag.key.as_str()];
            let sdk_value = &sdk["flags"][&flag.key];
            let sdk_payload = sdk["payloads"]
                .get(&flag.key)
                .cloned()
                .unwrap_or(Value::Null);
            // The bulk getter hands back stored payloads as stored (JSON text).
            let our_payload = result.payload.clone().unwrap_or(Value::Null);
            compared += 1;
            if &result.value() != sdk_value || our_payload != sdk_payload {
                mismatches.push(format!(
                    "{} for {:?} (groups {:?}): ours {} / {}, SDK {} / {}",
                    flag.key,
                    case.distinct_id,
                    case.groups,
                    result.value(),
                    our_payload,
                    sdk_value,
                    sdk_payload
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {compared} answers differ, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
    // Both outcomes must occur for the comparison to mean something.
    for flag in set.flags().iter().filter(|f| f.active) {
        let values: std::collections::BTreeSet<String> = expected
            .iter()
            .map(|e| e["flags"][&flag.key].to_string())
            .collect();
        assert!(values.len() > 1, "{} always gave {values:?}", flag.key);
    }
    assert!(compared >= 13_000, "compared {compared}");
}

fn tempfile_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cairn-flags-conformance");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
