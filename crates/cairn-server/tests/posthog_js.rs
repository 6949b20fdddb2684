//! Compatibility: the real posthog-js (from npm) in headless Chromium
//! (Debian's, driven by playwright-core) sends to Cairn unchanged: pageviews
//! and events, identify, group with properties, reset, a group flag, the
//! gzip and base64-form transports, and sendBeacon on unload.

mod common;
#[path = "../../../scripts/node_compat.rs"]
mod node_compat;

use common::{Server, PERSONAL_KEY, PROJECT_KEY};
use node_compat::run_node;
use serde_json::{json, Value};

fn only(events: Vec<Value>) -> Value {
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

#[test]
fn posthog_js_in_a_browser_identifies_groups_and_reads_a_group_flag() {
    let server = Server::start();
    server.capture(
        json!([{"event": "$groupidentify", "distinct_id": "admin", "properties":
        {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}}]),
    );
    server.create_flag(json!({"key": "company-beta", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}]}]}}));

    let out = run_node(
        "posthog_js.mjs",
        &[&server.base, PROJECT_KEY, PERSONAL_KEY],
        true,
    );
    assert_eq!(out["failed"], json!([]), "{out}");
    assert_eq!(out["flag"], true, "{out}");

    // identify merged the anonymous visitor into the identified person.
    let person = server.person("js_user").unwrap();
    let anonymous = out["anonymous_id"].as_str().unwrap();
    assert!(person["distinct_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(anonymous)));
    assert_eq!(person["properties"]["email"], "js@acme.io");
    let pricing = only(server.events("event=viewed_pricing"));
    assert_eq!(pricing["person_id"], person["id"]);
    assert_eq!(pricing["properties"]["$lib"], "web");
    assert!(!server.events("event=$pageview").is_empty());

    // group() stored the company and tags later events.
    let report = only(server.events("event=report_generated"));
    assert_eq!(report["properties"]["$groups"], json!({"company": "acme"}));
    let acme = server.group(0, "acme").unwrap();
    assert_eq!(
        acme["group_properties"],
        json!({"plan": "enterprise", "name": "Acme", "seats": 40})
    );

    // reset() starts a new anonymous visitor, not merged with anyone.
    let after = only(server.events("event=after_reset"));
    assert_eq!(after["distinct_id"], out["reset_id"]);
    assert_ne!(after["person_id"], person["id"]);

    // Events went gzip-compressed with Cairn's remote config, and as base64
    // forms (`data=…`) where the config offered only base64; the event
    // captured as the page unloaded left by sendBeacon.
    let requests = out["requests"].as_array().unwrap();
    let events_sent = |session: &str, content_type: &str| {
        requests.iter().any(|r| {
            r["session"] == session
                && r["type"] == content_type
                && r["path"].as_str().unwrap().ends_with("/e/")
        })
    };
    assert!(events_sent("gzip", "text/plain"), "{requests:?}");
    assert!(
        events_sent("base64", "application/x-www-form-urlencoded"),
        "{requests:?}"
    );
    let beacons = out["beacons"].as_array().unwrap();
    assert!(!beacons.is_empty(), "{out}");
    assert!(beacons
        .iter()
        .all(|url| url.as_str().unwrap().contains("compression=base64")));
    let leaving = only(server.events("event=leaving"));
    assert_eq!(leaving["distinct_id"], "beacon_user");
    assert_eq!(leaving["properties"]["reason"], "unload");
    assert_eq!(
        only(server.events("event=form_sent"))["distinct_id"],
        "beacon_user"
    );
}
