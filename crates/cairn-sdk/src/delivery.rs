//! Delivery: a background thread batches events (`flush_at`,
//! `flush_interval`), posts them gzip-compressed to `/batch/`, and retries
//! what retrying can fix: network errors, 408, 429 and 5xx, with
//! exponential backoff and jitter, or after `Retry-After`. Other 4xx are
//! final and reported. The bounded channel in front of it is the offline
//! queue: what does not fit is dropped, counted and reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::message::Message;
use crate::transport::Transport;

/// The most a single event may weigh; the server refuses more.
pub(crate) const MAX_EVENT_BYTES: usize = 900 * 1024;
/// A batch is sent before it grows past this.
const MAX_BATCH_BYTES: usize = 500 * 1024;

pub(crate) type OnError = Arc<dyn Fn(&Error) + Send + Sync>;

pub(crate) enum Command {
    /// Boxed so that a queue slot is a pointer, not a whole message.
    Event(Box<Message>),
    /// Send everything queued before this, then answer.
    Flush(SyncSender<()>),
    /// Send everything queued, answer, and stop.
    Shutdown(SyncSender<()>),
}

/// Running totals, shared by the callers and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// How batches are sent and retried.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub api_key: String,
    pub transport: Transport,
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub counters: Arc<Counters>,
    pub on_error: OnError,
    /// Set by shutdown: no request starts, and no wait lasts, past it.
    pub deadline: Arc<Mutex<Option<Instant>>>,
}

impl Delivery {
    /// Serialises one event, refusing what the server would refuse.
    pub fn serialise(message: &Message) -> Result<Vec<u8>, Error> {
        let bytes = serde_json::to_vec(message).map_err(|e| Error::Invalid(e.to_string()))?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(Error::TooLarge {
                bytes: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        Ok(bytes)
    }

    fn body(&self, events: &[Vec<u8>]) -> Vec<u8> {
        let size = events.iter().map(|e| e.len() + 1).sum::<usize>();
        let mut body = Vec::with_capacity(size + 128);
        body.extend_from_slice(b"{\"api_key\":");
        serde_json::to_writer(&mut body, &self.api_key).expect("a string serialises");
        body.extend_from_slice(b",\"batch\":[");
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.extend_from_slice(b"],\"sent_at\":");
        serde_json::to_writer(&mut body, &chrono::Utc::now()).expect("a date serialises");
        body.push(b'}');
        body
    }

    /// Sends one batch, retrying what can be retried. Counts the outcome.
    pub fn send(&self, events: &[Vec<u8>]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let result = self.attempt(events);
        let counter = match result {
            Ok(()) => &self.counters.delivered,
            Err(_) => &self.counters.failed,
        };
        counter.fetch_add(events.len() as u64, Ordering::Relaxed);
        result
    }

    fn attempt(&self, events: &[Vec<u8>]) -> Result<(), Error> {
        let body = self.body(events);
        let mut attempts = 0;
        loop {
            let gave_up = |cause: String, attempts| Error::GaveUp {
                events: events.len(),
                attempts,
                cause,
            };
            if self.past_deadline() {
                return Err(gave_up("the client shut down first".into(), attempts));
            }
            attempts += 1;
            let (cause, wait) = match self.transport.post_json("/batch/", &body, true) {
                Ok(reply) if (200..300).contains(&reply.status) => return Ok(()),
                Ok(reply) if retryable(reply.status) => (
                    format!("HTTP {}: {}", reply.status, reply.excerpt()),
                    reply.retry_after,
                ),
                Ok(reply) => {
                    return Err(Error::Rejected {
                        status: reply.status,
                        body: reply.excerpt(),
                        events: events.len(),
                    })
                }
                Err(error) => (error.to_string(), None),
            };
            if attempts > self.max_retries {
                return Err(gave_up(cause, attempts));
            }
            let wait = wait.unwrap_or_else(|| self.backoff(attempts));
            tracing::debug!(%cause, ?wait, attempts, "batch not delivered; retrying");
            if !self.pause(wait) {
                return Err(gave_up(
                    format!("{cause} (the client shut down before the next retry)"),
                    attempts,
                ));
            }
        }
    }

    /// Exponential backoff with jitter: attempt n waits between half and all
    /// of `initial · 2^(n-1)`, capped at `max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(self.max_backoff);
        exponential.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps `wait`, unless that would pass the shutdown deadline.
    fn pause(&self, wait: Duration) -> bool {
        if self.deadline().is_some_and(|d| Instant::now() + wait > d) {
            return false;
        }
        std::thread::sleep(wait);
        true
    }

    pub fn report(&self, error: &Error) {
        (self.on_error)(error);
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The worker: batches what arrives and sends it.
pub(crate) struct Worker {
    pub delivery: Delivery,
    pub flush_at: usize,
    pub flush_interval: Duration,
}

struct Batch {
    events: Vec<Vec<u8>>,
    bytes: usize,
    /// When it must go even if not full.
    due: Option<Instant>,
}

impl Worker {
    pub fn run(self, commands: Receiver<Command>) {
        let mut batch = Batch {
            events: Vec::with_capacity(self.flush_at),
            bytes: 0,
            due: None,
        };
        let mut reported_drops = 0;
        loop {
            let next = match batch.due {
                Some(due) => commands.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => commands.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match next {
                Ok(Command::Event(message)) => self.add(&mut batch, &message),
                Ok(Command::Flush(done)) => {
                    self.ship(&mut batch);
                    let _ = done.send(());
                }
                Ok(Command::Shutdown(done)) => {
                    self.drain(&mut batch, &commands);
                    self.report_drops(&mut reported_drops);
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.ship(&mut batch),
                Err(RecvTimeoutError::Disconnected) => {
                    self.drain(&mut batch, &commands);
                    self.report_drops(&mut reported_drops);
                    return;
                }
            }
            self.report_drops(&mut reported_drops);
        }
    }

    fn add(&self, batch: &mut Batch, message: &Message) {
        let bytes = match Delivery::serialise(message) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.delivery
                    .counters
                    .failed
                    .fetch_add(1, Ordering::Relaxed);
                return self.delivery.report(&error);
            }
        };
        if batch.bytes + bytes.len() > MAX_BATCH_BYTES {
            self.ship(batch);
        }
        batch.bytes += bytes.len();
        batch.events.push(bytes);
        batch
            .due
            .get_or_insert_with(|| Instant::now() + self.flush_interval);
        if batch.events.len() >= self.flush_at {
            self.ship(batch);
        }
    }

    fn ship(&self, batch: &mut Batch) {
        if let Err(error) = self.delivery.send(&batch.events) {
            self.delivery.report(&error);
        }
        batch.events.clear();
        batch.bytes = 0;
        batch.due = None;
    }

    /// Sends everything still queued, answering flushes on the way.
    fn drain(&self, batch: &mut Batch, commands: &Receiver<Command>) {
        loop {
            match commands.try_recv() {
                Ok(Command::Event(message)) => self.add(batch, &message),
                Ok(Command::Flush(done) | Command::Shutdown(done)) => {
                    self.ship(batch);
                    let _ = done.send(());
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.ship(batch);
    }

    fn report_drops(&self, reported: &mut u64) {
        let dropped = self.delivery.counters.dropped.load(Ordering::Relaxed);
        if dropped > *reported {
            self.delivery.report(&Error::Dropped {
                count: dropped - *reported,
            });
            *reported = dropped;
        }
    }
}
