//! A second engine loaded from the journal (ClickHouse beside DuckDB): a
//! thread that follows the journal on disk and loads what is durable into
//! its [`LoadTarget`], one bounded range of records at a time, at its own
//! pace. While it lags, the journal keeps what it lacks (see
//! [`Retention`]); past its backlog limit ingestion is refused, so an
//! engine that is down costs bounded disk, and nothing acknowledged is lost.
//!
//! A load into an engine without transactions is made safe to redo: its
//! range is written to an intent file before its first insert, and a start
//! after a crash redoes exactly that range, whose inserts carry the same
//! tokens (see [`crate::clickhouse::ClickHouseLoader`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::barrier::{Loaded, Progress, ReadBarrier};
use crate::bulk::LoadTarget;
use crate::journal;
use crate::loader::{Loader, Retention, LOAD_EVENTS};
use crate::{Result, StoreError};

/// Pause before a failed load is retried.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How often an idle follower looks for a stop.
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// An engine to load from the journal besides the main one.
pub struct FollowerSpec {
    /// Its name, for logs, metrics and the intent file.
    pub engine: &'static str,
    pub target: Box<dyn LoadTarget>,
    /// Journal bytes on disk past which ingestion is refused while this
    /// engine lags.
    pub backlog_limit: u64,
}

impl LoadTarget for Box<dyn LoadTarget> {
    fn loaded_seq(&mut self) -> Result<u64> {
        (**self).loaded_seq()
    }
    fn begin(&mut self, first: u64) -> Result<()> {
        (**self).begin(first)
    }
    fn append_events<'a>(
        &mut self,
        events: &mut dyn Iterator<Item = (&'a cairn_core::Event, Option<&'a str>)>,
        count: usize,
    ) -> Result<()> {
        (**self).append_events(events, count)
    }
    fn append_warnings(&mut self, warnings: &[cairn_core::IngestionWarning]) -> Result<()> {
        (**self).append_warnings(warnings)
    }
    fn write_changes(&mut self, changes: &crate::EntityChanges) -> Result<()> {
        (**self).write_changes(changes)
    }
    fn commit_through(&mut self, loaded: Option<u64>) -> Result<()> {
        (**self).commit_through(loaded)
    }
    fn rollback(&mut self) {
        (**self).rollback()
    }
}

/// A running follower, owned by the journaled writer.
pub(crate) struct Follower {
    pub engine: &'static str,
    pub backlog_limit: u64,
    pub progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Registers the follower's position with `retention` (nothing of the
    /// journal goes until it knows it), without starting it.
    pub(crate) fn register(spec: FollowerSpec, retention: &Arc<Retention>) -> Pending {
        let progress = Arc::new(Progress::default());
        retention.add(progress.clone());
        Pending {
            spec,
            progress,
            retention: retention.clone(),
        }
    }

    /// The journal holds everything through `seq`.
    pub(crate) fn note_durable(&self, seq: u64) {
        self.progress.durable.store(seq, Ordering::Release);
        self.progress.update(|_| ());
    }

    pub(crate) fn barrier(&self) -> ReadBarrier {
        let progress = self.progress.clone();
        let stop = self.stop.clone();
        let nudge = Arc::new(move || {
            progress.update(|_| ());
            !stop.load(Ordering::Acquire)
        });
        ReadBarrier::new(self.progress.clone(), nudge)
    }

    /// Journal records acknowledged but not in this engine yet.
    pub(crate) fn lag(&self) -> u64 {
        lag(&self.progress, self.engine)
    }
}

