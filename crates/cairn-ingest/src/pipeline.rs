//! The ingestion pipeline: one thread owns the person/group state and the
//! store's writer. Requests queue their events; the thread takes everything
//! queued (up to a cap), processes it in order, writes it in one transaction
//! (group commit) and only then answers each request. What it records as
//! "now" (insertion and creation times, warnings and their debounce) is read
//! from the clock it is started with, and never goes back: if the clock
//! steps back, the writer keeps the time of its last commit until the clock
//! passes it.
//!
//! Persons and groups are read from the [`EntityState`] the store applies
//! each commit to; the event uuid filters are saved in the data directory
//! now and then and at shutdown, so a start reads only the uuids of events
//! stored since.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use chrono::{DateTime, Utc};

use cairn_core::time::Clock;
use cairn_core::ProjectId;
use cairn_store::{EntityState, IngestStore, StoreError};

use crate::processor::Processor;
use crate::seen;
use crate::{IncomingEvent, NormalizedBatch};

/// Requests that may wait in the queue before senders are held back.
const QUEUE_CAPACITY: usize = 4096;
/// A group commit stops taking queued requests past this many events.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// How often the uuid filters are saved while ingesting: what a start after
/// a crash reads back from the store is what came since.
const SAVE_FILTERS_EVERY: Duration = Duration::from_secs(60);

/// What happened to a request's events, reported once they are durable.
pub use crate::processor::Processed as Accepted;

#[derive(Debug, Error, Clone)]
pub enum PipelineError {
    #[error("storage is unavailable, nothing of this request was stored: {0}")]
    Unavailable(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A bug: processing this request panicked. Nothing of it was stored.
    #[error("processing this request failed on a server bug, nothing of it was stored: {0}")]
    Failed(String),
}

struct Job {
    project: ProjectId,
    events: Vec<IncomingEvent>,
    refused: Vec<(cairn_core::WarningKind, serde_json::Value)>,
    reply: oneshot::Sender<Result<Accepted, PipelineError>>,
}

pub struct Pipeline {
    sender: mpsc::Sender<Job>,
    queued: Arc<AtomicI64>,
    worker: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the writer thread over `store`, which applies every commit to
    /// `entities`; it reads "now" from `clock`. The uuid filters are read
    /// from `data_dir` (with the uuids of events stored since they were
    /// saved), or rebuilt from every stored uuid when they are missing.
    pub fn start<S: IngestStore>(
        mut store: S,
        entities: Arc<EntityState>,
        data_dir: &Path,
        group_type_limit: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let filters = data_dir.join(seen::SAVED_FILE);
        let (uuids, covered) = load_uuids(&mut store, &filters)?;
        let processor = Processor::new(entities, group_type_limit).with_seen_uuids(uuids);
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let queued = Arc::new(AtomicI64::new(0));
        let worker = std::thread::Builder::new()
            .name("cairn-ingest".into())
            .spawn({
                let queued = queued.clone();
                move || {
                    let mut writer = Writer {
                        store,
                        processor,
                        filters,
                        last_commit: None,
                        last_now: covered,
                        saved: Instant::now(),
                    };
                    writer.run(receiver, queued, clock.as_ref());
                    writer.save_filters();
                }
            })
            .expect("spawn the ingestion thread");
        Ok(Self {
            sender,
            queued,
            worker: Some(worker),
        })
    }

    /// Queues a request's events (and the warnings of those it refused) for
    /// `project` and waits until they are durable.
    pub async fn submit(
        &self,
        project: ProjectId,
        batch: NormalizedBatch,
    ) -> Result<Accepted, PipelineError> {
        let NormalizedBatch { events, refused } = batch;
        let (reply, answer) = oneshot::channel();
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("cairn_ingest_queue_depth").set(depth as f64);
        if self
            .sender
            .send(Job {
                project,
                events,
                refused,
                reply,
            })
            .await
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(PipelineError::ShuttingDown);
        }
        answer.await.map_err(|_| PipelineError::ShuttingDown)?
    }

    /// Requests waiting for the writer.
    pub fn queue_depth(&self) -> i64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Stops taking requests, finishes the queued ones and waits for the writer.
    pub fn shutdown(mut self) {
        let worker = self.worker.take();
        drop(self);
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }
}

/// The saved uuid filters with the uuids of the events stored since, and the
/// time they cover; every stored uuid when there are none. "Now" never goes
/// back (see [`Writer::now`]), so every event stored after the save was
/// inserted at or after that time.
fn load_uuids<S: IngestStore>(
    store: &mut S,
    path: &Path,
) -> Result<(seen::ByProject, Option<DateTime<Utc>>), StoreError> {
    let loading = Instant::now();
    let (mut uuids, since) = match seen::load(path) {
        Ok(Some((covered, uuids))) => (uuids, Some(covered)),
        Ok(None) => (HashMap::new(), None),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot read the saved event uuid filters; rebuilding them");
            (HashMap::new(), None)
        }
    };
    let mut read = 0u64;
    store.event_uuids(since, &mut |project, uuid| {
        uuids.entry(project).or_default().remember(&uuid);
        read += 1;
    })?;
    tracing::info!(
        elapsed_ms = loading.elapsed().as_millis() as u64,
        uuids_read = read,
        saved_filters = since.is_some(),
        "event uuid filters loaded"
    );
    Ok((uuids, since))
}

