//! cairn-sdk against the real binary: every call of the Python SDK's user
//! and group management page lands as the server stores it, and flags
//! answer locally and remotely.

mod common;

use cairn_sdk::{
    identify_context, tag, with_context, with_fresh_context, Alias, Capture, Client, FlagOptions,
    FlagValue, GroupIdentify, Set,
};
use common::{properties_without_creator, Server, PERSONAL_KEY, PROJECT_KEY};
use serde_json::{json, Value};

fn client(server: &Server) -> Client {
    Client::builder(PROJECT_KEY)
        .host(&server.base)
        .on_error(|error| panic!("delivery failed: {error}"))
        .build()
        .unwrap()
}

fn only(events: Vec<Value>) -> Value {
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

#[test]
fn persons_groups_aliases_and_contexts_land_as_stored() {
    let server = Server::start();
    let client = client(&server);

    client
        .set(
            Set::new(
                json!({"email": "user@example.com", "plan": "premium", "verified": true,
                "interests": ["technology", "sports"], "score": f64::NAN}),
            )
            .distinct_id("user123"),
        )
        .unwrap()
        .unwrap();
    client
        .set_once(
            Set::new(json!({"first_visit": "2024-01-10", "plan": "ignored"}))
                .distinct_id("user123"),
        )
        .unwrap();
    client
        .set_once(Set::new(json!({"first_visit": "2024-02-01"})).distinct_id("user123"))
        .unwrap();

    // Anonymous, then identified, then linked.
    let anonymous = "anonymous_user_abc123";
    let viewed = client
        .capture(
            Capture::new("page_viewed")
                .distinct_id(anonymous)
                .property("page", "landing"),
        )
        .unwrap()
        .unwrap();
    client
        .capture(Capture::new("signup_completed").distinct_id("user_456"))
        .unwrap();
    client
        .alias(Alias::new(anonymous).distinct_id("user_456"))
        .unwrap()
        .unwrap();

    client
        .group_identify(
            GroupIdentify::new("company", "acme_corp")
                .properties(json!({"name": "Acme Corporation", "mrr": 5000, "employees": 250})),
        )
        .unwrap();
    client
        .group_identify(
            GroupIdentify::new("team", "engineering").properties(json!({"members_count": 12})),
        )
        .unwrap();
    client
        .group_identify(GroupIdentify::new("company", "acme_corp").properties(json!({"mrr": 5500})))
        .unwrap();
    client
        .capture(
            Capture::new("report_generated")
                .distinct_id("user123")
                .property("report_type", "monthly_summary")
                .group("company", "acme_corp")
                .group("team", "engineering"),
        )
        .unwrap();

    with_context(|| {
        identify_context("user_ctx");
        tag("session_type", "premium");
        client
            .set(Set::new(json!({"subscription_status": "active"})))
            .unwrap()
            .unwrap();
        client
            .capture(Capture::new("dashboard_viewed"))
            .unwrap()
            .unwrap();
    });
    // No distinct id anywhere: nothing is sent.
    let nothing = with_fresh_context(|| client.set(Set::new(json!({"property": "value"}))));
    assert_eq!(nothing.unwrap(), None);

    client.flush().unwrap();
    let stats = client.stats();
    assert_eq!((stats.accepted, stats.delivered, stats.failed), (12, 12, 0));

    let user = server.person("user123").unwrap();
    assert_eq!(
        properties_without_creator(&user),
        json!({"email": "user@example.com", "plan": "premium", "verified": true,
            "interests": ["technology", "sports"], "score": null, "first_visit": "2024-01-10"})
    );
    let linked = server.person("user_456").unwrap();
    assert_eq!(server.person(anonymous).unwrap()["id"], linked["id"]);
    let page_view = only(server.events("event=page_viewed"));
    assert_eq!(page_view["uuid"], viewed.to_string());
    assert_eq!(page_view["person_id"], linked["id"]);
    assert_eq!(page_view["properties"]["$lib"], "cairn-sdk");

    let company = server.group(0, "acme_corp").unwrap();
    assert_eq!(company["group_properties"]["mrr"], 5500);
    assert_eq!(company["group_properties"]["employees"], 250);
    assert_eq!(
        server.group(1, "engineering").unwrap()["group_properties"]["members_count"],
        12
    );
    let report = only(server.events("event=report_generated"));
    assert_eq!(
        report["properties"]["$groups"],
        json!({"company": "acme_corp", "team": "engineering"})
    );

    let tagged = server.person("user_ctx").unwrap();
    assert_eq!(
        properties_without_creator(&tagged),
        json!({"session_type": "premium", "subscription_status": "active"})
    );
    let dashboard = only(server.events("event=dashboard_viewed"));
    assert_eq!(dashboard["distinct_id"], "user_ctx");
    assert_eq!(dashboard["properties"]["session_type"], "premium");
    client.shutdown().unwrap();
}

#[test]
fn flags_evaluate_locally_and_ask_the_server_only_when_they_must() {
    let server = Server::start();
    let setup = client(&server);
    setup
        .group_identify(
            GroupIdentify::new("company", "acme_corp").properties(json!({"size": "large"})),
        )
        .unwrap();
    setup
        .set(Set::new(json!({"plan": "enterprise"})).distinct_id("stored_user"))
        .unwrap();
    setup.flush().unwrap();
    server.create_flag(json!({"key": "new_dashboard", "filters": {"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "size", "value": "large", "type": "group", "group_type_index": 0}]}],
            "payloads": {"true": "{\"layout\": \"grid\"}"}}}),
    );
    server.create_flag(json!({"key": "enterprise", "filters": {"groups": [
            {"properties": [{"key": "plan", "value": "enterprise", "type": "person"}]}]}}));
    server.create_flag(json!({"key": "colour", "filters": {"groups": [{"properties": []}], "multivariate": {"variants": [
            {"key": "red", "rollout_percentage": 50}, {"key": "blue", "rollout_percentage": 50}]}}}),
    );

    let local = Client::builder(PROJECT_KEY)
        .host(&server.base)
        .personal_api_key(PERSONAL_KEY)
        .build()
        .unwrap();
    local.load_feature_flags().unwrap();
    let remote = client(&server);

    let company = FlagOptions::new()
        .group("company", "acme_corp")
        .group_properties("company", json!({"size": "large"}));
    for client in [&local, &remote] {
        assert_eq!(
            client
                .feature_enabled("new_dashboard", "user123", &company)
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            client
                .get_feature_flag_payload("new_dashboard", "user123", &company)
                .unwrap(),
            Some(json!({"layout": "grid"}))
        );
        // Not in the company: off, and no request needed locally.
        assert_eq!(
            client
                .feature_enabled("new_dashboard", "user123", &FlagOptions::new())
                .unwrap(),
            Some(false)
        );
        // Stored properties only the server has.
        assert_eq!(
            client
                .feature_enabled("enterprise", "stored_user", &FlagOptions::new())
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            client
                .get_feature_flag("missing", "user123", &company)
                .unwrap(),
            None
        );
    }
    // Local and remote agree on the hashed variant.
    for id in ["a", "b", "c", "d"] {
        let options = FlagOptions::new();
        assert_eq!(
            local.get_feature_flag("colour", id, &options).unwrap(),
            remote.get_feature_flag("colour", id, &options).unwrap()
        );
    }
    let all = local
        .get_all_flags(
            "stored_user",
            &FlagOptions::new().group("company", "acme_corp"),
        )
        .unwrap();
    // The group flag reads a property only the server has; so does `enterprise`.
    assert_eq!(all["new_dashboard"], FlagValue::Enabled(true));
    assert_eq!(all["enterprise"], FlagValue::Enabled(true));
    assert!(all["colour"].variant().is_some());
    assert_eq!(
        local
            .get_feature_flag(
                "enterprise",
                "someone",
                &FlagOptions::new().only_evaluate_locally(true)
            )
            .unwrap(),
        None
    );

    local.flush().unwrap();
    remote.flush().unwrap();
    let called = server.events("event=$feature_flag_called&distinct_id=user123");
    let dashboard: Vec<&Value> = called
        .iter()
        .filter(|e| e["properties"]["$feature_flag"] == "new_dashboard")
        .collect();
    // Once per client, value and groups: (true, acme) and (false, none).
    assert_eq!(dashboard.len(), 4, "{dashboard:?}");
    let locally: Vec<bool> = dashboard
        .iter()
        .map(|e| e["properties"]["locally_evaluated"].as_bool().unwrap())
        .collect();
    assert_eq!(locally.iter().filter(|l| **l).count(), 2);
    let grouped = dashboard
        .iter()
        .find(|e| {
            e["properties"]["$feature_flag_response"] == true
                && e["properties"]["locally_evaluated"] == true
        })
        .unwrap();
    assert_eq!(
        grouped["properties"]["$groups"],
        json!({"company": "acme_corp"})
    );
    assert_eq!(grouped["properties"]["$feature/new_dashboard"], true);
    let stored = server.events("event=$feature_flag_called&distinct_id=stored_user");
    assert!(stored
        .iter()
        .all(|e| e["properties"]["locally_evaluated"] == false));
}

#[test]
fn definitions_are_polled_so_new_flags_evaluate_locally() {
    let server = Server::start();
    let client = Client::builder(PROJECT_KEY)
        .host(&server.base)
        .personal_api_key(PERSONAL_KEY)
        .poll_interval(std::time::Duration::from_millis(100))
        .build()
        .unwrap();
    client.load_feature_flags().unwrap();
    let locally = FlagOptions::new().only_evaluate_locally(true);
    assert_eq!(
        client.get_feature_flag("late", "u", &locally).unwrap(),
        None
    );
    server.create_flag(json!({"key": "late", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match client.get_feature_flag("late", "u", &locally).unwrap() {
            Some(value) => break assert_eq!(value, FlagValue::Enabled(true)),
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            None => panic!("the poller never picked up the new flag"),
        }
    }
}