impl Drop for Follower {
    /// Stops after the load in hand; the rest waits in the journal.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.progress.update(|_| ());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A follower registered but not started.
pub(crate) struct Pending {
    spec: FollowerSpec,
    progress: Arc<Progress>,
    retention: Arc<Retention>,
}

impl Pending {
    /// Starts following from what the engine holds; the journal holds
    /// everything through `durable`.
    pub(crate) fn start(self, durable: u64) -> Result<Follower> {
        let Pending {
            spec,
            progress,
            retention,
        } = self;
        progress.durable.store(durable, Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let intent = retention
            .journal_dir()
            .join(format!("{}.intent", spec.engine));
        let mut loader = Loader::new(spec.engine, spec.target, 0, retention);
        loader.progress = progress.clone();
        let thread = std::thread::Builder::new()
            .name(format!("cairn-{}", spec.engine))
            .spawn({
                let stop = stop.clone();
                move || follow(loader, &intent, &stop)
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start a loader thread: {e}")))?;
        Ok(Follower {
            engine: spec.engine,
            backlog_limit: spec.backlog_limit,
            progress,
            stop,
            thread: Some(thread),
        })
    }
}

/// Journal records acknowledged but not loaded yet, also as a metric.
fn lag(progress: &Progress, engine: &'static str) -> u64 {
    let durable = progress.durable.load(Ordering::Acquire);
    let lag = durable.saturating_sub(progress.loaded_seq());
    metrics::gauge!("cairn_loader_lag_records", "engine" => engine).set(lag as f64);
    lag
}

/// Sleeps `pause` or until a stop; true if stopped.
fn pause(progress: &Progress, stop: &AtomicBool, pause: Duration) -> bool {
    let loaded = progress.loaded.lock().expect("load progress lock");
    let _ = progress
        .changed
        .wait_timeout_while(loaded, pause, |_| !stop.load(Ordering::Acquire))
        .expect("load progress lock");
    stop.load(Ordering::Acquire)
}

fn fail(progress: &Progress, engine: &str, error: &StoreError) {
    tracing::error!(%error, engine, "loading the journal into {engine} failed; retrying");
    let failure = error.to_string();
    progress.update(|loaded| loaded.failure = Some(failure));
}

/// The follower thread: finds where the engine is, then loads what becomes
/// durable, until stopped.
fn follow(mut loader: Loader<Box<dyn LoadTarget>>, intent: &Path, stop: &AtomicBool) {
    let progress = loader.progress.clone();
    let engine = loader.engine;
    loop {
        match loader.writer.loaded_seq() {
            Ok(seq) => {
                loader.loaded = seq;
                loader.taken = seq;
                progress.update(|loaded| *loaded = Loaded { seq, failure: None });
                break;
            }
            Err(error) => fail(&progress, engine, &error),
        }
        if pause(&progress, stop, RETRY_PAUSE) {
            return;
        }
    }
    if loader.loaded > progress.durable.load(Ordering::Acquire) {
        let error = StoreError::Corrupt(format!(
            "{engine} holds journal records through {}, past this data directory's journal: is it another Cairn's database?",
            loader.loaded
        ));
        fail(&progress, engine, &error);
        stop.store(true, Ordering::Release);
        return;
    }
    while !stop.load(Ordering::Acquire) {
        lag(&progress, engine);
        let durable = progress.durable.load(Ordering::Acquire);
        if durable <= loader.loaded {
            let loaded = progress.loaded.lock().expect("load progress lock");
            let _ = progress
                .changed
                .wait_timeout_while(loaded, IDLE_WAKE, |_| {
                    progress.durable.load(Ordering::Acquire) <= loader.loaded
                        && !stop.load(Ordering::Acquire)
                })
                .expect("load progress lock");
            continue;
        }
        if let Err(error) = load_next(&mut loader, intent, durable) {
            loader.writer.rollback();
            loader.taken = loader.loaded;
            fail(&progress, engine, &error);
            if pause(&progress, stop, RETRY_PAUSE) {
                return;
            }
        }
    }
}

/// Loads the next range: the one an intent file names, if a load of it
/// did not finish, else what is durable up to [`LOAD_EVENTS`] events.
fn load_next(loader: &mut Loader<Box<dyn LoadTarget>>, intent: &Path, durable: u64) -> Result<()> {
    let next = loader.loaded + 1;
    let planned = read_intent(intent).filter(|(first, _)| *first == next);
    let (through, max_events) = match planned {
        Some((_, last)) => (last, usize::MAX),
        None => (durable, LOAD_EVENTS),
    };
    let records = journal::read_range(
        loader.retention.journal_dir(),
        loader.loaded,
        through,
        max_events,
    )?;
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(StoreError::Corrupt(format!(
            "{} lacks journal records from {next}, and the journal no longer has them",
            loader.engine
        )));
    };
    if first.seq != next || planned.is_some_and(|(_, planned)| planned != last.seq) {
        return Err(StoreError::Corrupt(format!(
            "{} lacks journal records from {next}, and the journal starts at {}: copy the store into it again (`cairn migrate-store`)",
            loader.engine, first.seq
        )));
    }
    if planned.is_none() {
        write_intent(intent, first.seq, last.seq)?;
    }
    loader.load_all(records)
}

fn read_intent(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (first, last) = text.trim().split_once(' ')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// Writes and syncs the range about to be loaded.
fn write_intent(path: &Path, first: u64, last: u64) -> Result<()> {
    let io = |source| StoreError::Journal {
        path: path.display().to_string(),
        source,
    };
    let temporary: PathBuf = path.with_extension("intent.new");
    std::fs::write(&temporary, format!("{first} {last}\n")).map_err(io)?;
    std::fs::File::open(&temporary)
        .and_then(|file| file.sync_all())
        .map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    std::fs::File::open(path.parent().expect("in the journal directory"))
        .and_then(|dir| dir.sync_all())
        .map_err(io)
}
