use super::*;
use serde_json::json;

const P: ProjectId = ProjectId(1);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn event(name: &str, distinct_id: &str, properties: Value, seconds: i64) -> IncomingEvent {
    IncomingEvent {
        uuid: Uuid::new_v4(),
        event: name.into(),
        distinct_id: distinct_id.into(),
        properties: properties.as_object().unwrap().clone(),
        timestamp: at(seconds),
        warnings: vec![],
    }
}

/// A processor over an empty entity state of its own.
fn processor() -> Processor {
    Processor::new(Arc::new(EntityState::temporary(8 << 20).unwrap()), 5)
}

/// Processes `events` as the pipeline does, and stores the commit.
fn run(processor: &mut Processor, events: Vec<IncomingEvent>) -> Commit {
    processor.prepare(P, &events).unwrap();
    processor.process(P, events, at(1000), &HashSet::new());
    let commit = processor.take_commit();
    let seq = processor.entities.applied_seq() + 1;
    processor.entities.apply(&commit, seq).unwrap();
    processor.committed();
    commit
}

fn props(processor: &Processor, distinct_id: &str) -> Value {
    let mut properties = processor
        .person_of(P, distinct_id)
        .expect("person")
        .properties
        .clone();
    properties.remove("$creator_event_uuid");
    Value::Object(properties)
}

#[test]
fn set_then_set_once_then_set() {
    let mut p = processor();
    run(
        &mut p,
        vec![
            event("$set", "u2", json!({"$set": {"plan": "free"}}), 0),
            event(
                "$set_once",
                "u2",
                json!({"$set_once": {"plan": "pro", "first": "x"}}),
                1,
            ),
            event("$set", "u2", json!({"$set": {"plan": "team"}}), 2),
            event("$set_once", "u2", json!({"$set_once": {"first": "y"}}), 3),
        ],
    );
    assert_eq!(props(&p, "u2"), json!({"plan": "team", "first": "x"}));
}

#[test]
fn alias_target_wins_and_persons_fuse() {
    let mut p = processor();
    run(
        &mut p,
        vec![
            event("$set", "A", json!({"$set": {"name": "a", "only_a": 1}}), 10),
            event("$set", "B", json!({"$set": {"name": "b", "only_b": 1}}), 5),
        ],
    );
    let commit = run(
        &mut p,
        vec![event(
            "$create_alias",
            "A",
            json!({"alias": "B", "distinct_id": "A"}),
            20,
        )],
    );
    let person = p.person_of(P, "A").unwrap().clone();
    assert_eq!(p.person_of(P, "B").unwrap().id, person.id);
    assert_eq!(person.properties["name"], "a");
    assert_eq!(person.properties["only_b"], 1);
    assert!(person.is_identified);
    assert_eq!(person.created_at, at(5));
    assert_eq!(commit.deleted_persons, vec![(P, Person::uuid_for(P, "B"))]);
    assert_eq!(person.id, Person::uuid_for(P, "A"));
}

#[test]
fn merge_of_an_identified_source_is_refused() {
    let mut p = processor();
    run(
        &mut p,
        vec![
            event("$set", "A", json!({"$set": {"a": 1}}), 0),
            event("$identify", "A", json!({"$anon_distinct_id": "anon-1"}), 1),
            event("$set", "C", json!({"$set": {"c": 1}}), 2),
        ],
    );
    let commit = run(
        &mut p,
        vec![event(
            "$identify",
            "C",
            json!({"$anon_distinct_id": "A"}),
            3,
        )],
    );
    assert_ne!(
        p.person_of(P, "C").unwrap().id,
        p.person_of(P, "A").unwrap().id
    );
    assert_eq!(
        commit.warnings[0].kind,
        WarningKind::CannotMergeAlreadyIdentified
    );
    assert_eq!(commit.events.len(), 1);
    // A fresh id simply joins the identified person.
    run(
        &mut p,
        vec![event(
            "$identify",
            "D",
            json!({"$anon_distinct_id": "A"}),
            4,
        )],
    );
    assert_eq!(
        p.person_of(P, "D").unwrap().id,
        p.person_of(P, "A").unwrap().id
    );
}

#[test]
fn merge_dangerously_merges_identified_persons() {
    let mut p = processor();
    run(
        &mut p,
        vec![
            event("$identify", "A", json!({"$anon_distinct_id": "a0"}), 0),
            event("$identify", "B", json!({"$anon_distinct_id": "b0"}), 0),
        ],
    );
    run(
        &mut p,
        vec![event("$merge_dangerously", "A", json!({"alias": "B"}), 1)],
    );
    assert_eq!(
        p.person_of(P, "b0").unwrap().id,
        p.person_of(P, "A").unwrap().id
    );
}

