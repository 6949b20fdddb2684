//! A locked-down store: no SQL reaches a file outside the database, no
//! setting changes, and everything Cairn itself does still works (JSON
//! access, commits, checkpoints, queries that spill to disk).

use serde_json::json;

use cairn_core::{Event, ProjectId};
use cairn_store::{Commit, DuckStore, IngestStore};

fn locked(dir: &std::path::Path) -> DuckStore {
    let store = DuckStore::open(dir, 5).unwrap();
    store.set_memory_limit("64MB").unwrap();
    store.lock_down().unwrap();
    store
}

#[test]
fn sql_cannot_read_or_write_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let store = locked(&dir.path().join("data"));
    let conn = store.conn().unwrap();

    let read = format!("SELECT * FROM read_csv('{}')", secret.display());
    let err = conn.execute_batch(&read).unwrap_err().to_string();
    assert!(
        err.contains("external access") || err.contains("Permission"),
        "{err}"
    );

    let out = dir.path().join("out.csv");
    let copy = format!("COPY (SELECT 1) TO '{}'", out.display());
    assert!(conn.execute_batch(&copy).is_err());
    assert!(!out.exists(), "COPY wrote a file");

    let attach = format!(
        "ATTACH '{}' AS other",
        dir.path().join("other.duckdb").display()
    );
    assert!(conn.execute_batch(&attach).is_err());

    // Nor can a setting undo it, on this connection or a new one.
    for set in [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET memory_limit = '100GB'",
    ] {
        assert!(conn.execute_batch(set).is_err(), "{set} was allowed");
    }
    let other = store.conn().unwrap();
    assert!(other.execute_batch(&read).is_err());
}

#[test]
fn cairn_still_works_locked_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = locked(dir.path());
    let mut writer = store.writer().unwrap();
    let now = chrono::Utc::now();
    let event = Event {
        project_id: ProjectId(1),
        uuid: uuid::Uuid::now_v7(),
        event: "signed up".into(),
        distinct_id: "u1".into(),
        person_id: None,
        timestamp: now,
        inserted_at: now,
        properties: json!({"plan": "pro"}).as_object().unwrap().clone(),
        groups: vec![],
    };
    let commit = Commit {
        events: vec![event],
        ..Default::default()
    };
    writer.commit(commit.into()).unwrap();

    let conn = store.conn().unwrap();
    let plan: String = conn
        .query_row(
            "SELECT json_extract_string(properties, '$.plan') FROM events",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plan, "pro");
    conn.execute_batch("CHECKPOINT").unwrap();

    // Four times the memory limit: the sort spills to the temp directory.
    let sorted: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT range, hash(range) AS h FROM range(40000000) ORDER BY h)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sorted, 40_000_000);
}
