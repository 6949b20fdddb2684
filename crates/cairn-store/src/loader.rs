//! Ingestion's write side: commits are made durable in the [`Journal`],
//! applied to the [`EntityState`] and acknowledged; a loader thread streams
//! them into the engine through a [`BulkLoader`] and commits one transaction
//! per [`LOAD_EVENTS`] events or [`LOAD_INTERVAL`], recording in it the last
//! journal record it holds. A journal segment is deleted once both the
//! engine and the entity state hold it on disk.
//!
//! Reads wait at the writer's [`ReadBarrier`] until everything acknowledged
//! before them is loaded, so a client reads what it has sent.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_core::ProjectId;
use uuid::Uuid;

use crate::barrier::{Loaded, Progress, ReadBarrier};
use crate::bulk::{BulkLoader, LoadTarget};
use crate::commit::EntityChanges;
use crate::entity_state::EntityState;
use crate::follower::{Follower, FollowerSpec};
use crate::journal::{self, Appended, EventProperties, Journal, Record};
use crate::{Commit, IngestStore, Result, StoreError};

/// A load is committed once it holds this many events: past one DuckDB row
/// group (122,880 rows), full row groups are compressed and written straight
/// to the database file instead of going through DuckDB's own WAL.
pub(crate) const LOAD_EVENTS: usize = 128 * 1024;
/// ...or once its first commit is this old.
const LOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Events are appended to DuckDB in batches of about this many: each
/// append plans a statement, so small ones cost more per event.
const APPEND_EVENTS: usize = 16 * 1024;
/// Journal bytes of commits sent to the loader but not yet taken by it,
/// past which ingestion waits: room to ride out a DuckDB checkpoint
/// (seconds) without holding acknowledgements back, and a bound on memory.
const QUEUED_BYTES: u64 = 32 << 20;
/// Messages the loader's channel holds; the byte bound above comes first.
const LOADER_QUEUE: usize = 4096;
/// When the loader has caught up, a journal segment past this size is closed
/// (and deleted after the next load), so the journal stays small.
const CAUGHT_UP_SEGMENT_BYTES: u64 = 1 << 20;
/// Pause before a failed load is retried from the journal.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

enum Message {
    /// A journaled commit: its sequence number and size in the journal.
    Commit {
        seq: u64,
        bytes: u64,
        commit: Arc<Commit>,
        properties: EventProperties,
    },
    /// A reader waits: commit what has been taken.
    Sync,
    /// Load what has been taken and end the thread.
    Stop,
}

/// The [`IngestStore`] of a store loaded behind the journal: journal first,
/// the engine behind.
pub struct JournaledWriter<L: BulkLoader> {
    journal: Journal,
    /// The event uuids of each commit not known to be loaded yet, so that
    /// a dedup lookup need not wait for the loader.
    unloaded: VecDeque<(u64, ProjectId, Vec<Uuid>)>,
    /// For dedup lookups and snapshots, apart from the loader's.
    lookups: L,
    progress: Arc<Progress>,
    /// The loader's queue.
    sender: SyncSender<Message>,
    loader: Option<JoinHandle<()>>,
    /// Engines loaded from the journal besides the main one.
    followers: Vec<Follower>,
    entities: Arc<EntityState>,
    /// Set when a journaled commit could not be applied to `entities`:
    /// ingestion would read a state without it, so it stops until a restart
    /// catches the state up from the journal.
    entities_failed: Option<String>,
}

