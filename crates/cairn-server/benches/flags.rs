//! Feature-flag benchmark. A fresh `cairn` gets 2,000 persons in 200
//! companies and 50 active flags (half by person, half by company, with
//! property filters and variants). Prints:
//! - in-process single-flag evaluations per second on one core, with the
//!   definitions the server serves;
//! - `POST /flags?v=2` over loopback from concurrent clients: requests/s and
//!   latency percentiles (every request evaluates all 50 flags).
//!
//!     cargo bench -p cairn-server --bench flags -- [--requests N] [--clients C]

mod support;

use std::time::Instant;

use cairn_core::time::{Clock, SystemClock};
use cairn_flags::{FeatureFlag, FlagSet, GroupSubject, Subject};
use hyper::body::Bytes;
use serde_json::{json, Value};
use support::{arg, drive, post, BenchServer, PERSONAL_KEY, PROJECT_KEY};

const PERSONS: usize = 2_000;
const COMPANIES: usize = 200;
const PLANS: [&str; 3] = ["free", "team", "enterprise"];

fn flag(i: usize) -> Value {
    let variants = json!({"variants": [
        {"key": "control", "rollout_percentage": 50},
        {"key": "test", "rollout_percentage": 30},
        {"key": "bold", "rollout_percentage": 20}]});
    if i.is_multiple_of(2) {
        json!({"key": format!("person-flag-{i}"), "filters": {
            "groups": [
                {"properties": [
                    {"key": "email", "value": "@example.com", "operator": "icontains", "type": "person"},
                    {"key": "plan", "value": ["team", "enterprise"], "operator": "exact", "type": "person"}],
                 "rollout_percentage": 60},
                {"properties": [{"key": "age", "value": 40, "operator": "gt", "type": "person"}],
                 "rollout_percentage": 30, "variant": if i.is_multiple_of(4) { json!("test") } else { Value::Null }}],
            "multivariate": if i.is_multiple_of(4) { variants } else { Value::Null }}})
    } else {
        json!({"key": format!("company-flag-{i}"), "filters": {
            "aggregation_group_type_index": 0,
            "groups": [
                {"properties": [{"key": "plan", "value": "enterprise", "type": "group", "group_type_index": 0}],
                 "rollout_percentage": 100},
                {"properties": [{"key": "seats", "value": 10, "operator": "gte", "type": "group", "group_type_index": 0}],
                 "rollout_percentage": 40}],
            "multivariate": if i % 4 == 1 { variants } else { Value::Null }}})
    }
}

fn seed(server: &BenchServer, client: &reqwest::blocking::Client) {
    let mut batch = Vec::new();
    for c in 0..COMPANIES {
        batch.push(
            json!({"event": "$groupidentify", "distinct_id": "seed", "properties": {
            "$group_type": "company", "$group_key": format!("company-{c}"),
            "$group_set": {"plan": PLANS[c % 3], "seats": c % 50}}}),
        );
    }
    for p in 0..PERSONS {
        batch.push(json!({"event": "$identify", "distinct_id": format!("user-{p}"), "properties": {
            "$set": {"email": format!("user-{p}@example.com"), "plan": PLANS[p % 3], "age": 18 + p % 50},
            "$groups": {"company": format!("company-{}", p % COMPANIES)}}}));
    }
    for chunk in batch.chunks(500) {
        let response = client
            .post(format!("{}/batch/", server.base))
            .json(&json!({"api_key": PROJECT_KEY, "batch": chunk}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for i in 0..50 {
        let response = client
            .post(format!("{}/api/projects/1/feature_flags/", server.base))
            .bearer_auth(PERSONAL_KEY)
            .json(&flag(i))
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    }
}

/// Single-flag evaluations per second on this thread.
fn in_process(definitions: &Value) -> f64 {
    let flags: Vec<FeatureFlag> = serde_json::from_value(definitions["flags"].clone()).unwrap();
    let set = FlagSet::new(flags);
    let keys: Vec<String> = set.flags().iter().map(|f| f.key.clone()).collect();
    let subjects: Vec<Subject> = (0..1_000)
        .map(|p| {
            let props = json!({"email": format!("user-{p}@example.com"), "plan": PLANS[p % 3], "age": 18 + p % 50});
            let mut subject = Subject::person(format!("user-{p}"), props.as_object().unwrap().clone(), SystemClock.now());
            let company = p % COMPANIES;
            let group = json!({"plan": PLANS[company % 3], "seats": company % 50, "$group_key": format!("company-{company}")});
            subject.groups.insert(
                0,
                GroupSubject {
                    key: format!("company-{company}"),
                    properties: group.as_object().unwrap().clone(),
                },
            );
            subject
        })
        .collect();
    let evaluations = 2_000_000;
    let started = Instant::now();
    let mut enabled = 0usize;
    for i in 0..evaluations {
        let result = set.evaluate(
            &keys[i % keys.len()],
            &subjects[(i / keys.len()) % subjects.len()],
        );
        enabled += usize::from(result.is_some_and(|r| r.enabled));
    }
    let rate = evaluations as f64 / started.elapsed().as_secs_f64();
    eprintln!("  ({enabled} of {evaluations} evaluations enabled)");
    rate
}

fn main() {
    let requests = arg("--requests", 200_000);
    let clients = arg("--clients", 16);
    let server = BenchServer::start();
    let client = reqwest::blocking::Client::new();
    seed(&server, &client);
    let definitions: Value = client
        .get(format!("{}/flags/definitions", server.base))
        .bearer_auth(PERSONAL_KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();

    println!("feature-flag benchmark: 50 active flags (25 by person, 25 by company), {PERSONS} persons, {COMPANIES} companies");
    let rate = in_process(&definitions);
    println!("  in process:  {rate:.0} single-flag evaluations/s on one core");

    let bodies: Vec<Bytes> = (0..PERSONS)
        .map(|p| {
            json!({"api_key": PROJECT_KEY, "distinct_id": format!("user-{p}"),
                   "groups": {"company": format!("company-{}", p % COMPANIES)},
                   "person_properties": {}, "group_properties": {}, "geoip_disable": true})
            .to_string()
            .into()
        })
        .collect();
    let load = drive(&server.base, clients, requests, move |i| {
        post("/flags/?v=2", bodies[i % bodies.len()].clone())
    });
    println!(
        "  /flags over loopback: {:.0} requests/s ({requests} requests, {clients} clients, {:.1} s)",
        requests as f64 / load.elapsed.as_secs_f64(),
        load.elapsed.as_secs_f64()
    );
    println!(
        "  latency:     p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        load.ms(0.5),
        load.ms(0.99),
        load.max_ms()
    );
    println!("  failed requests: {}", load.failures);
    println!("  server peak RSS: {:.0} MiB", server.peak_rss_mib());
}
