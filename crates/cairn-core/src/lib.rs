//! Domain types shared by every Cairn crate. No I/O lives here.

pub mod event;
pub mod group;
pub mod ids;
pub mod names;
pub mod person;
pub mod project;
pub mod time;
pub mod warning;

pub use event::Event;
pub use group::{Group, GroupType, GroupTypeIndex};
pub use ids::{json_type, DistinctId, DistinctIdError, GroupKey, GroupKeyError};
pub use person::Person;
pub use project::ProjectId;
pub use warning::{IngestionWarning, WarningKind};

/// Free-form properties of an event, a person or a group, in insertion order.
pub type Properties = serde_json::Map<String, serde_json::Value>;
