//! The client: configuration, the calls that send events, and shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::delivery::{Command, Counters, Delivery, OnError, Worker};
use crate::error::Error;
use crate::flags::local::{Loader, Store};
use crate::message::{Alias, Capture, GroupIdentify, Library, Message, Set};
use crate::transport::Transport;

/// Sends events to Cairn (or any PostHog-compatible server) and evaluates
/// feature flags. Cheap to clone; every clone shares one queue and worker.
/// Dropping the last clone flushes what is queued (see [`Client::shutdown`]).
///
/// ```no_run
/// use cairn_sdk::{Client, Set};
/// use serde_json::json;
///
/// let client = Client::builder("phc_your_project_api_key")
///     .host("http://127.0.0.1:8000")
///     .build()?;
/// client.set(Set::new(json!({"email": "user@example.com"})).distinct_id("user123"))?;
/// client.shutdown()?;
/// # Ok::<(), cairn_sdk::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub api_key: String,
    pub library: Library,
    pub delivery: Delivery,
    mode: Mode,
    queue_capacity: usize,
    shutdown_timeout: Duration,
    closed: AtomicBool,
    pub send_feature_flag_events: bool,
    pub flags: FlagState,
}

enum Mode {
    /// A worker thread batches and sends.
    Background {
        commands: SyncSender<Command>,
        worker: Mutex<Option<JoinHandle<()>>>,
    },
    /// Each call sends at once, on the caller's thread.
    Immediate,
}

pub(crate) struct FlagState {
    pub transport: Transport,
    pub store: Option<Arc<Store>>,
    loader: Option<Loader>,
    stop_polling: Mutex<Option<SyncSender<()>>>,
    /// `$feature_flag_called` already sent, by distinct id.
    pub reported: Mutex<HashMap<String, HashSet<String>>>,
}

/// Totals since the client started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Events accepted into the queue (or, in sync mode, sent).
    pub accepted: u64,
    /// Events the server acknowledged.
    pub delivered: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events refused by the server, given up on after retries, or unsendable.
    pub failed: u64,
}

/// Configures a [`Client`]; every setting has a default.
pub struct ClientBuilder {
    api_key: String,
    host: String,
    personal_api_key: Option<String>,
    flush_at: usize,
    flush_interval: Duration,
    max_queue_size: usize,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    request_timeout: Duration,
    feature_flags_request_timeout: Duration,
    poll_interval: Duration,
    shutdown_timeout: Duration,
    sync_mode: bool,
    send_feature_flag_events: bool,
    disable_geoip: bool,
    on_error: Option<OnError>,
}

