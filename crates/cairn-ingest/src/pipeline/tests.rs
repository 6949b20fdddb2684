use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use cairn_core::{Group, GroupType, Person, Properties};
use cairn_store::{Commit, SnapshotVisitor};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::processor::PANIC_EVENT;

const P: ProjectId = ProjectId(1);

/// Commits kept in memory; a snapshot replays them.
#[derive(Clone, Default)]
struct MemoryStore {
    commits: Arc<Mutex<Vec<Arc<Commit>>>>,
}

impl MemoryStore {
    fn event_names(&self) -> Vec<String> {
        let commits = self.commits.lock().unwrap();
        commits
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.event.clone()))
            .collect()
    }
}

impl IngestStore for MemoryStore {
    fn load_snapshot(&mut self, visitor: &mut dyn SnapshotVisitor) -> cairn_store::Result<()> {
        let mut persons: HashMap<Uuid, Person> = HashMap::new();
        let mut groups: HashMap<(cairn_core::GroupTypeIndex, String), Group> = HashMap::new();
        let mut group_types: Vec<(ProjectId, GroupType)> = Vec::new();
        let mut uuids = Vec::new();
        for commit in self.commits.lock().unwrap().iter() {
            for person in &commit.persons {
                persons.insert(person.id, person.clone());
            }
            for (_, id) in &commit.deleted_persons {
                persons.remove(id);
            }
            for group in &commit.groups {
                groups.insert(
                    (group.group_type_index, group.group_key.clone()),
                    group.clone(),
                );
            }
            group_types.extend(commit.group_types.iter().cloned());
            uuids.extend(commit.events.iter().map(|e| (e.project_id, e.uuid)));
        }
        persons.into_values().for_each(|p| visitor.person(p));
        group_types
            .into_iter()
            .for_each(|(project, t)| visitor.group_type(project, t));
        groups.into_values().for_each(|g| visitor.group(g));
        uuids
            .into_iter()
            .for_each(|(project, uuid)| visitor.event_uuid(project, uuid));
        Ok(())
    }

    fn commit(&mut self, commit: Arc<Commit>) -> cairn_store::Result<()> {
        self.commits.lock().unwrap().push(commit);
        Ok(())
    }

    fn stored_uuids(
        &mut self,
        project: ProjectId,
        uuids: &[Uuid],
    ) -> cairn_store::Result<HashSet<Uuid>> {
        let commits = self.commits.lock().unwrap();
        Ok(commits
            .iter()
            .flat_map(|c| c.events.iter())
            .filter(|e| e.project_id == project && uuids.contains(&e.uuid))
            .map(|e| e.uuid)
            .collect())
    }
}

fn set(name: &str, properties: Value) -> IncomingEvent {
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: name.into(),
        distinct_id: "u".into(),
        properties: properties.as_object().unwrap().clone(),
        timestamp: Utc::now(),
        warnings: vec![],
    }
}

fn batch(events: Vec<IncomingEvent>) -> NormalizedBatch {
    NormalizedBatch {
        events,
        refused: vec![],
    }
}

fn person(pipeline: &Pipeline) -> Properties {
    let mut properties = pipeline
        .lookup()
        .person_properties(P, "u")
        .unwrap()
        .expect("person");
    properties.remove("$creator_event_uuid");
    properties
}

#[tokio::test]
async fn a_panic_fails_its_request_only_and_leaves_no_trace() {
    let store = MemoryStore::default();
    let pipeline = Pipeline::start(store.clone(), 5).unwrap();
    pipeline
        .submit(
            P,
            batch(vec![set("$set", json!({"$set": {"plan": "free"}}))]),
        )
        .await
        .unwrap();

    // The first event changes the person, the second changes it again and
    // panics half way: the in-memory person holds both changes by then.
    let failed = pipeline
        .submit(
            P,
            batch(vec![
                set("$set", json!({"$set": {"plan": "pro"}})),
                set(PANIC_EVENT, json!({"$set": {"plan": "hacked"}})),
            ]),
        )
        .await;
    match failed {
        Err(PipelineError::Failed(message)) => assert!(message.contains("injected"), "{message}"),
        other => panic!("expected a failure, got {other:?}"),
    }

    // The thread still serves requests, and the person is as it was stored.
    let accepted = pipeline
        .submit(P, batch(vec![set("$set", json!({"$set": {"seen": true}}))]))
        .await
        .unwrap();
    assert_eq!(accepted.stored, 1);
    assert_eq!(
        Value::Object(person(&pipeline)),
        json!({"plan": "free", "seen": true})
    );
    assert_eq!(store.event_names(), ["$set", "$set"]);
    pipeline.shutdown();
}

#[tokio::test]
async fn refused_events_leave_only_their_warnings() {
    let store = MemoryStore::default();
    let pipeline = Pipeline::start(store.clone(), 5).unwrap();
    let warning = (
        cairn_core::WarningKind::EventTimestampOutOfRange,
        json!({"event": "ancient"}),
    );
    let accepted = pipeline
        .submit(
            P,
            NormalizedBatch {
                events: vec![],
                refused: vec![warning.clone()],
            },
        )
        .await
        .unwrap();
    assert_eq!(accepted.stored, 0);
    let commits = store.commits.lock().unwrap();
    let warnings: Vec<_> = commits.iter().flat_map(|c| c.warnings.iter()).collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!((warnings[0].kind, warnings[0].details.clone()), warning);
    assert!(commits.iter().all(|c| c.events.is_empty()));
}
