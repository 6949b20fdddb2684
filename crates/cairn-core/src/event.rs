use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ProjectId, Properties};

/// An event as it is stored: normalised, attributed to a person and to at most
/// one group per group type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub project_id: ProjectId,
    pub uuid: Uuid,
    pub event: String,
    pub distinct_id: String,
    /// The person the distinct id belonged to when the event was ingested.
    /// Reads resolve the *current* person through the person overrides
    /// (`cairn_store::identity`).
    pub person_id: Option<Uuid>,
    pub timestamp: DateTime<Utc>,
    pub inserted_at: DateTime<Utc>,
    pub properties: Properties,
    /// `groups[i]` is the key of this event's group of type index `i`.
    pub groups: Vec<Option<String>>,
}