impl ClientBuilder {
    /// A builder from the environment: `CAIRN_PROJECT_API_KEY` (required),
    /// `CAIRN_HOST` and `CAIRN_PERSONAL_API_KEY` (optional); the same
    /// variables `cairn serve` reads its keys from.
    pub fn from_env() -> Result<Self, Error> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let key = var("CAIRN_PROJECT_API_KEY")
            .ok_or_else(|| Error::Config("CAIRN_PROJECT_API_KEY is not set".into()))?;
        let mut builder = Client::builder(key);
        if let Some(host) = var("CAIRN_HOST") {
            builder = builder.host(host);
        }
        if let Some(personal) = var("CAIRN_PERSONAL_API_KEY") {
            builder = builder.personal_api_key(personal);
        }
        Ok(builder)
    }

    /// The server's base URL; default `http://127.0.0.1:8000` (`cairn serve`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// A personal API key (`phx_…`): turns on local flag evaluation from
    /// definitions polled every `poll_interval`.
    pub fn personal_api_key(mut self, key: impl Into<String>) -> Self {
        self.personal_api_key = Some(key.into());
        self
    }

    /// Send a batch once this many events wait; default 100.
    pub fn flush_at(mut self, events: usize) -> Self {
        self.flush_at = events;
        self
    }

    /// Send a batch this long after its first event at the latest; default 0.5 s.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// How many events may wait while the server is slow or unreachable;
    /// more are dropped, counted and reported. Default 10 000.
    pub fn max_queue_size(mut self, events: usize) -> Self {
        self.max_queue_size = events;
        self
    }

    /// Retries of a batch after network errors, 408, 429 or 5xx before it is
    /// given up (and reported); default 10.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first retry waits about `initial`, each next one twice as long,
    /// never more than `max` (jittered down by up to half; `Retry-After`
    /// wins). Default 0.5 s and 30 s.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Timeout of one `/batch` request; default 15 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Timeout of flag requests (`/flags`, definitions); default 3 s.
    pub fn feature_flags_request_timeout(mut self, timeout: Duration) -> Self {
        self.feature_flags_request_timeout = timeout;
        self
    }

    /// How often definitions are refreshed; default 30 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long shutdown (and dropping the client) may spend delivering
    /// what is queued; what is left is reported. Default 10 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Send each call at once, on the caller's thread, and return the
    /// delivery's outcome; default off.
    pub fn sync_mode(mut self, sync: bool) -> Self {
        self.sync_mode = sync;
        self
    }

    /// Whether flag reads send `$feature_flag_called`; default on.
    pub fn send_feature_flag_events(mut self, send: bool) -> Self {
        self.send_feature_flag_events = send;
        self
    }

    /// Whether events ask the server to skip GeoIP; default on, as in
    /// posthog-python (a server's IP says nothing about its users).
    pub fn disable_geoip(mut self, disable: bool) -> Self {
        self.disable_geoip = disable;
        self
    }

    /// Called with every error the background work meets: batches refused
    /// or given up, events dropped on a full queue, definitions that fail
    /// to load. Default: a `tracing` warning.
    pub fn on_error(mut self, callback: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(callback));
        self
    }

    /// Starts the client (and its worker and poller threads).
    pub fn build(self) -> Result<Client, Error> {
        if self.api_key.trim().is_empty() {
            return Err(Error::Config("the project API key is empty".into()));
        }
        if !(self.host.starts_with("http://") || self.host.starts_with("https://")) {
            return Err(Error::Config(format!(
                "host `{}` must start with http:// or https://",
                self.host
            )));
        }
        if self.flush_at == 0 || self.max_queue_size == 0 {
            return Err(Error::Config(
                "flush_at and max_queue_size must be at least 1".into(),
            ));
        }
        let on_error = self
            .on_error
            .unwrap_or_else(|| Arc::new(|error: &Error| tracing::warn!(%error, "cairn-sdk")));
        let delivery = Delivery {
            api_key: self.api_key.clone(),
            transport: Transport::new(&self.host, self.request_timeout),
            max_retries: self.max_retries,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff.max(self.initial_backoff),
            counters: Arc::new(Counters::default()),
            on_error: on_error.clone(),
            deadline: Arc::new(Mutex::new(None)),
        };
        let mode = if self.sync_mode {
            Mode::Immediate
        } else {
            let (commands, receiver) = mpsc::sync_channel(self.max_queue_size);
            let worker = Worker {
                delivery: delivery.clone(),
                flush_at: self.flush_at,
                flush_interval: self.flush_interval,
            };
            let handle = std::thread::Builder::new()
                .name("cairn-sdk-delivery".into())
                .spawn(move || worker.run(receiver))
                .map_err(|e| Error::Config(format!("cannot start the delivery thread: {e}")))?;
            Mode::Background {
                commands,
                worker: Mutex::new(Some(handle)),
            }
        };
        let flags_transport = Transport::new(&self.host, self.feature_flags_request_timeout);
        let (store, loader, stop_polling) = match self.personal_api_key {
            Some(personal_api_key) => {
                let store = Arc::new(Store::default());
                let loader = Loader {
                    transport: flags_transport.clone(),
                    personal_api_key,
                    project_api_key: self.api_key.clone(),
                    store: store.clone(),
                    on_error,
                };
                let (stop, stopped) = mpsc::sync_channel(1);
                let poller = loader.clone();
                let interval = self.poll_interval;
                std::thread::Builder::new()
                    .name("cairn-sdk-flags".into())
                    .spawn(move || poller.poll(interval, stopped))
                    .map_err(|e| Error::Config(format!("cannot start the flags poller: {e}")))?;
                (Some(store), Some(loader), Some(stop))
            }
            None => (None, None, None),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                api_key: self.api_key,
                library: Library {
                    disable_geoip: self.disable_geoip,
                },
                delivery,
                mode,
                queue_capacity: self.max_queue_size,
                shutdown_timeout: self.shutdown_timeout,
                closed: AtomicBool::new(false),
                send_feature_flag_events: self.send_feature_flag_events,
                flags: FlagState {
                    transport: flags_transport,
                    store,
                    loader,
                    stop_polling: Mutex::new(stop_polling),
                    reported: Mutex::new(HashMap::new()),
                },
            }),
        })
    }
}