impl<L: BulkLoader> JournaledWriter<L> {
    /// Opens the journal in `data_dir`, loads what the engine is missing of
    /// it (after a crash) through `loader`, brings `entities` up to the
    /// journal, and starts the loader thread. `lookups` answers dedup
    /// lookups meanwhile. Each of `followers` is loaded from the journal
    /// too, on a thread of its own.
    pub fn open(
        mut loader: L,
        mut lookups: L,
        data_dir: &Path,
        entities: Arc<EntityState>,
        followers: Vec<FollowerSpec>,
    ) -> Result<Self> {
        let journal_dir = data_dir.join(journal::JOURNAL_DIR);
        let retention = Arc::new(Retention {
            journal_dir: journal_dir.clone(),
            entities: entities.clone(),
            consumers: Default::default(),
        });
        let followers: Vec<_> = followers
            .into_iter()
            .map(|spec| Follower::register(spec, &retention))
            .collect();
        let loaded = loader.loaded_seq()?;
        let mut loader = Loader::new("duckdb", loader, loaded, retention.clone());
        retention.add(loader.progress.clone());
        let (journal, records) = Journal::open(data_dir, loader.loaded)?;
        if !records.is_empty() {
            tracing::info!(
                commits = records.len(),
                "loading journaled commits the store does not have yet"
            );
            loader.replay(records)?;
        }
        catch_up(&entities, &mut lookups, &journal_dir, loader.loaded)?;
        let progress = loader.progress.clone();
        progress.durable.store(loader.loaded, Ordering::Release);
        progress.update(|loaded| loaded.seq = loader.loaded);
        let followers = followers
            .into_iter()
            .map(|pending| pending.start(journal.last_seq()))
            .collect::<Result<_>>()?;
        let (sender, receiver) = mpsc::sync_channel(LOADER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("cairn-load".into())
            .spawn(move || loader.run(receiver))
            .map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        Ok(Self {
            journal,
            unloaded: VecDeque::new(),
            lookups,
            progress,
            sender,
            loader: Some(thread),
            followers,
            entities,
            entities_failed: None,
        })
    }

    /// For the readers that must see every acknowledged commit.
    pub fn barrier(&self) -> ReadBarrier {
        let sender = self.sender.clone();
        let nudge = Arc::new(move || sender.send(Message::Sync).is_ok());
        ReadBarrier::new(self.progress.clone(), nudge)
    }

    /// For the readers of follower `engine`, which must see every
    /// acknowledged commit.
    pub fn follower_barrier(&self, engine: &str) -> Option<ReadBarrier> {
        self.followers
            .iter()
            .find(|f| f.engine == engine)
            .map(Follower::barrier)
    }

    /// Refuses a commit while a follower lags and the journal on disk
    /// holds more than its backlog limit.
    fn check_backlog(&self) -> Result<()> {
        let lagging = || self.followers.iter().filter(|f| f.lag() > 0);
        if lagging().next().is_none() {
            return Ok(());
        }
        let bytes = journal::disk_bytes(self.journal.dir())?;
        metrics::gauge!("cairn_journal_disk_bytes").set(bytes as f64);
        match lagging().find(|f| bytes > f.backlog_limit) {
            Some(follower) => Err(StoreError::Unavailable(format!(
                "{} is {} journal records behind and the journal holds {bytes} bytes, past the backlog limit of {}; ingestion resumes as it catches up",
                follower.engine,
                follower.lag(),
                follower.backlog_limit
            ))),
            None => Ok(()),
        }
    }

    /// Holds ingestion back while the loader's queue holds [`QUEUED_BYTES`].
    fn wait_for_queue_room(&self, bytes: u64) {
        let progress = &self.progress;
        let sent = self.journal.appended_bytes() - bytes;
        let full = || {
            let stopped = self.loader.as_ref().is_none_or(|l| l.is_finished());
            !stopped && sent - progress.taken_bytes.load(Ordering::SeqCst) > QUEUED_BYTES
        };
        if !full() {
            return;
        }
        // SeqCst with `note_taken`: either the loader sees the flag and
        // wakes us, or we see its progress and do not sleep. The timeout
        // notices a loader that has stopped.
        progress.queue_full.store(true, Ordering::SeqCst);
        let mut loaded = progress.loaded.lock().expect("load progress lock");
        while full() {
            loaded = progress
                .changed
                .wait_timeout(loaded, Duration::from_millis(100))
                .expect("load progress lock")
                .0;
        }
        progress.queue_full.store(false, Ordering::SeqCst);
    }

    fn forget_loaded(&mut self) {
        let loaded = self.progress.loaded_seq();
        while self
            .unloaded
            .front()
            .is_some_and(|(seq, _, _)| *seq <= loaded)
        {
            self.unloaded.pop_front();
        }
    }
}

/// Brings `entities` up to journal record `last`, which the engine holds:
/// from the journal when it has every record the state lacks, else (a data
/// directory made before the state existed, or a state lost) by importing
/// the engine's entities.
fn catch_up<L: BulkLoader>(
    entities: &EntityState,
    engine: &mut L,
    journal_dir: &Path,
    last: u64,
) -> Result<()> {
    if entities.is_complete()? {
        let applied = entities.applied_seq();
        if applied >= last {
            return Ok(());
        }
        let records = journal::read_after(journal_dir, applied)?;
        if records.first().is_some_and(|r| r.seq == applied + 1) {
            tracing::info!(
                commits = records.len(),
                "applying journaled commits the entity state does not have yet"
            );
            for record in records.iter().filter(|r| r.seq <= last) {
                entities.apply(&record.commit, record.seq)?;
            }
            entities.persist()?;
            return Ok(());
        }
        tracing::warn!(
            applied,
            last,
            "the entity state is behind the journal's oldest record; rebuilding it from the database"
        );
    } else {
        tracing::info!("building the entity state from the database");
    }
    let started = Instant::now();
    entities.import(last, |visitor| engine.load_entities(visitor))?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "entity state built"
    );
    Ok(())
}

