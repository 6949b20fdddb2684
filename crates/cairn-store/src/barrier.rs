//! Read-your-writes for a store loaded behind the journal: a commit is
//! acknowledged once it is journaled, and loaded into the engine a moment
//! later, so a read that must see every acknowledged commit first waits at a
//! [`ReadBarrier`]. The journaled writer makes the barrier and hands it to
//! the readers that need it; the engine knows nothing of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::{Result, StoreError};

/// How long a read waits for the loader before it gives up.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(60);

/// How far the journal and the loader have got.
#[derive(Default)]
pub(crate) struct Progress {
    /// The last journal record acknowledged.
    pub durable: AtomicU64,
    /// Journal bytes loaded into the engine since the start.
    pub loaded_bytes: AtomicU64,
    /// Journal bytes the loader has taken from its queue since the start.
    pub taken_bytes: AtomicU64,
    /// Set while the writer waits for the loader to take commits.
    pub queue_full: AtomicBool,
    pub loaded: Mutex<Loaded>,
    pub changed: Condvar,
}

#[derive(Default)]
pub(crate) struct Loaded {
    /// The last journal record loaded into the engine.
    pub seq: u64,
    /// Why the last load failed, until one succeeds.
    pub failure: Option<String>,
}

impl Progress {
    pub fn update(&self, change: impl FnOnce(&mut Loaded)) {
        change(&mut self.loaded.lock().expect("load progress lock"));
        self.changed.notify_all();
    }

    /// The last journal record loaded.
    pub fn loaded_seq(&self) -> u64 {
        self.loaded.lock().expect("load progress lock").seq
    }

    /// The loader took commits up to `bytes`: a writer held back may go on.
    pub fn note_taken(&self, bytes: u64) {
        self.taken_bytes.store(bytes, Ordering::SeqCst);
        if self.queue_full.load(Ordering::SeqCst) {
            self.update(|_| ());
        }
    }
}

/// Asks the loader to commit what it has taken; false once it has stopped.
pub(crate) type Nudge = Arc<dyn Fn() -> bool + Send + Sync>;

/// Lets a reader wait until the store holds every acknowledged commit.
#[derive(Clone)]
pub struct ReadBarrier {
    progress: Arc<Progress>,
    nudge: Nudge,
}

impl ReadBarrier {
    pub(crate) fn new(progress: Arc<Progress>, nudge: Nudge) -> Self {
        Self { progress, nudge }
    }

    /// Blocks until every commit acknowledged before this call is loaded.
    pub fn wait(&self) -> Result<()> {
        let target = self.progress.durable.load(Ordering::Acquire);
        if self.progress.loaded_seq() >= target {
            return Ok(());
        }
        // The loader has already been sent `target`'s commit (see
        // `JournaledWriter::commit`), so it commits after taking it.
        if !(self.nudge)() {
            return Err(StoreError::Unavailable(
                "the store's loader has stopped; recent events are in the journal and load at the next start".into(),
            ));
        }
        let loaded = self.progress.loaded.lock().expect("load progress lock");
        let (loaded, _) = self
            .progress
            .changed
            .wait_timeout_while(loaded, BARRIER_TIMEOUT, |loaded| {
                loaded.seq < target && loaded.failure.is_none()
            })
            .expect("load progress lock");
        if loaded.seq >= target {
            return Ok(());
        }
        Err(StoreError::Unavailable(match &loaded.failure {
            Some(failure) => format!("recent events are safe in the journal but cannot be loaded into the store yet ({failure}); try again"),
            None => format!(
                "the store has not finished loading recent events after {} s; try again",
                BARRIER_TIMEOUT.as_secs()
            ),
        }))
    }
}
