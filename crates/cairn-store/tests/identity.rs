//! Person identity through the storage boundary: ingestion writes through
//! the journal into DuckDB, and the entity reader (waiting at the writer's
//! read barrier) lists each event under its current person, the way
//! insights resolve it (`cairn_store::identity`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use cairn_core::{Event, Person, ProjectId};
use cairn_store::entities::EventFilter;
use cairn_store::{
    Commit, DuckStore, EntityReader, EntityState, EventStore, IngestStore, JournaledWriter,
};

const P: ProjectId = ProjectId(1);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn person(distinct_id: &str) -> Person {
    Person {
        project_id: P,
        id: Person::uuid_for(P, distinct_id),
        properties: Default::default(),
        is_identified: false,
        created_at: at(0),
        version: 0,
        distinct_ids: vec![distinct_id.to_string()],
    }
}

fn event(person: &Person, seconds: i64) -> Event {
    Event {
        project_id: P,
        uuid: Uuid::now_v7(),
        event: "e".into(),
        distinct_id: person.distinct_ids[0].clone(),
        person_id: Some(person.id),
        timestamp: at(seconds),
        inserted_at: at(seconds),
        properties: Default::default(),
        groups: vec![],
    }
}

/// `merged`'s person (and its distinct id) becomes `into`.
fn merge(merged: &Person, into: &Person) -> Commit {
    Commit {
        persons: vec![into.clone()],
        deleted_persons: vec![(P, merged.id)],
        person_overrides: vec![(P, merged.id, into.id)],
        distinct_ids: vec![(P, merged.distinct_ids[0].clone(), into.id)],
        ..Default::default()
    }
}

fn persons_of(store: &DuckStore, filter: &EventFilter<'_>) -> Vec<(String, Option<Uuid>)> {
    EntityReader::list_events(store, P, filter)
        .unwrap()
        .into_iter()
        .map(|e| (e.distinct_id, e.person_id))
        .collect()
}

#[test]
fn a_merged_persons_events_list_under_the_person_it_became() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckStore::open(dir.path(), 5).unwrap();
    let entities = Arc::new(EntityState::open(dir.path(), 8 << 20).unwrap());
    let mut writer = JournaledWriter::open(
        store.writer().unwrap(),
        store.writer().unwrap(),
        dir.path(),
        entities,
        vec![],
    )
    .unwrap();
    let store = store.with_read_barrier(writer.barrier());
    let (x, y, z) = (person("x"), person("y"), person("z"));
    writer
        .commit(Arc::new(Commit {
            events: vec![event(&x, 1), event(&y, 2), event(&z, 3)],
            persons: vec![x.clone(), y.clone(), z.clone()],
            distinct_ids: ["x", "y", "z"]
                .iter()
                .map(|d| (P, d.to_string(), Person::uuid_for(P, d)))
                .collect(),
            ..Default::default()
        }))
        .unwrap();
    assert!(!store.has_person_overrides(P).unwrap());
    // x into y, then y into z: x's event leads to z in one step.
    writer.commit(Arc::new(merge(&x, &y))).unwrap();
    writer.commit(Arc::new(merge(&y, &z))).unwrap();

    let all = EventFilter {
        limit: 10,
        ..Default::default()
    };
    let z_id = Some(z.id);
    assert_eq!(
        persons_of(&store, &all),
        [("z".into(), z_id), ("y".into(), z_id), ("x".into(), z_id)],
        "read straight after the commits: the reader waited for the loader"
    );
    let of = |person: &Person| EventFilter {
        person_id: Some(person.id),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(persons_of(&store, &of(&z)).len(), 3);
    assert!(persons_of(&store, &of(&x)).is_empty());
    assert!(persons_of(&store, &of(&y)).is_empty());
    assert!(store.has_person_overrides(P).unwrap());
    assert!(!store.has_person_overrides(ProjectId(2)).unwrap());
}