#[test]
fn illegal_ids_never_merge() {
    let mut p = processor();
    let commit = run(
        &mut p,
        vec![
            event("$create_alias", "anonymous", json!({"alias": "u9"}), 0),
            event("$create_alias", "u9", json!({"alias": "null"}), 1),
        ],
    );
    assert_ne!(
        p.person_of(P, "u9").unwrap().id,
        p.person_of(P, "anonymous").unwrap().id
    );
    assert!(p.person_of(P, "null").is_none());
    assert_eq!(commit.events.len(), 2);
    assert!(commit
        .warnings
        .iter()
        .all(|w| w.kind == WarningKind::CannotMergeWithIllegalDistinctId));
}

#[test]
fn identify_of_two_unknown_ids_creates_one_identified_person() {
    let mut p = processor();
    run(
        &mut p,
        vec![event(
            "$identify",
            "user",
            json!({"$anon_distinct_id": "anon", "$set": {"e": 1}}),
            0,
        )],
    );
    let person = p.person_of(P, "anon").unwrap();
    assert!(person.is_identified);
    assert_eq!(
        person.distinct_ids,
        vec!["user".to_string(), "anon".to_string()]
    );
    assert_eq!(person.properties["e"], 1);
}

#[test]
fn personless_events_create_no_person_and_no_groups() {
    let mut p = processor();
    let commit = run(
        &mut p,
        vec![event(
            "e",
            "anon",
            json!({"$process_person_profile": false,
        "$set": {"a": 1}, "$groups": {"company": "acme"}}),
            0,
        )],
    );
    assert!(p.person_of(P, "anon").is_none());
    assert!(commit.persons.is_empty() && commit.group_types.is_empty());
    assert!(commit.events[0].groups.is_empty());
    assert!(!commit.events[0].properties.contains_key("$set"));
}

#[test]
fn duplicate_uuids_are_stored_once() {
    let mut p = processor();
    let e = event("e", "u", json!({}), 0);
    let processed = p.process(P, vec![e.clone(), e.clone()], at(0), &HashSet::new());
    assert_eq!(
        processed,
        Processed {
            stored: 1,
            duplicates: 1
        }
    );
    assert_eq!(
        p.process(P, vec![e.clone()], at(0), &HashSet::new())
            .duplicates,
        1
    );
    assert_eq!(
        p.process(ProjectId(2), vec![e], at(0), &HashSet::new())
            .stored,
        1
    );
}

#[test]
fn group_types_are_indexed_in_first_seen_order_up_to_the_limit() {
    let mut p = processor();
    let events = (1..=6)
        .map(|i| {
            event(
                "$groupidentify",
                "u",
                json!({"$group_type": format!("t{i}"), "$group_key": "k"}),
                0,
            )
        })
        .collect();
    let commit = run(&mut p, events);
    let names: Vec<_> = commit
        .group_types
        .iter()
        .map(|(_, t)| (t.group_type.clone(), t.group_type_index))
        .collect();
    assert_eq!(
        names,
        (1..=5)
            .map(|i| (format!("t{i}"), i as u8 - 1))
            .collect::<Vec<_>>()
    );
    assert_eq!(commit.warnings.len(), 1);
    assert_eq!(commit.warnings[0].kind, WarningKind::GroupTypeLimitReached);

    let commit = run(
        &mut p,
        vec![event(
            "e",
            "u",
            json!({"$groups": {"t6": "k", "t2": "k"}}),
            1,
        )],
    );
    assert_eq!(commit.events[0].groups, vec![None, Some("k".to_string())]);
    assert!(commit.warnings.is_empty(), "the limit warning is debounced");
}

#[test]
fn group_identify_merges_shallowly_and_keeps_earliest_created_at() {
    let mut p = processor();
    run(
        &mut p,
        vec![event(
            "$groupidentify",
            "x",
            json!({"$group_type": "company", "$group_key": "acme",
        "$group_set": {"name": "Acme", "seats": 5}}),
            10,
        )],
    );
    let commit = run(
        &mut p,
        vec![event(
            "$groupidentify",
            "y",
            json!({"$group_type": "company", "$group_key": "acme",
        "$group_set": {"seats": 7, "tier": "gold"}, "$set": {"person": 1}}),
            5,
        )],
    );
    let group = &commit.groups[0];
    assert_eq!(
        Value::Object(group.properties.clone()),
        json!({"name": "Acme", "seats": 7, "tier": "gold"})
    );
    assert_eq!(group.created_at, at(5));
    assert!(
        p.person_of(P, "y").is_none(),
        "$groupidentify creates no person"
    );
}

