use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ProjectId, Properties};

/// Namespace of PostHog's person uuids: `uuid5(namespace, "<team_id>:<distinct_id>")`.
const PERSON_UUID_NAMESPACE: Uuid = Uuid::from_u128(0x932979b4_65c3_4424_8467_0b66ec27bc22);

/// A person: one or more distinct ids sharing properties.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub project_id: ProjectId,
    pub id: Uuid,
    pub properties: Properties,
    pub is_identified: bool,
    pub created_at: DateTime<Utc>,
    pub version: i64,
    pub distinct_ids: Vec<String>,
}

impl Person {
    /// What a person is called in lists: email, else name, else a distinct id.
    pub fn display_name(&self) -> String {
        ["email", "name"]
            .iter()
            .find_map(|key| {
                self.properties
                    .get(*key)?
                    .as_str()
                    .filter(|s| !s.is_empty())
            })
            .map(String::from)
            .or_else(|| self.distinct_ids.first().cloned())
            .unwrap_or_else(|| self.id.to_string())
    }

    /// The deterministic uuid PostHog gives the person first seen as `distinct_id`.
    pub fn uuid_for(project_id: ProjectId, distinct_id: &str) -> Uuid {
        Uuid::new_v5(
            &PERSON_UUID_NAMESPACE,
            format!("{project_id}:{distinct_id}").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_uuid_is_deterministic_per_project() {
        let a = Person::uuid_for(ProjectId(1), "user-1");
        assert_eq!(a, Person::uuid_for(ProjectId(1), "user-1"));
        assert_ne!(a, Person::uuid_for(ProjectId(2), "user-1"));
        assert_eq!(a.get_version_num(), 5);
    }
}
