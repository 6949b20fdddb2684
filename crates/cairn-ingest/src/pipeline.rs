//! The ingestion pipeline: one thread owns the person/group state and the
//! store's writer. Requests queue their events; the thread takes everything
//! queued (up to a cap), processes it in order, writes it in one transaction
//! (group commit) and only then answers each request. What it records as
//! "now" (insertion and creation times, warnings and their debounce) is read
//! from the clock it is started with.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use cairn_core::time::Clock;
use cairn_core::ProjectId;
use cairn_store::{IngestStore, PersonLookup, StoreError};

use crate::directory::{Directory, Tee};
use crate::processor::Processor;
use crate::{IncomingEvent, NormalizedBatch};

/// Requests that may wait in the queue before senders are held back.
const QUEUE_CAPACITY: usize = 4096;
/// A group commit stops taking queued requests past this many events.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

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
    directory: Arc<Directory>,
    worker: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Loads the state from `store` (this can take a while on a big store)
    /// and starts the writer thread, which reads "now" from `clock`.
    pub fn start<S: IngestStore>(
        mut store: S,
        group_type_limit: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let loading = Instant::now();
        let directory = Arc::new(Directory::default());
        let processor = load(&mut store, group_type_limit, &directory)?;
        tracing::info!(
            elapsed_ms = loading.elapsed().as_millis() as u64,
            "ingestion state loaded"
        );
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let queued = Arc::new(AtomicI64::new(0));
        let worker = std::thread::Builder::new()
            .name("cairn-ingest".into())
            .spawn({
                let queued = queued.clone();
                let directory = directory.clone();
                move || {
                    run(
                        store,
                        processor,
                        receiver,
                        queued,
                        &directory,
                        group_type_limit,
                        clock.as_ref(),
                    )
                }
            })
            .expect("spawn the ingestion thread");
        Ok(Self {
            sender,
            queued,
            directory,
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

    /// Committed person and group properties, for `/flags`.
    pub fn lookup(&self) -> Arc<dyn PersonLookup> {
        self.directory.clone()
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

/// Rebuilds the writer's state and the published directory from the store.
fn load<S: IngestStore>(
    store: &mut S,
    group_type_limit: usize,
    directory: &Directory,
) -> Result<Processor, StoreError> {
    let mut processor = Processor::new(group_type_limit);
    let mut fresh = Directory::default();
    store.load_snapshot(&mut Tee {
        first: &mut processor,
        directory: &mut fresh,
    })?;
    directory.replace(fresh);
    Ok(processor)
}

fn run<S: IngestStore>(
    mut store: S,
    mut processor: Processor,
    mut receiver: mpsc::Receiver<Job>,
    queued: Arc<AtomicI64>,
    directory: &Directory,
    group_type_limit: usize,
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

        let now = clock.now();
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            // Jobs already processed in this round are known to the processor,
            // so the store is only asked about what it has committed.
            let unsure = processor.unsure(job.project, &job.events);
            let stored = match store.stored_uuids(job.project, &unsure) {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::error!(%error, "looking up event uuids failed; request answered 503");
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
                    // Half of its changes may be in the in-memory state, mixed
                    // with those of the requests processed before it in this
                    // round: all of them are dropped, and the state is rebuilt
                    // from what is stored. Those requests were not stored
                    // either, and are told to retry.
                    for (reply, _) in replies.drain(..) {
                        let _ = reply.send(Err(PipelineError::Unavailable(
                            "a request committed together with this one failed; send it again"
                                .into(),
                        )));
                    }
                    match load(&mut store, group_type_limit, directory) {
                        Ok(reloaded) => processor = reloaded,
                        Err(error) => {
                            tracing::error!(%error, "reloading ingestion state failed");
                            drop(processor.take_commit());
                        }
                    }
                }
            }
        }
        let commit = Arc::new(processor.take_commit());
        let started = Instant::now();
        let result = store.commit(commit.clone());
        metrics::histogram!("cairn_batch_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                metrics::counter!("cairn_events_stored_total")
                    .increment(commit.events.len() as u64);
                directory.publish(&commit);
                for (reply, processed) in replies {
                    let _ = reply.send(Ok(processed));
                }
            }
            Err(error) => {
                tracing::error!(%error, events = commit.events.len(), "commit failed; requests answered 503");
                let failure = PipelineError::Unavailable(error.to_string());
                for (reply, _) in replies {
                    let _ = reply.send(Err(failure.clone()));
                }
                // The in-memory state already holds the failed changes; rebuild
                // it from what is really stored.
                match load(&mut store, group_type_limit, directory) {
                    Ok(reloaded) => processor = reloaded,
                    Err(error) => tracing::error!(%error, "reloading ingestion state failed"),
                }
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
