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

impl GroupType {
    /// "company", or the singular display name a user gave it.
    pub fn singular(&self) -> String {
        self.name_singular
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.group_type.clone())
    }

    /// "companies": the plural display name, else the type in the plural.
    pub fn plural(&self) -> String {
        self.name_plural
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| english_plural(&self.group_type))
    }
}

/// The regular English plural: company → companies, business → businesses.
fn english_plural(noun: &str) -> String {
    let consonant_y = noun.ends_with('y')
        && !noun.ends_with("ay")
        && !noun.ends_with("ey")
        && !noun.ends_with("oy")
        && !noun.ends_with("uy");
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| noun.ends_with(end))
    {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::english_plural;

    #[test]
    fn group_types_read_naturally_in_the_plural() {
        let plurals =
            ["company", "team", "business", "day", "workspace", "branch"].map(english_plural);
        assert_eq!(
            plurals,
            [
                "companies",
                "teams",
                "businesses",
                "days",
                "workspaces",
                "branches"
            ]
        );
    }
}

/// One group of a group type, identified by its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
