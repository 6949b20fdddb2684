use std::collections::HashSet;
use std::sync::Mutex;

use cairn_core::time::{FixedClock, SystemClock};
use cairn_core::{Properties, WarningKind};
use cairn_store::{Commit, PersonLookup};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::processor::PANIC_EVENT;

const P: ProjectId = ProjectId(1);

/// Commits kept in memory, applied to an entity state as the journaled
/// writer does.
#[derive(Clone)]
struct MemoryStore {
    commits: Arc<Mutex<Vec<Arc<Commit>>>>,
    entities: Arc<EntityState>,
    dir: Arc<tempfile::TempDir>,
    /// The `since` of each uuid read.
    uuid_reads: Arc<Mutex<Vec<Option<DateTime<Utc>>>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            commits: Arc::default(),
            entities: Arc::new(EntityState::open(dir.path(), 8 << 20).unwrap()),
            dir: Arc::new(dir),
            uuid_reads: Arc::default(),
        }
    }
}

impl MemoryStore {
    fn event_names(&self) -> Vec<String> {
        let commits = self.commits.lock().unwrap();
        commits
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.event.clone()))
            .collect()
    }

    fn start(&self, group_type_limit: usize, clock: Arc<dyn Clock>) -> Pipeline {
        let (entities, dir) = (self.entities.clone(), self.dir.path());
        Pipeline::start(self.clone(), entities, dir, group_type_limit, clock).unwrap()
    }

    fn person(&self) -> Properties {
        let mut properties = self
            .entities
            .person_properties(P, "u")
            .unwrap()
            .expect("person");
        properties.remove("$creator_event_uuid");
        properties
    }
}