impl<L: BulkLoader> IngestStore for JournaledWriter<L> {
    fn event_uuids(
        &mut self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        each: &mut dyn FnMut(ProjectId, Uuid),
    ) -> Result<()> {
        self.barrier().wait()?;
        self.lookups.event_uuids(since, each)
    }

    /// Journals `commit`, applies it to the entity state and hands it to the
    /// loader.
    fn commit(&mut self, commit: Arc<Commit>) -> Result<()> {
        if commit.is_empty() {
            return Ok(());
        }
        if let Some(failure) = &self.entities_failed {
            return Err(StoreError::Unavailable(format!(
                "ingestion is stopped until a restart: the entity state could not be written ({failure})"
            )));
        }
        let unloaded =
            self.journal.appended_bytes() - self.progress.loaded_bytes.load(Ordering::Acquire);
        metrics::gauge!("cairn_journal_unloaded_bytes").set(unloaded as f64);
        if unloaded == 0 {
            // All loaded: a fresh segment lets the loader delete the old one.
            self.journal.rotate_past(CAUGHT_UP_SEGMENT_BYTES)?;
        }
        self.journal.ensure_room(unloaded)?;
        self.check_backlog()?;
        let Appended {
            seq,
            bytes,
            properties,
        } = self.journal.append(&commit)?;
        self.forget_loaded();
        for event in &commit.events {
            match self.unloaded.back_mut() {
                Some((last, project, uuids)) if *last == seq && *project == event.project_id => {
                    uuids.push(event.uuid)
                }
                _ => self
                    .unloaded
                    .push_back((seq, event.project_id, vec![event.uuid])),
            }
        }
        self.wait_for_queue_room(bytes);
        // Sent before `durable` moves: a reader that sees `seq` durable and
        // then nudges the loader finds the commit queued ahead of its nudge.
        let applied = self.entities.apply(&commit, seq);
        let message = Message::Commit {
            seq,
            bytes,
            commit,
            properties,
        };
        if self.sender.send(message).is_err() {
            tracing::error!(
                "the loader thread has stopped; commits stay in the journal until restart"
            );
        }
        self.progress.durable.store(seq, Ordering::Release);
        for follower in &self.followers {
            follower.note_durable(seq);
        }
        if let Err(error) = applied {
            tracing::error!(%error, "applying a journaled commit to the entity state failed; ingestion stops until a restart");
            self.entities_failed = Some(error.to_string());
            return Err(error);
        }
        Ok(())
    }

