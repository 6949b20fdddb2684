use serde_json::json;

use super::*;

fn set(flags: Value) -> FlagSet {
    FlagSet::new(serde_json::from_value::<Vec<FeatureFlag>>(flags).unwrap())
}

/// When these tests evaluate.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn person(id: &str, properties: Value) -> Subject {
    Subject::person(id, properties.as_object().unwrap().clone(), now())
}

fn reason(set: &FlagSet, key: &str, subject: &Subject) -> (Reason, Option<usize>, bool) {
    let e = set.evaluate(key, subject).unwrap();
    (e.reason, e.condition_index, e.enabled)
}

#[test]
fn non_matches_report_the_strongest_reason_latest_index_on_ties() {
    let flags = set(json!([{"key": "f", "filters": {"groups": [
        {"properties": [{"key": "plan", "value": "pro"}], "rollout_percentage": 0},
        {"properties": [{"key": "plan", "value": "free"}]},
        {"properties": [{"key": "plan", "value": "team"}]}]}}]));
    let pro = person("u", json!({"plan": "pro"}));
    // A 0% rollout still lets an empty identifier in; "u" hashes above 0.
    assert_eq!(
        reason(&flags, "f", &pro),
        (Reason::OutOfRolloutBound, Some(0), false)
    );
    let other = person("u", json!({"plan": "x"}));
    assert_eq!(
        reason(&flags, "f", &other),
        (Reason::NoConditionMatch, Some(2), false)
    );
    let nothing = set(json!([{"key": "f", "filters": {"groups": []}}]));
    assert_eq!(
        reason(&nothing, "f", &other),
        (Reason::NoGroupType, None, false)
    );
}

