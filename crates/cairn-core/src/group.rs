use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ProjectId, Properties};

/// Position of a group type in its project, given in first-seen order.
pub type GroupTypeIndex = u8;

/// A kind of group, such as `company` or `team`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupType {
    pub group_type: String,
    pub group_type_index: GroupTypeIndex,
    pub name_singular: Option<String>,
    pub name_plural: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One group of a group type, identified by its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub project_id: ProjectId,
    pub group_type_index: GroupTypeIndex,
    pub group_key: String,
    pub properties: Properties,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl Group {
    /// What a person sees for this group: its `name` property, else its key.
    pub fn display_name(&self) -> String {
        match self.properties.get("name") {
            Some(serde_json::Value::String(name)) if !name.is_empty() => name.clone(),
            _ => self.group_key.clone(),
        }
    }
}