    /// The engine's answer and the commits not loaded yet, together. The
    /// unloaded uuids are read first: a load that lands in between is then
    /// seen by the engine, so nothing falls between the two.
    fn stored_uuids(&mut self, project: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>> {
        if uuids.is_empty() {
            return Ok(HashSet::new());
        }
        self.forget_loaded();
        let wanted: HashSet<&Uuid> = uuids.iter().collect();
        let mut stored: HashSet<Uuid> = self
            .unloaded
            .iter()
            .filter(|(_, p, _)| *p == project)
            .flat_map(|(_, _, uuids)| uuids)
            .filter(|uuid| wanted.contains(uuid))
            .copied()
            .collect();
        stored.extend(self.lookups.stored_uuids(project, uuids)?);
        Ok(stored)
    }
}

impl<L: BulkLoader> Drop for JournaledWriter<L> {
    /// Lets the loader load everything journaled, so the store is complete.
    fn drop(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(loader) = self.loader.take() {
            let _ = loader.join();
        }
    }
}

/// Who still needs the journal: a segment is deleted once the entity state
/// and every engine loaded from the journal hold its records on disk.
pub(crate) struct Retention {
    journal_dir: PathBuf,
    entities: Arc<EntityState>,
    /// Each engine's progress.
    consumers: std::sync::Mutex<Vec<Arc<Progress>>>,
}

impl Retention {
    pub(crate) fn add(&self, consumer: Arc<Progress>) {
        self.consumers
            .lock()
            .expect("journal consumers lock")
            .push(consumer);
    }

    /// Deletes the journal segments everyone holds.
    pub(crate) fn remove(&self) {
        let persisted = match self.entities.persist() {
            Ok(persisted) => persisted,
            Err(error) => {
                tracing::warn!(%error, "cannot sync the entity state; the journal is kept");
                return;
            }
        };
        let consumers = self.consumers.lock().expect("journal consumers lock");
        let loaded = consumers.iter().map(|c| c.loaded_seq()).min();
        let removable = persisted.min(loaded.unwrap_or(0));
        if let Err(error) = journal::remove_loaded(&self.journal_dir, removable) {
            tracing::warn!(%error, "cannot delete loaded journal segments");
        }
    }

    pub(crate) fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }
}

/// The loader thread's state: an open transaction and what it holds.
pub(crate) struct Loader<L> {
    /// The engine's name, for logs and metrics.
    pub(crate) engine: &'static str,
    pub(crate) writer: L,
    pub(crate) retention: Arc<Retention>,
    pub(crate) progress: Arc<Progress>,
    /// The last record committed to the engine.
    pub(crate) loaded: u64,
    /// The last record written into the open transaction.
    pub(crate) taken: u64,
    /// Journal bytes of the commits received.
    taken_bytes: u64,
    open: Option<OpenLoad>,
}

struct OpenLoad {
    started: Instant,
    events: usize,
    changes: EntityChanges,
    /// Commits whose events are not appended yet, and how many those are.
    unappended: Vec<(Arc<Commit>, Option<EventProperties>)>,
    unappended_events: usize,
}

impl<L: LoadTarget> Loader<L> {
    /// A loader of `writer`, which holds the journal through `loaded`.
    pub(crate) fn new(
        engine: &'static str,
        writer: L,
        loaded: u64,
        retention: Arc<Retention>,
    ) -> Self {
        Self {
            engine,
            writer,
            retention,
            progress: Arc::default(),
            loaded,
            taken: loaded,
            taken_bytes: 0,
            open: None,
        }
    }

