//! A 200 means committed: retried batches are stored once, and a `kill -9`
//! loses nothing that was acknowledged.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{event, Server, PROJECT_KEY};
use serde_json::{json, Value};

#[test]
fn a_retried_batch_is_stored_once() {
    let server = Server::start();
    let batch = json!([
        {"event": "e", "distinct_id": "u", "uuid": "0190b2b0-4f4e-7c53-a0a8-5d4a8e3e1b11"},
        {"event": "e", "distinct_id": "u", "uuid": "0190b2b0-4f4e-7c53-a0a8-5d4a8e3e1b12"},
    ]);
    server.capture(batch.clone());
    server.capture(batch);
    assert_eq!(server.events("").len(), 2);
}

#[test]
fn acknowledged_events_survive_kill_9_and_are_not_duplicated_after() {
    let mut server = Server::start();
    server.capture(json!([event(
        "$groupidentify",
        "u",
        json!({"$group_type": "company", "$group_key": "acme", "$group_set": {"name": "Acme"}})
    )]));

    // Several clients send concurrently; we kill the server mid-stream.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let base = server.base.clone();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (acknowledged, sent, base) = (acknowledged.clone(), sent.clone(), base.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for n in 0..10_000 {
                    let batch: Vec<Value> = (0..20)
                        .map(|i| json!({"event": "tick", "distinct_id": format!("w{worker}"), "uuid": uuid::Uuid::new_v4(),
                            "properties": {"n": n, "i": i, "$groups": {"company": "acme"}}}))
                        .collect();
                    sent.fetch_add(1, Ordering::Relaxed);
                    match client.post(format!("{base}/batch/")).json(&json!({"api_key": PROJECT_KEY, "batch": batch})).send() {
                        Ok(response) if response.status() == 200 => acknowledged.lock().unwrap().extend(batch),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    while sent.load(Ordering::Relaxed) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill();
    for worker in workers {
        worker.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 1000,
        "the test should kill mid-stream, after real work"
    );

    server.spawn();
    let stored: std::collections::HashSet<String> = count_ticks(&server);
    for event in &acknowledged {
        assert!(
            stored.contains(event["uuid"].as_str().unwrap()),
            "acknowledged event lost"
        );
    }
    // Clients retry what they sent before the crash: nothing is stored twice.
    for chunk in acknowledged.chunks(500) {
        server.capture(Value::Array(chunk.to_vec()));
    }
    assert_eq!(count_ticks(&server).len(), stored.len());
    assert_eq!(
        server.group(0, "acme").unwrap()["group_properties"]["name"],
        "Acme"
    );
}

fn count_ticks(server: &Server) -> std::collections::HashSet<String> {
    let mut uuids = std::collections::HashSet::new();
    for e in server.all_pages("/events/?event=tick&limit=1000") {
        assert!(
            uuids.insert(e["uuid"].as_str().unwrap().to_string()),
            "an event is stored twice"
        );
    }
    uuids
}
