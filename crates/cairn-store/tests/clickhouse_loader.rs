//! The journal's ClickHouse loader against a real 2-shard cluster: a load
//! cut off by a crash after its inserts is redone on the next start and
//! stored once; merges reach ClickHouse as flattened overrides, so a
//! person merged twice counts once on every shard.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use cairn_core::{Event, Person, ProjectId};
use cairn_store::clickhouse::{ClickHouse as Client, ClickHouseConfig, ClickHouseLoader};
use cairn_store::{Commit, DuckStore, EntityState, FollowerSpec, IngestStore, JournaledWriter};
use support::clickhouse::{ClickHouse, CLUSTER};

const P: ProjectId = ProjectId(1);

fn person(distinct_id: &str) -> Person {
    Person {
        project_id: P,
        id: Person::uuid_for(P, distinct_id),
        properties: Default::default(),
        is_identified: false,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        version: 0,
        distinct_ids: vec![distinct_id.to_string()],
    }
}

fn events(person: &Person, count: usize) -> Vec<Event> {
    (0..count)
        .map(|i| Event {
            project_id: P,
            uuid: Uuid::now_v7(),
            event: "e".into(),
            distinct_id: format!("{}-{i}", person.distinct_ids[0]),
            person_id: Some(person.id),
            timestamp: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            inserted_at: Utc::now(),
            properties: Default::default(),
            groups: vec![],
        })
        .collect()
}

fn merge(merged: &Person, into: &Person) -> Commit {
    Commit {
        persons: vec![into.clone()],
        deleted_persons: vec![(P, merged.id)],
        person_overrides: vec![(P, merged.id, into.id)],
        ..Default::default()
    }
}

/// A writer over a DuckDB store in `dir`, loading ClickHouse `ch` beside.
fn open(dir: &std::path::Path, ch: &ClickHouse) -> JournaledWriter<cairn_store::DuckWriter> {
    let store = DuckStore::open(dir, 5).unwrap();
    let entities = Arc::new(EntityState::open(dir, 8 << 20).unwrap());
    let nodes = (0..ch.shards())
        .map(|shard| {
            let mut config = ClickHouseConfig::new(ch.http_url(shard));
            config.cluster = Some(CLUSTER.into());
            Client::new(config)
        })
        .collect();
    let follower = FollowerSpec {
        engine: "clickhouse",
        target: Box::new(ClickHouseLoader::new(nodes).unwrap()),
        backlog_limit: u64::MAX,
    };
    JournaledWriter::open(
        store.writer().unwrap(),
        store.writer().unwrap(),
        dir,
        entities,
        vec![follower],
    )
    .unwrap()
}

fn wait(writer: &JournaledWriter<cairn_store::DuckWriter>) {
    writer
        .follower_barrier("clickhouse")
        .unwrap()
        .wait()
        .unwrap();
}

fn count(ch: &ClickHouse, sql: &str) -> u64 {
    ch.query(0, sql).trim().parse().unwrap()
}

#[test]
fn a_load_cut_off_after_its_inserts_is_redone_once_and_merges_count_once() {
    let ch = ClickHouse::start(2);
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (person("a"), person("b"), person("c"));
    let mut writer = open(dir.path(), &ch);
    for p in [&a, &b, &c] {
        let commit = Commit {
            events: events(p, 50),
            persons: vec![p.clone()],
            ..Default::default()
        };
        writer.commit(Arc::new(commit)).unwrap();
    }
    wait(&writer);
    assert_eq!(count(&ch, "SELECT count() FROM events"), 150);
    // a merges into b, then b into c: a's events lead straight to c.
    writer.commit(Arc::new(merge(&a, &b))).unwrap();
    writer.commit(Arc::new(merge(&b, &c))).unwrap();
    let last = Commit {
        events: events(&c, 30),
        ..Default::default()
    };
    writer.commit(Arc::new(last)).unwrap();
    wait(&writer);
    drop(writer);
    let persons = "SELECT uniqExact(coalesce(o.person_id, e.person_id))
         FROM events e LEFT JOIN person_overrides o
           ON o.project_id = e.project_id AND o.old_person_id = e.person_id
         SETTINGS join_use_nulls = 1";
    assert_eq!(count(&ch, persons), 1);
    assert_eq!(count(&ch, "SELECT count() FROM persons"), 1);

    // The crash: the last load's events are in, its record of being loaded
    // is not. The next start redoes the range its intent names.
    let loaded = count(&ch, "SELECT max(seq) FROM cairn_loads");
    for shard in 0..ch.shards() {
        ch.query(
            shard,
            &format!("DELETE FROM cairn_loads WHERE seq = {loaded}"),
        );
    }
    assert!(count(&ch, "SELECT max(seq) FROM cairn_loads") < loaded);
    let writer = open(dir.path(), &ch);
    wait(&writer);
    assert_eq!(count(&ch, "SELECT max(seq) FROM cairn_loads"), loaded);
    assert_eq!(count(&ch, "SELECT count() FROM events"), 180);
    assert_eq!(count(&ch, "SELECT uniqExact(uuid) FROM events"), 180);
    assert_eq!(count(&ch, persons), 1);
}