/// A later round reads only when a named company was created, not its
/// record: an event no older changes nothing, an older one still moves
/// its creation back and keeps its properties.
#[test]
fn groups_named_in_later_rounds_keep_their_record() {
    let mut p = processor();
    let acme = || json!({"$groups": {"company": "acme"}});
    run(
        &mut p,
        vec![event(
            "$groupidentify",
            "x",
            json!({"$group_type": "company", "$group_key": "acme",
                "$group_set": {"name": "Acme"}}),
            10,
        )],
    );
    let commit = run(&mut p, vec![event("used", "u1", acme(), 20)]);
    assert!(commit.groups.is_empty(), "a newer event changes nothing");

    let commit = run(
        &mut p,
        vec![
            event("used", "u1", acme(), 30),
            event("used", "u2", acme(), 5),
        ],
    );
    assert_eq!(commit.groups.len(), 1);
    assert_eq!(commit.groups[0].created_at, at(5));
    assert_eq!(
        Value::Object(commit.groups[0].properties.clone()),
        json!({"name": "Acme"})
    );
    assert_eq!(commit.events[1].groups, [Some("acme".to_string())]);
}

#[test]
fn group_properties_are_capped_as_persons_are() {
    let mut p = processor();
    let identify = |set: Value, seconds| {
        event(
            "$groupidentify",
            "x",
            json!({"$group_type": "company", "$group_key": "acme", "$group_set": set}),
            seconds,
        )
    };
    run(&mut p, vec![identify(json!({"plan": "pro"}), 10)]);
    let half = "x".repeat(MAX_PROPERTIES_BYTES / 2);
    let commit = run(
        &mut p,
        vec![
            identify(json!({"a": half}), 5),
            identify(json!({"b": half}), 5),
        ],
    );
    let group = &commit.groups[0];
    assert_eq!(group.properties.keys().collect::<Vec<_>>(), ["plan", "a"]);
    assert_eq!(commit.warnings.len(), 1);
    assert_eq!(
        commit.warnings[0].kind,
        WarningKind::GroupPropertiesSizeViolation
    );
    assert_eq!(commit.events.len(), 2, "the events are stored all the same");
}

#[test]
fn groups_on_events_create_listed_groups_and_warn_on_bad_keys() {
    let mut p = processor();
    let commit = run(
        &mut p,
        vec![event(
            "e",
            "u",
            json!({"$groups": {"company": 42, "team": true,
        "project": "k".repeat(401)}}),
            0,
        )],
    );
    assert_eq!(commit.events[0].groups, vec![Some("42".to_string())]);
    assert_eq!(commit.groups.len(), 1);
    let kinds: Vec<_> = commit.warnings.iter().map(|w| w.kind).collect();
    assert!(
        kinds.contains(&WarningKind::InvalidGroupKey)
            && kinds.contains(&WarningKind::GroupKeyTooLong)
    );
}

#[test]
fn initial_properties_reach_the_person() {
    let mut p = processor();
    run(
        &mut p,
        vec![event(
            "$pageview",
            "u",
            json!({"$browser": "Firefox", "utm_source": "ad"}),
            0,
        )],
    );
    run(
        &mut p,
        vec![event("$pageview", "u", json!({"$browser": "Chrome"}), 1)],
    );
    let person = props(&p, "u");
    assert_eq!(person["$browser"], "Chrome");
    assert_eq!(person["$initial_browser"], "Firefox");
    assert_eq!(person["$initial_utm_source"], "ad");
}

#[test]
fn unchanged_persons_are_not_rewritten() {
    let mut p = processor();
    run(&mut p, vec![event("e", "u", json!({"$set": {"a": 1}}), 0)]);
    let commit = run(&mut p, vec![event("e", "u", json!({"$set": {"a": 1}}), 1)]);
    assert!(commit.persons.is_empty());
}

#[test]
fn uuids_from_the_store_are_settled_by_asking_it() {
    let old = event("e", "u", json!({}), 0);
    let mut saved = SeenUuids::default();
    saved.remember(&old.uuid); // as the saved filters have it
    let mut p = processor().with_seen_uuids([(P, saved)]);
    let new = event("e", "u", json!({}), 0);
    let batch = vec![old.clone(), new.clone()];
    assert_eq!(p.unsure(P, &batch), vec![old.uuid], "only the stored one");
    let stored = HashSet::from([old.uuid]);
    assert_eq!(p.process(P, batch, at(0), &stored).duplicates, 1);
    let commit = p.take_commit();
    p.entities.apply(&commit, 1).unwrap();
    p.committed();
    // Once stored, a uuid is known without the store.
    assert_eq!(p.projects[&P].uuids.check(&new.uuid), Seen::Yes);
}

