use cairn_core::{Event, Group, GroupType, IngestionWarning, Person, ProjectId};
use uuid::Uuid;

/// Everything one group commit changes, written in one transaction. Each
/// person, distinct id and group appears at most once, in its final state.
#[derive(Debug, Default)]
pub struct Commit {
    pub events: Vec<Event>,
    pub persons: Vec<Person>,
    pub deleted_persons: Vec<(ProjectId, Uuid)>,
    /// `(project, merged-away person, the person it became)`, in merge order:
    /// events keep the person id they were stored with, and queries follow
    /// these overrides to the person it is now.
    pub person_overrides: Vec<(ProjectId, Uuid, Uuid)>,
    /// `(project, distinct_id, person_id)`: new or moved distinct ids.
    pub distinct_ids: Vec<(ProjectId, String, Uuid)>,
    pub group_types: Vec<(ProjectId, GroupType)>,
    pub groups: Vec<Group>,
    pub warnings: Vec<IngestionWarning>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.persons.is_empty()
            && self.deleted_persons.is_empty()
            && self.person_overrides.is_empty()
            && self.distinct_ids.is_empty()
            && self.group_types.is_empty()
            && self.groups.is_empty()
            && self.warnings.is_empty()
    }
}
