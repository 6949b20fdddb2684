//! Everything that can go wrong, each naming what was wrong.

/// An error from a call, or one reported to the `on_error` callback by the
/// background worker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The client was configured with an unusable value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A message cannot be sent as given (empty event name, properties that
    /// do not serialise to a JSON object, ...).
    #[error("{0}")]
    Invalid(String),
    /// The queue held `capacity` events, so this one was dropped.
    #[error("the queue is full ({capacity} events waiting); the event was dropped")]
    QueueFull {
        /// The configured `max_queue_size`.
        capacity: usize,
    },
    /// Reported by the worker: events dropped on a full queue since the last
    /// report.
    #[error("{count} events were dropped because the queue was full")]
    Dropped {
        /// How many.
        count: u64,
    },
    /// The client has been shut down; nothing more is sent.
    #[error("the client is shut down")]
    ShutDown,
    /// A serialised event is over the server's size limit.
    #[error("an event of {bytes} bytes is over the {limit}-byte limit and was dropped")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The server refused a batch with a status that retrying cannot change.
    #[error("the server refused {events} events with HTTP {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of the response body (the server's explanation).
        body: String,
        /// Events in the batch.
        events: usize,
    },
    /// A batch could not be delivered after every retry (or before shutdown).
    #[error("gave up delivering {events} events after {attempts} attempts: {cause}")]
    GaveUp {
        /// Events in the batch.
        events: usize,
        /// Requests made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// Shutdown ended with events undelivered (each failure was also
    /// reported to `on_error`).
    #[error("{events} events were not delivered before shutdown")]
    Undelivered {
        /// How many.
        events: u64,
    },
    /// A request failed before the server answered.
    #[error("request to {url} failed: {cause}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What failed.
        cause: String,
    },
    /// The server answered a flags or definitions request with an error.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        /// The URL requested.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The server's answer could not be read.
    #[error("unreadable response from {url}: {cause}")]
    Response {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        cause: String,
    },
}
