//! From HTTP bodies to stored events: decode the PostHog wire formats,
//! normalise each event, then apply person and group processing in one
//! ordered pipeline that commits to the store before anyone is told "ok".

pub mod directory;
pub mod error;
pub mod groups;
pub mod lz64;
pub mod normalize;
pub mod persons;
pub mod pipeline;
pub mod processor;
pub mod properties_cap;
mod seen;
pub mod timestamp;
pub mod token;
pub mod wire;

pub use directory::Directory;
pub use error::CaptureError;
pub use normalize::{normalize_batch, IncomingEvent, NormalizedBatch};
pub use pipeline::{Accepted, Pipeline, PipelineError};
pub use wire::{
    decode_body, decode_payload, CapturePath, CaptureQuery, DecodedPayload, WireRequest,
};
