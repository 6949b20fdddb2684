//! What a commit writes is what the next start reads back.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use cairn_core::{Event, Group, GroupType, IngestionWarning, Person, ProjectId, WarningKind};
use cairn_store::entities::{EventFilter, GroupFilter, PersonFilter};
use cairn_store::{BulkLoader, Commit, DuckStore, EntityReader, IngestStore, SnapshotVisitor};

const P: ProjectId = ProjectId(1);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn person(distinct_id: &str, version: i64, properties: serde_json::Value) -> Person {
    Person {
        project_id: P,
        id: Person::uuid_for(P, distinct_id),
        properties: properties.as_object().unwrap().clone(),
        is_identified: false,
        created_at: at(0),
        version,
        distinct_ids: vec![distinct_id.to_string()],
    }
}

#[derive(Default)]
struct Collected {
    persons: Vec<Person>,
    group_types: Vec<GroupType>,
    groups: Vec<Group>,
}

impl SnapshotVisitor for Collected {
    fn person(&mut self, person: Person) {
        self.persons.push(person);
    }
    fn group_type(&mut self, _: ProjectId, group_type: GroupType) {
        self.group_types.push(group_type);
    }
    fn group(&mut self, group: Group) {
        self.groups.push(group);
    }
}

#[test]
fn commits_survive_reopening_and_upserts_replace() {
    let dir = tempfile::tempdir().unwrap();
    let event_uuid = Uuid::now_v7();
    {
        let store = DuckStore::open(dir.path(), 5).unwrap();
        let mut writer = store.writer().unwrap();
        let a = person("a", 0, json!({"plan": "free"}));
        let b = person("b", 0, json!({"only_b": 1}));
        writer
            .commit(std::sync::Arc::new(Commit {
                events: vec![Event {
                    project_id: P,
                    uuid: event_uuid,
                    event: "signed_up".into(),
                    distinct_id: "a".into(),
                    person_id: Some(a.id),
                    timestamp: at(5),
                    inserted_at: at(6),
                    properties: json!({"x": 1}).as_object().unwrap().clone(),
                    groups: vec![None, Some("acme".into())],
                }],
                persons: vec![a.clone(), b.clone()],
                distinct_ids: vec![(P, "a".into(), a.id), (P, "b".into(), b.id)],
                // Created here: appended without a search for stored rows,
                // and still replaced by the merge below.
                new_persons: vec![(P, a.id), (P, b.id)],
                new_distinct_ids: vec![(P, "a".into()), (P, "b".into())],
                group_types: vec![
                    (
                        P,
                        GroupType {
                            group_type: "team".into(),
                            group_type_index: 0,
                            name_singular: None,
                            name_plural: None,
                            created_at: at(0),
                        },
                    ),
                    (
                        P,
                        GroupType {
                            group_type: "company".into(),
                            group_type_index: 1,
                            name_singular: None,
                            name_plural: None,
                            created_at: at(0),
                        },
                    ),
                ],
                groups: vec![Group {
                    project_id: P,
                    group_type_index: 1,
                    group_key: "acme".into(),
                    properties: json!({"name": "Acme"}).as_object().unwrap().clone(),
                    created_at: at(1),
                    version: 1,
                }],
                warnings: vec![IngestionWarning {
                    project_id: P,
                    kind: WarningKind::GroupKeyTooLong,
                    details: json!({"k": 1}),
                    timestamp: at(2),
                }],
                ..Default::default()
            }))
            .unwrap();
        // Merge b into a: a is replaced, b deleted, b's distinct id moved.
        let mut merged = person("a", 1, json!({"plan": "team", "only_b": 1}));
        merged.is_identified = true;
        writer
            .commit(std::sync::Arc::new(Commit {
                persons: vec![merged],
                deleted_persons: vec![(P, b.id)],
                distinct_ids: vec![(P, "b".into(), a.id)],
                ..Default::default()
            }))
            .unwrap();
    }

    let store = DuckStore::open(dir.path(), 5).unwrap();
    let mut collected = Collected::default();
    let mut writer = store.writer().unwrap();
    BulkLoader::load_entities(&mut writer, &mut collected).unwrap();
    let mut uuids = Vec::new();
    IngestStore::event_uuids(&mut writer, None, &mut |_, uuid| uuids.push(uuid)).unwrap();
    let mut since = |time| {
        let mut later = Vec::new();
        IngestStore::event_uuids(&mut writer, Some(time), &mut |_, uuid| later.push(uuid)).unwrap();
        later
    };
    assert_eq!(since(at(6)), [event_uuid], "inserted at 6");
    assert!(since(at(7)).is_empty());
    assert_eq!(collected.persons.len(), 1);
    let a = &collected.persons[0];
    assert_eq!(a.properties["plan"], "team");
    assert!(a.is_identified);
    assert_eq!(a.distinct_ids, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(uuids, vec![event_uuid]);
    assert_eq!(collected.group_types.len(), 2);
    assert_eq!(collected.groups[0].display_name(), "Acme");

    let events = store
        .list_events(
            P,
            &EventFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(events[0].groups[1].as_deref(), Some("acme"));
    assert_eq!(events[0].person_id, Some(a.id));
    let by_b = store
        .list_persons(
            P,
            &PersonFilter {
                distinct_id: Some("b"),
                limit: 5,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(by_b[0].id, a.id);
    let groups = store
        .list_groups(
            P,
            &GroupFilter {
                group_type_index: 1,
                search: Some("acm"),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(groups.len(), 1);
    // GroupsQuery's search reads the `name` property and the key, not the
    // rest of the properties' text (which holds the word "name").
    let by_name_or_key = |term: &str| {
        let filter = GroupFilter {
            group_type_index: 1,
            name_or_key_contains: Some(term),
            limit: 10,
            ..Default::default()
        };
        store.list_groups(P, &filter).unwrap().len()
    };
    assert_eq!(
        (
            by_name_or_key("ACM"),
            by_name_or_key("cme"),
            by_name_or_key("name")
        ),
        (1, 1, 0)
    );
    let values = store.group_property_values(P, 1, "name", None).unwrap();
    assert_eq!(values, vec![(json!("Acme"), 1)]);
    assert_eq!(
        store.list_warnings(P, 10).unwrap()[0].kind,
        WarningKind::GroupKeyTooLong
    );
}

#[test]
fn raising_the_group_type_limit_adds_columns() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(DuckStore::open(dir.path(), 5).unwrap().group_columns(), 5);
    assert_eq!(DuckStore::open(dir.path(), 8).unwrap().group_columns(), 8);
    assert_eq!(
        DuckStore::open(dir.path(), 5).unwrap().group_columns(),
        8,
        "columns are never dropped"
    );
}

#[test]
fn stored_uuids_are_found_among_many_in_one_project() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckStore::open(dir.path(), 5).unwrap();
    let mut writer = store.writer().unwrap();
    let event = |uuid: Uuid| Event {
        project_id: P,
        uuid,
        event: "e".into(),
        distinct_id: "a".into(),
        person_id: None,
        timestamp: at(0),
        inserted_at: at(0),
        properties: Default::default(),
        groups: vec![],
    };
    let stored: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    writer
        .commit(std::sync::Arc::new(Commit {
            events: stored.iter().copied().map(event).collect(),
            ..Default::default()
        }))
        .unwrap();
    let mut asked: Vec<Uuid> = (0..50_000).map(|_| Uuid::now_v7()).collect();
    asked.extend(&stored);
    let found = IngestStore::stored_uuids(&mut writer, P, &asked).unwrap();
    assert_eq!(found, stored.iter().copied().collect());
    assert!(
        IngestStore::stored_uuids(&mut writer, ProjectId(2), &stored)
            .unwrap()
            .is_empty()
    );
    // The lookup leaves nothing behind for the next one.
    assert!(IngestStore::stored_uuids(&mut writer, P, &asked[..10])
        .unwrap()
        .is_empty());
}

#[test]
fn the_memory_limit_reaches_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckStore::open(dir.path(), 5).unwrap();
    store.set_memory_limit("64MB").unwrap();
    // Every connection shares the one database instance and its limit.
    let limit: String = store
        .conn()
        .unwrap()
        .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(limit, "61.0 MiB");
    store.set_memory_limit("1.5 GiB").unwrap();
    assert!(store.memory_used().is_ok());
}