/// The writer thread's state.
struct Writer<S> {
    store: S,
    processor: Processor,
    /// Where the uuid filters are saved.
    filters: PathBuf,
    /// "Now" of the last stored commit: the saved filters cover it.
    last_commit: Option<DateTime<Utc>>,
    /// The latest "now" handed out (or the saved filters' time, at start).
    last_now: Option<DateTime<Utc>>,
    saved: Instant,
}

impl<S: IngestStore> Writer<S> {
    fn run(
        &mut self,
        mut receiver: mpsc::Receiver<Job>,
        queued: Arc<AtomicI64>,
        clock: &dyn Clock,
    ) {
        while let Some(first) = receiver.blocking_recv() {
            let mut jobs = vec![first];
            let mut events = jobs[0].events.len();
            while events < MAX_EVENTS_PER_COMMIT {
                match receiver.try_recv() {
                    Ok(job) => {
                        events += job.events.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let depth = queued.fetch_sub(jobs.len() as i64, Ordering::Relaxed) - jobs.len() as i64;
            metrics::gauge!("cairn_ingest_queue_depth").set(depth as f64);
            let now = self.now(clock);
            self.round(jobs, now);
            if self.saved.elapsed() >= SAVE_FILTERS_EVERY {
                self.save_filters();
            }
        }
    }

    /// The clock's reading, or the last one handed out if the clock stepped
    /// back since: insertion times only grow, so a start finds every event
    /// stored after the filters were saved at or after their time.
    fn now(&mut self, clock: &dyn Clock) -> DateTime<Utc> {
        let reading = clock.now();
        let now = self.last_now.map_or(reading, |last| last.max(reading));
        self.last_now = Some(now);
        now
    }

    /// Processes `jobs` in order and stores them in one commit.
    fn round(&mut self, jobs: Vec<Job>, now: DateTime<Utc>) {
        let processor = &mut self.processor;
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            // Jobs already processed in this round are known to the processor,
            // so the store is only asked about what it has committed.
            let unsure = processor.unsure(job.project, &job.events);
            let read = processor
                .prepare(job.project, &job.events)
                .and_then(|()| self.store.stored_uuids(job.project, &unsure));
            let stored = match read {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::error!(%error, "reading persons or event uuids failed; request answered 503");
                    let _ = job
                        .reply
                        .send(Err(PipelineError::Unavailable(error.to_string())));
                    continue;
                }
            };
            let Job {
                project,
                events,
                refused,
                reply,
            } = job;
            // One request's processing may not take the thread down with it.
            let processed = catch_unwind(AssertUnwindSafe(|| {
                processor.record_refused(project, refused, now);
                processor.process(project, events, now, &stored)
            }));
            match processed {
                Ok(processed) => replies.push((reply, processed)),
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(%message, "processing a capture request panicked; it is answered 500");
                    let _ = reply.send(Err(PipelineError::Failed(message)));
                    // Half of its changes may be in the working set, mixed
                    // with those of the requests processed before it in this
                    // round: all of them are dropped. Those requests were not
                    // stored either, and are told to retry.
                    for (reply, _) in replies.drain(..) {
                        let _ = reply.send(Err(PipelineError::Unavailable(
                            "a request committed together with this one failed; send it again"
                                .into(),
                        )));
                    }
                    processor.discard();
                }
            }
        }
        let commit = Arc::new(processor.take_commit());
        let started = Instant::now();
        let result = self.store.commit(commit.clone());
        metrics::histogram!("cairn_batch_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.processor.committed();
                if !commit.events.is_empty() {
                    self.last_commit = Some(now);
                }
                metrics::counter!("cairn_events_stored_total")
                    .increment(commit.events.len() as u64);
                for (reply, processed) in replies {
                    let _ = reply.send(Ok(processed));
                }
            }
            Err(error) => {
                tracing::error!(%error, events = commit.events.len(), "commit failed; requests answered 503");
                self.processor.discard();
                let failure = PipelineError::Unavailable(error.to_string());
                for (reply, _) in replies {
                    let _ = reply.send(Err(failure.clone()));
                }
            }
        }
    }

    /// Saves the uuid filters, if events were stored since the last save.
    fn save_filters(&mut self) {
        self.saved = Instant::now();
        let Some(covered) = self.last_commit.take() else {
            return;
        };
        let started = Instant::now();
        match seen::save(&self.filters, covered, self.processor.seen_uuids()) {
            Ok(()) => tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "event uuid filters saved"
            ),
            Err(error) => {
                tracing::warn!(%error, path = %self.filters.display(), "cannot save the event uuid filters");
                self.last_commit = Some(covered);
            }
        }
    }
}

/// The text a panic was raised with.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests;
