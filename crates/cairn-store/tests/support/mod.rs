//! Code shared by the integration tests (`mod support;` in a test file).
//! It lives in a directory because Cargo builds every `.rs` file directly
//! under `tests/` as a test crate of its own.

pub mod clickhouse;
