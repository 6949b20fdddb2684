//! ClickHouse, the scale-out engine: events and the mirrored persons,
//! groups and person overrides live in a ClickHouse server (or cluster),
//! which insights scan over its HTTP interface as Arrow streams, in
//! ClickHouse's dialect ([`ClickHouseDialect`]).

mod client;
mod copy;
mod dialect;
mod load;
mod scan;
mod schema;

pub use client::{ClickHouse, ClickHouseConfig};
pub use copy::{copy_from, Copied};
pub use dialect::ClickHouseDialect;
pub use load::ClickHouseLoader;
