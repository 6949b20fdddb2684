//! Person identity is one concept: an event counts for the person it
//! belongs to now, the same in the events API and in insights.

mod common;

use common::{event, Server};
use serde_json::json;

/// posthog-js's default (`person_profiles: identified_only`): a visitor's
/// events are personless until `identify`, which gives their distinct id a
/// person. Those events then belong to that person (PostHog re-points them
/// with an override), in the API listing and in insights alike.
#[test]
fn events_sent_personless_belong_to_the_person_their_distinct_id_joins() {
    let server = Server::start();
    let personless = json!({"$process_person_profile": false});
    server.capture(json!([
        event("viewed_pricing", "anon-1", personless.clone()),
        event("viewed_pricing", "anon-2", personless),
    ]));
    server.capture(json!([
        // Neither id had a person: a new one is made for both.
        event(
            "$identify",
            "user-1",
            json!({"$anon_distinct_id": "anon-1"})
        ),
        // The identified id has a person already: the anonymous id joins it.
        event("signed_up", "user-2", json!({})),
        event(
            "$identify",
            "user-2",
            json!({"$anon_distinct_id": "anon-2"})
        ),
    ]));
    for (user, anon) in [("user-1", "anon-1"), ("user-2", "anon-2")] {
        let person = server.person(user).unwrap();
        let viewed = server.events(&format!("event=viewed_pricing&distinct_id={anon}"));
        assert_eq!(viewed[0]["person_id"], person["id"], "{user}");
        let theirs = server.events(&format!("person_id={}", person["id"].as_str().unwrap()));
        assert!(theirs.iter().any(|e| e["distinct_id"] == anon), "{user}");
    }

    let trends = json!({"kind": "TrendsQuery", "interval": "day", "dateRange": {"date_from": "-1d"},
        "series": [{"kind": "EventsNode", "event": null, "math": "dau"}]});
    let body = server.answer(trends);
    let data = body["results"][0]["data"].as_array().unwrap();
    assert_eq!(data.last().unwrap(), &json!(2), "{body}");
}