impl Client {
    /// A builder for a client sending with the project API key (`phc_…`).
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            api_key: api_key.into(),
            host: "http://127.0.0.1:8000".into(),
            personal_api_key: None,
            flush_at: 100,
            flush_interval: Duration::from_millis(500),
            max_queue_size: 10_000,
            max_retries: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
            feature_flags_request_timeout: Duration::from_secs(3),
            poll_interval: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            sync_mode: false,
            send_feature_flag_events: true,
            disable_geoip: true,
            on_error: None,
        }
    }

    /// Captures an event; returns its uuid, or `None` when there is no
    /// distinct id (given or from the context) and nothing was sent.
    pub fn capture(&self, capture: Capture) -> Result<Option<Uuid>, Error> {
        let message = self.inner.library.capture(capture)?;
        message.map(|m| self.enqueue(m)).transpose()
    }

    /// Sets person properties, overwriting existing values (`$set`).
    pub fn set(&self, set: Set) -> Result<Option<Uuid>, Error> {
        let message = self.inner.library.set(set, false)?;
        message.map(|m| self.enqueue(m)).transpose()
    }

    /// Sets person properties that are not set yet (`$set_once`).
    pub fn set_once(&self, set: Set) -> Result<Option<Uuid>, Error> {
        let message = self.inner.library.set(set, true)?;
        message.map(|m| self.enqueue(m)).transpose()
    }

    /// Sets a group's properties (`$groupidentify`).
    pub fn group_identify(&self, group: GroupIdentify) -> Result<Uuid, Error> {
        let message = self.inner.library.group_identify(group)?;
        self.enqueue(message)
    }

    /// Links a previous distinct id to a person (`$create_alias`).
    pub fn alias(&self, alias: Alias) -> Result<Option<Uuid>, Error> {
        let message = self.inner.library.alias(alias)?;
        message.map(|m| self.enqueue(m)).transpose()
    }

    fn enqueue(&self, message: Message) -> Result<Uuid, Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        let uuid = message.uuid;
        let counters = &inner.delivery.counters;
        match &inner.mode {
            Mode::Background { commands, .. } => {
                match commands.try_send(Command::Event(Box::new(message))) {
                    Ok(()) => {
                        counters.accepted.fetch_add(1, Ordering::Relaxed);
                        Ok(uuid)
                    }
                    Err(TrySendError::Full(_)) => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        Err(Error::QueueFull {
                            capacity: inner.queue_capacity,
                        })
                    }
                    Err(TrySendError::Disconnected(_)) => Err(Error::ShutDown),
                }
            }
            Mode::Immediate => {
                let event = Delivery::serialise(&message)?;
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                inner.delivery.send(&[event])?;
                Ok(uuid)
            }
        }
    }

    /// Blocks until every event queued before this call is delivered (or
    /// given up and reported).
    pub fn flush(&self) -> Result<(), Error> {
        let Mode::Background { commands, .. } = &self.inner.mode else {
            return Ok(());
        };
        let (done, wait) = mpsc::sync_channel(1);
        commands
            .send(Command::Flush(done))
            .map_err(|_| Error::ShutDown)?;
        wait.recv().map_err(|_| Error::ShutDown)
    }

    /// Delivers what is queued (within `shutdown_timeout`; the rest is
    /// reported as given up), stops the worker and the flag poller. Later
    /// calls fail with [`Error::ShutDown`]. Dropping the last clone of the
    /// client does the same.
    pub fn shutdown(&self) -> Result<(), Error> {
        self.inner.shutdown()
    }

    /// Totals of accepted, delivered, dropped and failed events.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.delivery.counters;
        Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Fetches flag definitions now (the poller also does, every
    /// `poll_interval`). Needs a personal API key.
    pub fn load_feature_flags(&self) -> Result<(), Error> {
        match &self.inner.flags.loader {
            Some(loader) => loader.load(),
            None => Err(Error::Config(
                "local evaluation needs a personal API key".into(),
            )),
        }
    }
}

impl Inner {
    fn shutdown(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Dropping the sender wakes and stops the poller.
        self.flags
            .stop_polling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Mode::Background { commands, worker } = &self.mode else {
            return Ok(());
        };
        *self
            .delivery
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + self.shutdown_timeout);
        let failed_before = self.delivery.counters.failed.load(Ordering::Relaxed);
        let (done, wait) = mpsc::sync_channel(1);
        if commands.send(Command::Shutdown(done)).is_ok() {
            // The worker starts no request after the deadline, so one
            // request timeout past it is the longest this can take.
            let _ = wait.recv();
        }
        if let Some(handle) = worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
        let lost = self.delivery.counters.failed.load(Ordering::Relaxed) - failed_before;
        match lost {
            0 => Ok(()),
            events => Err(Error::Undelivered { events }),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, "cairn-sdk shutdown");
        }
    }
}