#[test]
fn group_flags_without_the_group_say_no_group_type() {
    let flags = set(
        json!([{"key": "g", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": []}, {"properties": []}]}}]),
    );
    let alone = person("u", json!({}));
    assert_eq!(
        reason(&flags, "g", &alone),
        (Reason::NoGroupType, Some(1), false)
    );
    let mut member = alone.clone();
    member.groups.insert(
        0,
        GroupSubject {
            key: "acme".into(),
            properties: Map::new(),
        },
    );
    assert_eq!(
        reason(&flags, "g", &member),
        (Reason::ConditionMatch, Some(0), true)
    );
}

#[test]
fn mixed_targeting_describes_skipped_group_conditions() {
    let flags = set(json!([{"key": "m", "filters": {"groups": [
        {"properties": [{"key": "plan", "value": "pro"}]},
        {"properties": [], "aggregation_group_type_index": 1}]}}]));
    let e = flags
        .evaluate("m", &person("u", json!({"plan": "free"})))
        .unwrap();
    assert_eq!(e.reason, Reason::NoConditionMatch);
    assert_eq!(
        e.description(),
        "No matching condition set (group conditions were not evaluated because no group type was provided)"
    );
}

#[test]
fn variant_overrides_must_name_a_variant() {
    let flags = set(json!([{"key": "v", "filters": {
        "groups": [{"properties": [], "variant": "ghost"}],
        "multivariate": {"variants": [{"key": "only", "rollout_percentage": 100}]},
        "payloads": {"only": "{\"x\":1}"}}}]));
    let e = flags.evaluate("v", &person("u", json!({}))).unwrap();
    assert_eq!(e.variant.as_deref(), Some("only"));
    assert_eq!(e.payload, Some(json!("{\"x\":1}")));
    assert_eq!(e.description(), "Matched condition set 1");
}

#[test]
fn enrollment_decides_before_conditions_and_falls_through_when_absent() {
    let flags = set(
        json!([{"key": "early", "filters": {"feature_enrollment": true,
        "groups": [{"properties": [], "rollout_percentage": 100}]}}]),
    );
    let opted_out = person("u", json!({"$feature_enrollment/early": false}));
    assert_eq!(
        reason(&flags, "early", &opted_out),
        (Reason::SuperConditionValue, Some(0), false)
    );
    let unknown = person("u", json!({}));
    assert_eq!(
        reason(&flags, "early", &unknown),
        (Reason::ConditionMatch, Some(0), true)
    );
}

#[test]
fn full_holdout_holds_everyone_out() {
    let flags = set(
        json!([{"key": "h", "filters": {"holdout": {"id": 3, "exclusion_percentage": 100},
        "groups": [{"properties": []}], "payloads": {"holdout-3": "\"x\""}}}]),
    );
    let e = flags.evaluate("h", &person("u", json!({}))).unwrap();
    assert_eq!(
        (e.enabled, e.variant.as_deref(), e.reason),
        (true, Some("holdout-3"), Reason::HoldoutConditionValue)
    );
    assert_eq!(e.condition_index, None);
    assert_eq!(e.payload, Some(json!("\"x\"")));
}

#[test]
fn dependencies_missing_or_cyclic_never_evaluate() {
    let flags = set(json!([
        {"key": "a", "filters": {"groups": [{"properties": [
            {"key": "b", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"key": "b", "filters": {"groups": [{"properties": [
            {"key": "a", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"key": "c", "filters": {"groups": [{"properties": [
            {"key": "gone", "type": "flag", "operator": "flag_evaluates_to", "value": false}]}]}},
        {"key": "d", "filters": {"groups": [{"properties": [
            {"key": "off", "type": "flag", "operator": "flag_evaluates_to", "value": false}]}]}},
        {"key": "off", "active": false, "filters": {"groups": [{"properties": []}]}}
    ]));
    let u = person("u", json!({}));
    assert_eq!(reason(&flags, "a", &u).0, Reason::MissingDependency);
    assert_eq!(reason(&flags, "c", &u).0, Reason::MissingDependency);
    assert!(flags.dependency_chain("a").is_empty());
    // An inactive dependency counts as false.
    assert_eq!(
        reason(&flags, "d", &u),
        (Reason::ConditionMatch, Some(0), true)
    );
    assert_eq!(flags.dependency_chain("d"), ["off", "d"]);
    assert!(matches!(
        flags.check_dependencies(),
        Err(DependencyProblem::Cycle { .. })
    ));
    let all = flags.evaluate_all(&u, None);
    assert!(
        all.iter().all(|(f, _)| f.key != "off"),
        "inactive flags are left out"
    );
}

#[test]
fn empty_identifiers_are_inside_every_rollout() {
    let flags = set(
        json!([{"key": "z", "filters": {"groups": [{"properties": [], "rollout_percentage": 0}]}}]),
    );
    assert!(flags.evaluate("z", &person("", json!({}))).unwrap().enabled);
}

#[test]
fn experience_continuity_hashes_the_continuity_key() {
    let flags = set(json!([{"key": "eec", "ensure_experience_continuity": true,
        "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]}}]));
    let anonymous = person("anon-1", json!({}));
    let mut identified = person("user-1", json!({}));
    identified.continuity_key = Some("anon-1".into());
    for _ in 0..3 {
        assert_eq!(
            flags.evaluate("eec", &anonymous).unwrap().enabled,
            flags.evaluate("eec", &identified).unwrap().enabled
        );
    }
}

fn local(set: &FlagSet, key: &str, subject: &Subject) -> Result<bool, Inconclusive> {
    set.evaluate_locally(key, subject)
        .unwrap()
        .map(|e| e.enabled)
}

#[test]
fn local_evaluation_needs_every_property_it_reads() {
    let flags = set(json!([
        {"key": "pro", "filters": {"groups": [{"properties": [{"key": "plan", "value": "pro"}]}]}},
        {"key": "unset", "filters": {"groups": [
            {"properties": [{"key": "plan", "operator": "is_not_set"}]}]}},
        {"key": "after", "filters": {"groups": [
            {"properties": [{"key": "plan", "value": "pro"}]},
            {"properties": []}]}},
        {"key": "off", "active": false, "filters": {"groups": [
            {"properties": [{"key": "plan", "value": "pro"}]}]}}
    ]));
    let unknown = person("u", json!({}));
    assert_eq!(local(&flags, "pro", &unknown), Err(Inconclusive));
    // The server would answer from the person's stored properties.
    assert!(!flags.evaluate("pro", &unknown).unwrap().enabled);
    assert_eq!(local(&flags, "unset", &unknown), Err(Inconclusive));
    // A later set would match, but the server may match the first one.
    assert_eq!(local(&flags, "after", &unknown), Err(Inconclusive));
    assert_eq!(local(&flags, "off", &unknown), Ok(false));
    let free = person("u", json!({"plan": "free"}));
    assert_eq!(local(&flags, "pro", &free), Ok(false));
    assert_eq!(local(&flags, "after", &free), Ok(true));
    assert_eq!(
        local(&flags, "pro", &person("u", json!({"plan": "pro"}))),
        Ok(true)
    );
}

#[test]
fn local_evaluation_defers_stored_state_to_the_server() {
    let flags = set(json!([
        {"key": "eec", "ensure_experience_continuity": true, "filters": {"groups": [{"properties": []}]}},
        {"key": "cohort", "filters": {"groups": [
            {"properties": [{"key": "id", "type": "cohort", "value": 3}]}]}},
        {"key": "beta", "filters": {"feature_enrollment": true, "groups": [{"properties": []}]}},
        {"key": "company", "filters": {"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "size", "type": "group", "group_type_index": 0,
              "operator": "gt", "value": 10}]}]}},
        {"key": "needs-pro", "filters": {"groups": [{"properties": [
            {"key": "pro", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"key": "pro", "filters": {"groups": [{"properties": [{"key": "plan", "value": "pro"}]}]}}
    ]));
    let alone = person("u", json!({}));
    for key in ["eec", "cohort", "beta", "needs-pro"] {
        assert_eq!(local(&flags, key, &alone), Err(Inconclusive), "{key}");
    }
    // Without the group the server's answer is known: no group type.
    assert_eq!(local(&flags, "company", &alone), Ok(false));
    let mut member = alone.clone();
    member.groups.insert(
        0,
        GroupSubject {
            key: "acme".into(),
            properties: Map::new(),
        },
    );
    assert_eq!(local(&flags, "company", &member), Err(Inconclusive));
    member.groups.get_mut(&0).unwrap().properties =
        json!({"size": 50}).as_object().unwrap().clone();
    assert_eq!(local(&flags, "company", &member), Ok(true));
    let enrolled = person(
        "u",
        json!({"$feature_enrollment/beta": true, "plan": "pro"}),
    );
    assert_eq!(local(&flags, "beta", &enrolled), Ok(true));
    assert_eq!(local(&flags, "needs-pro", &enrolled), Ok(true));
}

/// A flag whose one condition set needs each of `dependencies` to be true.
fn depending(key: &str, dependencies: &[String]) -> Value {
    let filters: Vec<Value> = dependencies
        .iter()
        .map(|d| json!({"key": d, "type": "flag", "operator": "flag_evaluates_to", "value": true}))
        .collect();
    json!({"key": key, "filters": {"groups": [{"properties": filters}]}})
}

/// `f0` ← `f1` ← … ← `f{n-1}`, each depending on the one before.
fn chain(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let before: Vec<String> = (i > 0).then(|| format!("f{}", i - 1)).into_iter().collect();
            depending(&format!("f{i}"), &before)
        })
        .collect()
}

#[test]
fn chains_deeper_than_the_limit_are_refused_and_never_evaluated() {
    let flags = set(Value::Array(chain(40)));
    assert_eq!(
        flags.check_dependencies(),
        Err(DependencyProblem::TooDeep {
            flag: "f33".into(),
            depth: 33
        })
    );
    let u = person("u", json!({}));
    assert_eq!(flags.dependency_chain("f32").len(), 33);
    assert_eq!(reason(&flags, "f32", &u).0, Reason::ConditionMatch);
    assert_eq!(reason(&flags, "f39", &u).0, Reason::MissingDependency);
    assert!(flags.dependency_chain("f39").is_empty());
    let message = flags.check_dependencies().unwrap_err().to_string();
    assert!(message.contains("limit of 32"), "{message}");
}

#[test]
fn a_chain_stored_before_the_limit_cannot_overflow_the_stack() {
    // Resolved on a thread with a small stack: a recursive walk would die.
    let flags = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| set(Value::Array(chain(20_000))))
        .unwrap()
        .join()
        .unwrap();
    let u = person("u", json!({}));
    assert_eq!(reason(&flags, "f19999", &u).0, Reason::MissingDependency);
    assert_eq!(flags.evaluate_all(&u, None).len(), 20_000);
}

#[test]
fn wide_fan_out_is_resolved_once_per_flag() {
    // 30 levels of 3 flags, each depending on all 3 of the level below:
    // 3^30 paths, which a walk without memory never finishes.
    let level = |l: usize| -> Vec<String> { (0..3).map(|k| format!("l{l}_{k}")).collect() };
    let mut flags = Vec::new();
    for l in 0..30 {
        let below = if l == 0 { Vec::new() } else { level(l - 1) };
        for key in level(l) {
            flags.push(depending(&key, &below));
        }
    }
    let started = std::time::Instant::now();
    let flags = set(Value::Array(flags));
    assert_eq!(flags.check_dependencies(), Ok(()));
    assert_eq!(flags.dependency_chain("l29_0").len(), 3 * 29 + 1);
    let u = person("u", json!({}));
    assert!(flags.evaluate_all(&u, None).iter().all(|(_, e)| e.enabled));
    assert_eq!(flags.definitions().len(), 90);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn too_many_dependencies_are_refused() {
    let leaves: Vec<String> = (0..=MAX_DEPENDENCIES).map(|i| format!("leaf{i}")).collect();
    let mut flags: Vec<Value> = leaves.iter().map(|k| depending(k, &[])).collect();
    flags.push(depending("wide", &leaves));
    let flags = set(Value::Array(flags));
    assert_eq!(
        flags.check_dependencies(),
        Err(DependencyProblem::TooMany {
            flag: "wide".into(),
            count: MAX_DEPENDENCIES + 1
        })
    );
}

#[test]
fn only_problems_a_change_adds_are_refused() {
    let stored = set(Value::Array(chain(40)));
    let mut changed = chain(40);
    changed.push(depending("unrelated", &[]));
    assert_eq!(
        set(Value::Array(changed)).check_dependencies_since(&stored),
        Ok(())
    );
    let mut deeper = chain(33);
    deeper.push(depending("f33", &["f32".into()]));
    assert!(set(Value::Array(deeper))
        .check_dependencies_since(&set(Value::Array(chain(33))))
        .is_err());
}

/// spec/flags.md §3.3: sent properties win over stored ones; the server
/// always sets `distinct_id`, an SDK only where the caller did not; every
/// group gets `$group_key`.
#[test]
fn subjects_overlay_sent_properties_on_stored_ones() {
    let stored = json!({"plan": "free", "seats": 3}).as_object().cloned();
    let sent = json!({"plan": "pro", "distinct_id": "sent"});
    let sent = sent.as_object().unwrap();
    let server = Subject::new(Site::Server, "u", stored.clone(), sent.clone(), now());
    assert_eq!(
        Value::Object(server.person_properties),
        json!({"plan": "pro", "seats": 3, "distinct_id": "u"})
    );
    let mut sdk = Subject::new(Site::Sdk, "u", None, sent.clone(), now());
    assert_eq!(sdk.person_properties["distinct_id"], json!("sent"));
    sdk.add_group(
        0,
        "acme".into(),
        stored,
        json!({"seats": 9}).as_object().cloned(),
    );
    assert_eq!(
        Value::Object(sdk.groups[&0].properties.clone()),
        json!({"plan": "free", "seats": 9, "$group_key": "acme"})
    );
}

/// A relative date counts back from the subject's `now`, the clock of
/// whoever evaluates, so the same properties answer by the instant given.
#[test]
fn relative_dates_count_back_from_the_subjects_now() {
    let flags = set(
        json!([{"key": "recent", "filters": {"groups": [{"properties": [
        {"key": "signed_up", "value": "-7d", "operator": "is_date_after", "type": "person"}]}]}}]),
    );
    let signed_up = json!({"signed_up": "2024-03-10T00:00:00Z"});
    let mut subject = person("u", signed_up);
    assert!(flags.evaluate("recent", &subject).unwrap().enabled);
    subject.now = now() + chrono::Duration::days(5);
    assert!(!flags.evaluate("recent", &subject).unwrap().enabled);
    // Seven days before the later now is 2024-03-13T12:00Z.
    subject.person_properties["signed_up"] = json!("2024-03-13T12:00:01Z");
    assert!(flags.evaluate("recent", &subject).unwrap().enabled);
}
