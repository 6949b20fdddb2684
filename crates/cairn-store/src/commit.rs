use indexmap::IndexMap;

use cairn_core::{Event, Group, GroupType, GroupTypeIndex, IngestionWarning, Person, ProjectId};
use uuid::Uuid;

/// Everything one group commit changes, written in one transaction. Each
/// person, distinct id and group appears at most once, in its final state.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
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

/// The persons, distinct ids, groups and group types that a run of commits
/// leaves behind, each in its final state: what a load writes besides the
/// events. Kept in first-seen order: a person's distinct ids are listed in
/// the order they were stored.
#[derive(Debug, Default)]
pub struct EntityChanges {
    pub group_types: Vec<(ProjectId, GroupType)>,
    /// `None`: the person was deleted (merged away).
    pub persons: IndexMap<(ProjectId, Uuid), Option<Person>>,
    pub person_overrides: Vec<(ProjectId, Uuid, Uuid)>,
    pub distinct_ids: IndexMap<(ProjectId, String), Uuid>,
    pub groups: IndexMap<(ProjectId, GroupTypeIndex, String), Group>,
}

impl EntityChanges {
    /// Adds what `commit` changed; it comes after everything absorbed so far.
    pub fn absorb(&mut self, commit: &Commit) {
        self.group_types.extend(commit.group_types.iter().cloned());
        for person in &commit.persons {
            self.persons
                .insert((person.project_id, person.id), Some(person.clone()));
        }
        for deleted in &commit.deleted_persons {
            self.persons.insert(*deleted, None);
        }
        self.person_overrides
            .extend(commit.person_overrides.iter().cloned());
        for (project, distinct_id, person) in &commit.distinct_ids {
            self.distinct_ids
                .insert((*project, distinct_id.clone()), *person);
        }
        for group in &commit.groups {
            let key = (
                group.project_id,
                group.group_type_index,
                group.group_key.clone(),
            );
            self.groups.insert(key, group.clone());
        }
    }
}
