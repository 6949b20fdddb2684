use chrono::Utc;
use serde_json::json;

use super::*;

const P: ProjectId = ProjectId(3);

fn person(distinct_id: &str, plan: &str) -> Person {
    Person {
        project_id: P,
        id: Person::uuid_for(P, distinct_id),
        properties: json!({"plan": plan}).as_object().unwrap().clone(),
        is_identified: false,
        created_at: Utc::now(),
        version: 0,
        distinct_ids: vec![distinct_id.into()],
    }
}

fn company(key: &str) -> Group {
    Group {
        project_id: P,
        group_type_index: 0,
        group_key: key.into(),
        properties: json!({"name": key.to_uppercase()})
            .as_object()
            .unwrap()
            .clone(),
        created_at: Utc::now(),
        version: 1,
    }
}

fn creating(persons: Vec<Person>) -> Commit {
    Commit {
        distinct_ids: persons
            .iter()
            .map(|p| (P, p.distinct_ids[0].clone(), p.id))
            .collect(),
        persons,
        ..Commit::default()
    }
}

#[test]
fn applied_entities_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = EntityState::open(dir.path(), 8 << 20).unwrap();
    let mut commit = creating(vec![person("a", "free")]);
    commit.groups.push(company("acme"));
    commit.group_types.push((
        P,
        GroupType {
            group_type: "company".into(),
            group_type_index: 0,
            name_singular: None,
            name_plural: None,
            created_at: Utc::now(),
        },
    ));
    state.apply(&commit, 7).unwrap();
    drop(state);

    let state = EntityState::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(state.applied_seq(), 7);
    assert_eq!(
        state.person_properties(P, "a").unwrap().unwrap()["plan"],
        "free"
    );
    assert_eq!(state.person_properties(ProjectId(4), "a").unwrap(), None);
    assert_eq!(
        state.group_properties(P, 0, "acme").unwrap().unwrap()["name"],
        "ACME"
    );
    assert_eq!(state.group_types(P).unwrap(), [(0, "company".to_string())]);
    let created_at = state.group(P, 0, "acme").unwrap().unwrap().created_at;
    assert_eq!(
        state.group_created_at(P, 0, "acme").unwrap(),
        Some(created_at)
    );
    assert_eq!(state.group_created_at(P, 0, "globex").unwrap(), None);
}

#[test]
fn a_merged_away_person_is_gone_and_its_ids_follow_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let state = EntityState::open(dir.path(), 8 << 20).unwrap();
    let (a, b) = (person("a", "free"), person("b", "team"));
    state
        .apply(&creating(vec![a.clone(), b.clone()]), 1)
        .unwrap();
    // Read once, so that the cache holds both.
    assert!(state.person(P, b.id).unwrap().is_some());

    let mut survivor = a.clone();
    survivor.distinct_ids.push("b".into());
    let merge = Commit {
        persons: vec![survivor],
        deleted_persons: vec![(P, b.id)],
        distinct_ids: vec![(P, "b".into(), a.id)],
        ..Commit::default()
    };
    state.apply(&merge, 2).unwrap();
    assert!(state.person(P, b.id).unwrap().is_none());
    assert_eq!(state.person_id(P, "b").unwrap(), Some(a.id));
    assert_eq!(
        state.person_properties(P, "b").unwrap().unwrap()["plan"],
        "free"
    );
}

#[test]
fn the_cache_stays_within_its_bound_and_misses_read_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let state = EntityState::open(dir.path(), 4 << 20).unwrap();
    let persons: Vec<Person> = (0..20_000)
        .map(|i| person(&format!("user-{i}"), &"x".repeat(100)))
        .collect();
    for (seq, chunk) in persons.chunks(1000).enumerate() {
        state
            .apply(&creating(chunk.to_vec()), seq as u64 + 1)
            .unwrap();
    }
    let stats = state.stats();
    assert!(
        stats.cache_bytes <= stats.cache_capacity,
        "{} of {}",
        stats.cache_bytes,
        stats.cache_capacity
    );
    assert!(
        stats.cache_entries < 2 * persons.len() as u64,
        "some entries were evicted"
    );
    for id in ["user-0", "user-19999"] {
        assert!(state.person_properties(P, id).unwrap().is_some(), "{id}");
    }
}

#[test]
fn an_import_replaces_the_state_and_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = EntityState::open(dir.path(), 8 << 20).unwrap();
    state
        .apply(&creating(vec![person("old", "free")]), 1)
        .unwrap();
    assert!(!state.is_complete().unwrap());
    state
        .import(5, |visitor| {
            visitor.person(person("new", "team"));
            visitor.group(company("acme"));
            Ok(())
        })
        .unwrap();
    assert!(state.is_complete().unwrap());
    assert_eq!(state.applied_seq(), 5);
    assert_eq!(state.person_properties(P, "old").unwrap(), None);
    assert_eq!(
        state.person_properties(P, "new").unwrap().unwrap()["plan"],
        "team"
    );
    assert!(state.group_properties(P, 0, "acme").unwrap().is_some());
}