#[test]
fn a_new_processor_continues_from_the_entity_state() {
    let mut p = processor();
    run(
        &mut p,
        vec![
            event(
                "$identify",
                "A",
                json!({"$anon_distinct_id": "anon", "$set": {"plan": "team"}}),
                0,
            ),
            event("e", "A", json!({"$groups": {"company": "acme"}}), 1),
        ],
    );
    let person = p.person_of(P, "anon").unwrap();
    // As after a restart: nothing but the entity state is shared.
    let mut p = Processor::new(p.entities.clone(), 5);
    let commit = run(
        &mut p,
        vec![
            event(
                "e",
                "anon",
                json!({"$set": {"seats": 3}, "$groups": {"company": "acme"}}),
                2,
            ),
            event(
                "$groupidentify",
                "A",
                json!({"$group_type": "company", "$group_key": "acme",
                "$group_set": {"name": "Acme"}}),
                3,
            ),
        ],
    );
    assert_eq!(commit.events[0].person_id, Some(person.id));
    assert_eq!(commit.groups.len(), 1);
    assert_eq!(
        commit.groups[0].group_type_index, 0,
        "the known type is reused"
    );
    assert!(commit.group_types.is_empty());
    assert_eq!(props(&p, "A"), json!({"plan": "team", "seats": 3}));
}

#[test]
fn a_discarded_round_leaves_no_trace() {
    let mut p = processor();
    let first = event("e", "u", json!({"$set": {"plan": "free"}}), 0);
    // A request of the round fails half way: everything of the round goes.
    p.prepare(P, std::slice::from_ref(&first)).unwrap();
    p.process(P, vec![first.clone()], at(0), &HashSet::new());
    p.discard();
    let commit = run(
        &mut p,
        vec![event("e", "u", json!({"$set": {"seen": true}}), 1)],
    );
    assert_eq!(commit.events.len(), 1, "only the next round's event");
    assert_eq!(props(&p, "u"), json!({"seen": true}));

    // A commit the store refused: its changes and uuids are forgotten too.
    p.prepare(P, std::slice::from_ref(&first)).unwrap();
    p.process(P, vec![first.clone()], at(2), &HashSet::new());
    drop(p.take_commit());
    p.discard();
    assert_eq!(props(&p, "u"), json!({"seen": true}));
    let commit = run(&mut p, vec![first]);
    assert_eq!(commit.events.len(), 1, "a resent event is not a duplicate");
    assert_eq!(props(&p, "u"), json!({"seen": true, "plan": "free"}));
}

/// A request that changes nothing reads only its person's id; a later one
/// of the same round that changes the person reads the person too.
#[test]
fn a_request_that_changes_a_person_after_one_that_did_not() {
    let mut p = processor();
    run(
        &mut p,
        vec![event("e", "u", json!({"$set": {"plan": "free"}}), 0)],
    );
    let first = vec![event("e", "u", json!({}), 1)];
    let second = vec![event("e", "u", json!({"$set": {"plan": "team"}}), 2)];
    p.prepare(P, &first).unwrap();
    assert!(p.projects[&P].persons.is_empty(), "only the id is read");
    p.process(P, first, at(1), &HashSet::new());
    p.prepare(P, &second).unwrap();
    p.process(P, second, at(2), &HashSet::new());
    let commit = p.take_commit();
    p.entities.apply(&commit, 2).unwrap();
    p.committed();
    assert_eq!(commit.events[0].person_id, commit.events[1].person_id);
    assert_eq!(props(&p, "u"), json!({"plan": "team"}));
}

/// A commit names the persons and distinct ids it creates, so that engines
/// append them without looking for stored rows; never a stored one.
#[test]
fn a_commit_names_what_it_creates_and_nothing_stored() {
    let mut p = processor();
    let first = run(
        &mut p,
        vec![
            event("pageview", "known", json!({}), 0),
            event(
                "$identify",
                "new-a",
                json!({"$anon_distinct_id": "new-b"}),
                1,
            ),
        ],
    );
    let known = p.person_of(P, "known").unwrap().id;
    let identified = p.person_of(P, "new-a").unwrap().id;
    let mut persons = first.new_persons.clone();
    persons.sort();
    let mut expected = vec![(P, known), (P, identified)];
    expected.sort();
    assert_eq!(persons, expected);
    let mut ids: Vec<&str> = first
        .new_distinct_ids
        .iter()
        .map(|(_, id)| id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["known", "new-a", "new-b"]);

    // Known ids, one of them merged with a new one: nothing is new but the id.
    let second = run(
        &mut p,
        vec![
            event("pageview", "known", json!({"$set": {"plan": "pro"}}), 2),
            event(
                "$identify",
                "new-a",
                json!({"$anon_distinct_id": "later"}),
                3,
            ),
            event(
                "$identify",
                "known",
                json!({"$anon_distinct_id": "new-b"}),
                4,
            ),
        ],
    );
    assert!(second.new_persons.is_empty(), "{:?}", second.new_persons);
    assert!(
        second.new_distinct_ids.is_empty(),
        "{:?}",
        second.new_distinct_ids
    );
    assert!(!second.persons.is_empty() && !second.distinct_ids.is_empty());
}