    fn run(mut self, receiver: mpsc::Receiver<Message>) {
        loop {
            let message = match &self.open {
                Some(open) => {
                    receiver.recv_timeout(LOAD_INTERVAL.saturating_sub(open.started.elapsed()))
                }
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let (sync, stop) = match message {
                Ok(Message::Commit {
                    seq,
                    bytes,
                    commit,
                    properties,
                }) => {
                    self.taken_bytes += bytes;
                    self.progress.note_taken(self.taken_bytes);
                    if let Err(error) = self.take(seq, commit, Some(properties)) {
                        self.recover(error);
                    }
                    (false, false)
                }
                Ok(Message::Sync) => (true, false),
                Err(RecvTimeoutError::Timeout) => (false, false),
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => (false, true),
            };
            let due = self.open.as_ref().is_some_and(|open| {
                sync || stop
                    || open.events >= LOAD_EVENTS
                    || open.started.elapsed() >= LOAD_INTERVAL
            });
            if due {
                if let Err(error) = self.finish() {
                    self.recover(error);
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Writes one journaled commit into the open transaction; `properties`
    /// has its events' properties as JSON, if they were just journaled.
    fn take(
        &mut self,
        seq: u64,
        commit: Arc<Commit>,
        properties: Option<EventProperties>,
    ) -> Result<()> {
        if seq <= self.taken {
            return Ok(()); // Already loaded by a replay of the journal.
        }
        if self.open.is_none() {
            self.writer.begin(seq)?;
            self.open = Some(OpenLoad {
                started: Instant::now(),
                events: 0,
                changes: EntityChanges::default(),
                unappended: Vec::new(),
                unappended_events: 0,
            });
        }
        self.writer.append_warnings(&commit.warnings)?;
        let open = self.open.as_mut().expect("a load is open");
        open.events += commit.events.len();
        open.changes.absorb(&commit);
        open.unappended_events += commit.events.len();
        open.unappended.push((commit, properties));
        self.taken = seq;
        if open.unappended_events >= APPEND_EVENTS {
            Self::append(&mut self.writer, open)?;
        }
        Ok(())
    }

    fn append(writer: &mut L, open: &mut OpenLoad) -> Result<()> {
        let mut events = open.unappended.iter().flat_map(|(commit, properties)| {
            let json = move |i| properties.as_ref().map(|p| p.get(i));
            commit
                .events
                .iter()
                .enumerate()
                .map(move |(i, e)| (e, json(i)))
        });
        writer.append_events(&mut events, open.unappended_events)?;
        open.unappended.clear();
        open.unappended_events = 0;
        Ok(())
    }

    /// Commits the open transaction and lets readers through.
    fn finish(&mut self) -> Result<()> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let started = Instant::now();
        Self::append(&mut self.writer, &mut open)?;
        self.writer.write_changes(&open.changes)?;
        self.writer.commit_through(Some(self.taken))?;
        let engine = self.engine;
        metrics::histogram!("cairn_store_load_seconds", "engine" => engine)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("cairn_events_loaded_total", "engine" => engine)
            .increment(open.events as u64);
        self.loaded = self.taken;
        let seq = self.loaded;
        self.progress
            .update(|loaded| *loaded = Loaded { seq, failure: None });
        self.progress
            .loaded_bytes
            .store(self.taken_bytes, Ordering::Release);
        self.retention.remove();
        Ok(())
    }

    /// Loads `records` in one load.
    pub(crate) fn load_all(&mut self, records: Vec<Record>) -> Result<()> {
        for record in records {
            self.take(record.seq, Arc::new(record.commit), None)?;
        }
        self.finish()
    }

    /// Loads journal records in transactions of about [`LOAD_EVENTS`].
    fn replay(&mut self, records: Vec<Record>) -> Result<()> {
        for record in records {
            self.take(record.seq, Arc::new(record.commit), None)?;
            if self
                .open
                .as_ref()
                .is_some_and(|open| open.events >= LOAD_EVENTS)
            {
                self.finish()?;
            }
        }
        self.finish()
    }

    /// After a failed load: the open transaction is gone, so everything
    /// since the last good load is read back from the journal and loaded
    /// again, until that works.
    fn recover(&mut self, mut error: StoreError) {
        loop {
            tracing::error!(%error, loaded = self.loaded, "loading journaled events into the store failed; retrying from the journal");
            let failure = error.to_string();
            self.progress
                .update(|loaded| loaded.failure = Some(failure));
            // Always: a failed `finish` has already taken `open`, but its
            // transaction in the engine is still there.
            self.open = None;
            self.writer.rollback();
            self.taken = self.loaded;
            std::thread::sleep(RETRY_PAUSE);
            let replayed = journal::read_after(self.retention.journal_dir(), self.loaded)
                .and_then(|records| self.replay(records));
            match replayed {
                Ok(()) => return,
                Err(next) => error = next,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;

    use super::*;
    use cairn_core::{Event, IngestionWarning, Person};

    const P: ProjectId = ProjectId(1);

    /// An engine in memory: what it has committed, and its open transaction.
    #[derive(Default)]
    struct Engine {
        loaded: u64,
        events: Vec<Uuid>,
        open: Option<Vec<Uuid>>,
        /// Commits that fail before one succeeds.
        failures: usize,
        /// Persons loaded (in every version).
        persons: Vec<Person>,
    }

    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Engine>>);

    impl Memory {
        fn events(&self) -> Vec<Uuid> {
            self.0.lock().unwrap().events.clone()
        }
    }

    impl LoadTarget for Memory {
        fn loaded_seq(&mut self) -> Result<u64> {
            Ok(self.0.lock().unwrap().loaded)
        }
        fn begin(&mut self, _: u64) -> Result<()> {
            self.0.lock().unwrap().open = Some(Vec::new());
            Ok(())
        }
        fn append_events<'a>(
            &mut self,
            events: &mut dyn Iterator<Item = (&'a Event, Option<&'a str>)>,
            _: usize,
        ) -> Result<()> {
            let mut engine = self.0.lock().unwrap();
            let open = engine.open.as_mut().expect("a transaction is open");
            open.extend(events.map(|(event, _)| event.uuid));
            Ok(())
        }
        fn append_warnings(&mut self, _: &[IngestionWarning]) -> Result<()> {
            Ok(())
        }
        fn write_changes(&mut self, changes: &EntityChanges) -> Result<()> {
            let persons = changes.persons.values().flatten().cloned();
            self.0.lock().unwrap().persons.extend(persons);
            Ok(())
        }
        fn commit_through(&mut self, loaded: Option<u64>) -> Result<()> {
            let mut engine = self.0.lock().unwrap();
            if engine.failures > 0 {
                engine.failures -= 1;
                return Err(StoreError::Unavailable("the engine is down".into()));
            }
            let open = engine.open.take().expect("a transaction is open");
            engine.events.extend(open);
            if let Some(seq) = loaded {
                engine.loaded = seq;
            }
            Ok(())
        }
        fn rollback(&mut self) {
            self.0.lock().unwrap().open = None;
        }
    }

    impl BulkLoader for Memory {
        fn stored_uuids(&mut self, _: ProjectId, uuids: &[Uuid]) -> Result<HashSet<Uuid>> {
            let engine = self.0.lock().unwrap();
            Ok(uuids
                .iter()
                .filter(|u| engine.events.contains(u))
                .copied()
                .collect())
        }
        fn load_entities(&mut self, visitor: &mut dyn crate::SnapshotVisitor) -> Result<()> {
            let persons = self.0.lock().unwrap().persons.clone();
            persons.into_iter().for_each(|p| visitor.person(p));
            Ok(())
        }
        fn event_uuids(
            &mut self,
            _: Option<chrono::DateTime<Utc>>,
            each: &mut dyn FnMut(ProjectId, Uuid),
        ) -> Result<()> {
            self.events().into_iter().for_each(|uuid| each(P, uuid));
            Ok(())
        }
    }

    fn commit(uuid: Uuid) -> Arc<Commit> {
        Arc::new(Commit {
            events: vec![Event {
                project_id: P,
                uuid,
                event: "e".into(),
                distinct_id: "u".into(),
                person_id: None,
                timestamp: Utc::now(),
                inserted_at: Utc::now(),
                properties: Default::default(),
                groups: Vec::new(),
            }],
            ..Default::default()
        })
    }

    fn open(engine: &Memory, dir: &Path) -> JournaledWriter<Memory> {
        open_with(engine, dir).0
    }

    /// The writer and its entity state.
    fn open_with(engine: &Memory, dir: &Path) -> (JournaledWriter<Memory>, Arc<EntityState>) {
        let entities = Arc::new(EntityState::open(dir, 1 << 20).unwrap());
        let writer = JournaledWriter::open(
            engine.clone(),
            engine.clone(),
            dir,
            entities.clone(),
            vec![],
        )
        .unwrap();
        (writer, entities)
    }

    fn person_commit(distinct_id: &str) -> Arc<Commit> {
        let id = Person::uuid_for(P, distinct_id);
        Arc::new(Commit {
            persons: vec![Person {
                project_id: P,
                id,
                properties: Default::default(),
                is_identified: false,
                created_at: Utc::now(),
                version: 0,
                distinct_ids: vec![distinct_id.into()],
            }],
            distinct_ids: vec![(P, distinct_id.into(), id)],
            ..Default::default()
        })
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    /// Stores person `a` through a writer on `dir`, and closes it; returns
    /// where its entity state is.
    fn store_a(engine: &Memory, dir: &Path) -> PathBuf {
        let (mut writer, _) = open_with(engine, dir);
        writer.commit(person_commit("a")).unwrap();
        drop(writer);
        dir.join(crate::entity_state::ENTITY_DIR)
    }

    #[test]
    fn an_entity_state_behind_the_journal_is_caught_up_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Memory::default();
        let entities_dir = store_a(&engine, dir.path());
        let backup = tempfile::tempdir().unwrap();
        copy_dir(&entities_dir, backup.path());

        let (mut writer, _) = open_with(&engine, dir.path());
        writer.commit(person_commit("b")).unwrap();
        drop(writer);
        // The state loses its last write (a crash before fjall synced it).
        std::fs::remove_dir_all(&entities_dir).unwrap();
        copy_dir(backup.path(), &entities_dir);

        let (_writer, entities) = open_with(&engine, dir.path());
        for id in ["a", "b"] {
            assert_eq!(
                entities.person_id(P, id).unwrap(),
                Some(Person::uuid_for(P, id)),
                "{id}"
            );
        }
        assert_eq!(entities.applied_seq(), 2);
    }

    #[test]
    fn a_data_directory_without_entity_state_gets_one_from_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Memory::default();
        let entities_dir = store_a(&engine, dir.path());
        std::fs::remove_dir_all(&entities_dir).unwrap();

        let (_writer, entities) = open_with(&engine, dir.path());
        assert!(entities.is_complete().unwrap());
        let id = entities.person_id(P, "a").unwrap().unwrap();
        assert_eq!(entities.person(P, id).unwrap().unwrap().distinct_ids, ["a"]);
    }

    #[test]
    fn a_reader_past_the_barrier_sees_every_acknowledged_commit() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Memory::default();
        let mut writer = open(&engine, dir.path());
        let barrier = writer.barrier();
        let uuid = Uuid::now_v7();
        writer.commit(commit(uuid)).unwrap();
        assert_eq!(
            writer.stored_uuids(P, &[uuid]).unwrap(),
            HashSet::from([uuid]),
            "a dedup lookup sees a commit before it is loaded"
        );
        barrier.wait().unwrap();
        assert_eq!(engine.events(), [uuid]);
    }

    #[test]
    fn a_failed_load_is_loaded_again_from_the_journal_once() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Memory::default();
        engine.0.lock().unwrap().failures = 1;
        let mut writer = open(&engine, dir.path());
        let barrier = writer.barrier();
        let uuid = Uuid::now_v7();
        writer.commit(commit(uuid)).unwrap();
        let failed = barrier.wait().unwrap_err();
        assert!(matches!(failed, StoreError::Unavailable(_)), "{failed}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while barrier.wait().is_err() {
            assert!(Instant::now() < deadline, "the load was not retried");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(engine.events(), [uuid]);
    }

    #[test]
    fn an_engine_behind_the_journal_is_caught_up_when_the_writer_opens() {
        let dir = tempfile::tempdir().unwrap();
        let first = Memory::default();
        let uuids = [Uuid::now_v7(), Uuid::now_v7()];
        {
            let mut writer = open(&first, dir.path());
            for uuid in uuids {
                writer.commit(commit(uuid)).unwrap();
            }
        }
        assert_eq!(first.events(), uuids);
        // An engine that lost its last loads (a crash before they reached
        // its file) gets them again from the journal...
        let behind = Memory::default();
        drop(open(&behind, dir.path()));
        assert_eq!(behind.events(), uuids);
        // ...and one that has them gets nothing twice.
        drop(open(&first, dir.path()));
        assert_eq!(first.events(), uuids);
    }
}