impl IngestStore for MemoryStore {
    fn event_uuids(
        &mut self,
        since: Option<DateTime<Utc>>,
        each: &mut dyn FnMut(ProjectId, Uuid),
    ) -> cairn_store::Result<()> {
        self.uuid_reads.lock().unwrap().push(since);
        for commit in self.commits.lock().unwrap().iter() {
            for event in &commit.events {
                if since.is_none_or(|since| event.inserted_at >= since) {
                    each(event.project_id, event.uuid);
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, commit: Arc<Commit>) -> cairn_store::Result<()> {
        let mut commits = self.commits.lock().unwrap();
        commits.push(commit.clone());
        self.entities.apply(&commit, commits.len() as u64)
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

#[tokio::test]
async fn a_panic_fails_its_request_only_and_leaves_no_trace() {
    let store = MemoryStore::default();
    let pipeline = store.start(5, Arc::new(SystemClock));
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
        Value::Object(store.person()),
        json!({"plan": "free", "seen": true})
    );
    assert_eq!(store.event_names(), ["$set", "$set"]);
    pipeline.shutdown();
}

#[tokio::test]
async fn refused_events_leave_only_their_warnings() {
    let store = MemoryStore::default();
    let pipeline = store.start(5, Arc::new(SystemClock));
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

/// A clock a test moves by hand.
#[derive(Debug)]
struct HandClock(Mutex<DateTime<Utc>>);

/// A hand clock at noon on 2024-03-15, and that time.
fn hand_clock() -> (DateTime<Utc>, Arc<HandClock>) {
    let start = DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
        .unwrap()
        .to_utc();
    (start, Arc::new(HandClock(Mutex::new(start))))
}

impl MemoryStore {
    /// The insertion time of every stored event, in order.
    fn inserted_at(&self) -> Vec<DateTime<Utc>> {
        let commits = self.commits.lock().unwrap();
        commits
            .iter()
            .flat_map(|c| c.events.iter().map(|e| e.inserted_at))
            .collect()
    }
}

impl Clock for HandClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// What the writer records as "now" is its clock's reading: the insertion
/// time of events and warnings, and the hour a repeated warning is held back.
#[tokio::test]
async fn the_writer_reads_now_from_its_clock() {
    let (start, clock) = hand_clock();
    let store = MemoryStore::default();
    // No group type may be created: every `$groups` is warned about.
    let pipeline = store.start(0, clock.clone());
    let grouped = || batch(vec![set("e", json!({"$groups": {"company": "acme"}}))]);
    let limit_warnings = |store: &MemoryStore| {
        let commits = store.commits.lock().unwrap();
        commits
            .iter()
            .flat_map(|c| c.warnings.iter())
            .filter(|w| w.kind == WarningKind::GroupTypeLimitReached)
            .map(|w| w.timestamp)
            .collect::<Vec<_>>()
    };

    pipeline.submit(P, grouped()).await.unwrap();
    *clock.0.lock().unwrap() = start + Duration::minutes(59);
    pipeline.submit(P, grouped()).await.unwrap();
    assert_eq!(limit_warnings(&store), [start], "held back within the hour");
    *clock.0.lock().unwrap() = start + Duration::hours(1);
    pipeline.submit(P, grouped()).await.unwrap();
    assert_eq!(limit_warnings(&store), [start, start + Duration::hours(1)]);

    let inserted = store.inserted_at();
    assert_eq!(
        inserted,
        [
            start,
            start + Duration::minutes(59),
            start + Duration::hours(1)
        ]
    );
    pipeline.shutdown();
}

/// A clock stepping back (NTP) does not take insertion times back with it:
/// a start reads back the uuids stored after the filters' time, so an event
/// inserted "before" it would escape deduplication.
#[tokio::test]
async fn insertion_times_never_go_back() {
    let (start, clock) = hand_clock();
    let store = MemoryStore::default();
    let pipeline = store.start(5, clock.clone());
    pipeline
        .submit(P, batch(vec![set("e", json!({}))]))
        .await
        .unwrap();
    *clock.0.lock().unwrap() = start - Duration::minutes(5);
    pipeline
        .submit(P, batch(vec![set("e", json!({}))]))
        .await
        .unwrap();
    *clock.0.lock().unwrap() = start + Duration::seconds(1);
    pipeline
        .submit(P, batch(vec![set("e", json!({}))]))
        .await
        .unwrap();
    let inserted = store.inserted_at();
    assert_eq!(inserted, [start, start, start + Duration::seconds(1)]);
    pipeline.shutdown();
}

/// A fixed clock fixes when a group type was first seen.
#[tokio::test]
async fn group_types_are_created_at_the_clocks_now() {
    let now = DateTime::parse_from_rfc3339("2001-02-03T04:05:06Z")
        .unwrap()
        .to_utc();
    let store = MemoryStore::default();
    let pipeline = store.start(5, Arc::new(FixedClock(now)));
    pipeline
        .submit(
            P,
            batch(vec![set("e", json!({"$groups": {"company": "acme"}}))]),
        )
        .await
        .unwrap();
    let commits = store.commits.lock().unwrap();
    let created: Vec<_> = commits
        .iter()
        .flat_map(|c| c.group_types.iter().map(|(_, t)| t.created_at))
        .collect();
    assert_eq!(created, [now]);
}

/// A start reads back only the uuids of events stored since the filters
/// were saved (at the last shutdown); an older event resent afterwards is
/// still refused, through the saved filters.
#[tokio::test]
async fn a_restart_reads_only_the_uuids_stored_since_the_filters_were_saved() {
    let (start, clock) = hand_clock();
    let store = MemoryStore::default();
    let pipeline = store.start(5, clock.clone());
    let old = set("e", json!({"$set": {"plan": "free"}}));
    pipeline.submit(P, batch(vec![old.clone()])).await.unwrap();
    let later = start + Duration::hours(1);
    *clock.0.lock().unwrap() = later;
    pipeline
        .submit(P, batch(vec![set("e", json!({}))]))
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || pipeline.shutdown())
        .await
        .unwrap();

    *clock.0.lock().unwrap() = start + Duration::days(1);
    let pipeline = store.start(5, clock.clone());
    assert_eq!(
        *store.uuid_reads.lock().unwrap(),
        [None, Some(later)],
        "the first start reads every uuid, the second those since the save"
    );
    let again = pipeline.submit(P, batch(vec![old])).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    assert_eq!(Value::Object(store.person()), json!({"plan": "free"}));
    pipeline.shutdown();
}
