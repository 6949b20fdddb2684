//! The private API: authentication, project isolation, projects and keys,
//! persons and events with their filters and paging.

mod common;

use common::{event, Server, PERSONAL_KEY, PROJECT_KEY};
use serde_json::{json, Value};

#[test]
fn the_private_api_needs_a_valid_personal_key() {
    let server = Server::start();
    let response = server.client.get(server.api("/persons/")).send().unwrap();
    assert_eq!(response.status(), 401);
    let response = server
        .client
        .get(server.api("/persons/"))
        .bearer_auth("phx_wrong")
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = server
        .client
        .get(server.api("/persons/"))
        .bearer_auth(PROJECT_KEY)
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let current = server
        .client
        .get(server.url("/api/projects/@current/"))
        .bearer_auth(PERSONAL_KEY)
        .send()
        .unwrap();
    assert_eq!(current.json::<Value>().unwrap()["api_token"], PROJECT_KEY);
}

#[test]
fn a_key_of_one_project_never_reaches_another() {
    let server = Server::start();
    let created: Value = server
        .authed(server.client.post(server.url("/api/projects/")))
        .json(&json!({"name": "Second"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (second_id, second_token) = (
        created["id"].as_i64().unwrap(),
        created["api_token"].as_str().unwrap().to_string(),
    );
    let second_key = created["personal_api_key"].as_str().unwrap().to_string();
    assert_eq!(second_id, 2);

    let body = json!({"api_key": second_token, "batch": [event("in-second", "s1", json!({"$set": {"p": 2}}))]});
    assert_eq!(
        server
            .client
            .post(server.url("/batch/"))
            .json(&body)
            .send()
            .unwrap()
            .status(),
        200
    );
    server.capture(json!([event("in-first", "s1", json!({}))]));

    // Project 1's key sees only project 1, and gets 404 for project 2.
    let names: Vec<Value> = server
        .events("")
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    assert_eq!(names, vec![json!("in-first")]);
    for path in ["/", "/events/", "/persons/", "/groups_types/"] {
        let response = server
            .client
            .get(server.url(&format!("/api/projects/{second_id}{path}")))
            .bearer_auth(PERSONAL_KEY)
            .send()
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // The second key sees the second project's person with its own properties.
    let person: Value = server
        .client
        .get(server.url(&format!("/api/projects/{second_id}/persons/s1/")))
        .bearer_auth(&second_key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(person["properties"]["p"], 2);
    let first_person = server.person("s1").unwrap();
    assert_ne!(first_person["id"], person["id"]);
}

#[test]
fn personal_keys_can_be_created_and_revoked() {
    let server = Server::start();
    let created: Value = server
        .authed(server.client.post(server.api("/personal_api_keys/")))
        .json(&json!({"label": "ci"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = created["value"].as_str().unwrap().to_string();
    assert!(secret.starts_with("phx_"));
    let listed = server.get("/personal_api_keys/");
    assert_eq!(listed["results"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert_eq!(
        server
            .client
            .get(server.api("/persons/"))
            .bearer_auth(&secret)
            .send()
            .unwrap()
            .status(),
        200
    );
    let id = created["id"].as_str().unwrap();
    let response = server
        .authed(
            server
                .client
                .delete(server.api(&format!("/personal_api_keys/{id}/"))),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        server
            .client
            .get(server.api("/persons/"))
            .bearer_auth(&secret)
            .send()
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn project_settings_are_validated() {
    let server = Server::start();
    let patch = |body: Value| {
        server
            .authed(server.client.patch(server.api("/")))
            .json(&body)
            .send()
            .unwrap()
    };
    let response = patch(json!({"timezone": "Europe/Berlin", "week_start_day": 1}));
    assert_eq!(response.status(), 200);
    let project: Value = response.json().unwrap();
    assert_eq!(
        (
            project["timezone"].clone(),
            project["week_start_day"].clone()
        ),
        (json!("Europe/Berlin"), json!(1))
    );
    let response = patch(json!({"timezone": "Mars/Olympus"}));
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().unwrap()["attr"], "timezone");
    assert_eq!(patch(json!({"week_start_day": 3})).status(), 400);
}

#[test]
fn persons_are_listed_searched_and_paged() {
    let server = Server::start();
    let events: Vec<Value> = (0..25)
        .map(|i| json!({"event": "$set", "distinct_id": format!("user-{i:02}"), "$set": {"email": format!("user{i}@example.com")},
            "timestamp": format!("2024-01-01T00:00:{i:02}Z")}))
        .collect();
    server.capture(Value::Array(events));
    let page = server.get("/persons/?limit=10");
    assert_eq!(page["results"].as_array().unwrap().len(), 10);
    assert_eq!(
        page["results"][0]["distinct_ids"],
        json!(["user-24"]),
        "newest first"
    );
    let next = page["next"].as_str().unwrap().to_string();
    let page2: Value = server
        .authed(server.client.get(next))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page2["results"][0]["distinct_ids"], json!(["user-14"]));
    let found = server.get("/persons/?search=user7%40");
    assert_eq!(found["results"].as_array().unwrap().len(), 1);
    assert_eq!(found["results"][0]["name"], "user7@example.com");
    let by_distinct_id = server.get("/persons/?distinct_id=user-03");
    assert_eq!(
        by_distinct_id["results"][0]["properties"]["email"],
        "user3@example.com"
    );
    let uuid = by_distinct_id["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server.person(&uuid).unwrap()["distinct_ids"],
        json!(["user-03"])
    );
}

#[test]
fn events_are_filtered_and_paged_newest_first() {
    let server = Server::start();
    let events: Vec<Value> = (0..30)
        .map(|i| json!({"event": if i % 2 == 0 { "even" } else { "odd" }, "distinct_id": format!("u{}", i % 3),
            "timestamp": "2024-03-01T00:00:00Z", "properties": {"i": i, "$groups": {"company": format!("c{}", i % 5)}}}))
        .collect();
    server.capture(Value::Array(events));
    assert_eq!(server.events("event=even").len(), 15);
    assert_eq!(server.events("distinct_id=u1").len(), 10);
    assert_eq!(server.events("group_type_index=0&group_key=c4").len(), 6);
    assert_eq!(server.events("after=2024-03-02").len(), 0);
    assert_eq!(server.events("before=2024-03-02").len(), 30);

    // Same timestamps everywhere: paging by cursor still sees each event once.
    let mut seen = std::collections::HashSet::new();
    for e in server.all_pages("/events/?limit=7") {
        assert!(seen.insert(e["uuid"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen.len(), 30);
    let response = server
        .authed(server.client.get(server.api("/events/?after=someday")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().unwrap()["attr"], "after");
}

#[test]
fn event_pages_reach_back_across_days_months_and_years() {
    let server = Server::start();
    let at = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    let events: Vec<Value> = [0, 0, 2, 40, 400, 900]
        .iter()
        .enumerate()
        .map(|(i, days)| json!({"event": "e", "distinct_id": "u", "timestamp": at(*days), "properties": {"i": i}}))
        .collect();
    server.capture(Value::Array(events));
    let order: Vec<i64> = server
        .all_pages("/events/?limit=2")
        .iter()
        .map(|e| e["properties"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order.len(), 6);
    assert_eq!(&order[2..], [2, 3, 4, 5]);
    assert_eq!(server.events("event=e").len(), 6);
}

#[test]
fn unknown_endpoints_are_404_with_a_message() {
    let server = Server::start();
    let response = server.client.get(server.url("/nope")).send().unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("/nope"));
}
