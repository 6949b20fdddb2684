//! # cairn-sdk
//!
//! The Rust counterpart of posthog-python's user and group management, for
//! Cairn or any server that speaks PostHog's protocol:
//!
//! - events with properties and groups ([`Client::capture`]), person
//!   properties ([`Client::set`], [`Client::set_once`]), groups
//!   ([`Client::group_identify`]) and identity links ([`Client::alias`]),
//!   each returning the event's uuid;
//! - contexts ([`with_context`] for threads, [`in_context`] for async
//!   tasks) that supply the distinct id and fold [`tag`]s into properties;
//! - feature flags by person or group, evaluated locally with the
//!   server's own evaluation crate when a personal API key is configured,
//!   else (or when only the server can decide) by `/flags`;
//! - delivery by a background thread: batches, gzip, retries with backoff
//!   and jitter, `Retry-After`, a bounded offline queue, drain on
//!   [`Client::flush`], [`Client::shutdown`] or drop.
//!
//! ```no_run
//! use cairn_sdk::{Capture, Client, GroupIdentify, Set};
//! use serde_json::json;
//!
//! let client = Client::builder("phc_your_project_api_key")
//!     .host("http://127.0.0.1:8000")
//!     .build()?;
//! client.set(Set::new(json!({"name": "Alice Smith"})).distinct_id("user_789"))?;
//! client.group_identify(
//!     GroupIdentify::new("company", "company_xyz").properties(json!({"name": "XYZ Startup"})),
//! )?;
//! client.capture(
//!     Capture::new("feature_used")
//!         .distinct_id("user_789")
//!         .property("feature", "advanced_dashboard")
//!         .group("company", "company_xyz"),
//! )?;
//! client.shutdown()?;
//! # Ok::<(), cairn_sdk::Error>(())
//! ```
//!
//! Calls that send events never block on the network (unless
//! [`ClientBuilder::sync_mode`] is on). Flag calls that need the server
//! make a blocking request (bounded by
//! [`ClientBuilder::feature_flags_request_timeout`]); from async code, run
//! them with `tokio::task::spawn_blocking` or enable local evaluation.

#![warn(missing_docs)]

mod client;
mod context;
mod delivery;
mod error;
mod flags;
mod message;
mod transport;

pub use client::{Client, ClientBuilder, Stats};
pub use context::{
    identify_context, in_context, in_fresh_context, set_context_session, tag, tags, with_context,
    with_fresh_context,
};
pub use error::Error;
pub use flags::{FlagOptions, FlagValue};
pub use message::{Alias, Capture, GroupIdentify, Set};

/// `$lib` on every event.
pub const LIB_NAME: &str = "cairn-sdk";
/// `$lib_version` on every event.
pub const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");
