//! From HTTP bodies to stored events: decode the PostHog wire formats,
//! normalise each event, then apply person and group processing in one
//! ordered pipeline that commits to the store before anyone is told "ok".
//!
//! The crate's map:
//! - [`capture()`], the capture entry point: the body unwrapped (`transport`)
//!   and read (`wire`), its project key found (`token`) and looked up, then
//!   its events normalised (`normalize`) into what the pipeline takes.
//! - [`decode_flags_body`]: a `/flags` or `/decide` body, through the same
//!   transports; what it says is the flags endpoint's to read.
//! - [`Pipeline`]: one writer thread that processes persons and groups
//!   (`processor`, with PostHog's stateless rules in `persons` and `groups`)
//!   in ingestion order, against the store's `EntityState`, and commits
//!   through the store, which applies each commit to that state (what
//!   `/flags` reads). Event uuids are deduplicated through filters (`seen`).
//!
//! Distinct ids and group keys follow `cairn_core::ids`, as `/flags` does.

mod capture;
mod error;
mod groups;
mod lz64;
mod normalize;
mod persons;
mod pipeline;
mod processor;
mod properties_cap;
mod seen;
pub mod timestamp;
mod token;
mod transport;
mod wire;

pub use capture::{capture, Captured};
pub use error::CaptureError;
pub use normalize::{normalize_batch, IncomingEvent, NormalizedBatch};
pub use persons::fill_initial_properties;
pub use pipeline::{panic_message, Accepted, Pipeline, PipelineError};
/// For the property tests that fuzz processing.
pub use processor::Processor;
pub use transport::{decode_flags_body, Transport};
pub use wire::{CapturePath, CaptureQuery, CaptureRequest, DecodedPayload};
