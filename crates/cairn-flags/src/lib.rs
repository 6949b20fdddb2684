//! Feature-flag evaluation that gives PostHog's answers for PostHog's flag
//! definitions. Pure: no I/O, so the server and the Rust SDK share it.

pub mod hash;
pub mod properties;
