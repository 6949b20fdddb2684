use std::collections::HashSet;

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
    /// Persons this commit creates, and the distinct ids it creates them
    /// with: no earlier commit holds them, so an engine mirroring persons
    /// appends them without looking for a stored row to replace. (Absent
    /// from journals written before: those rows are looked for.)
    #[serde(default)]
    pub new_persons: Vec<(ProjectId, Uuid)>,
    #[serde(default)]
    pub new_distinct_ids: Vec<(ProjectId, String)>,
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
    /// Persons and distinct ids whose first change absorbed was their
    /// creation: nothing stored before has their key.
    pub new_persons: HashSet<(ProjectId, Uuid)>,
    pub new_distinct_ids: HashSet<(ProjectId, String)>,
}

impl EntityChanges {
    /// Adds what `commit` changed; it comes after everything absorbed so far.
    pub fn absorb(&mut self, commit: &Commit) {
        self.group_types.extend(commit.group_types.iter().cloned());
        for key in &commit.new_persons {
            if !self.persons.contains_key(key) {
                self.new_persons.insert(*key);
            }
        }
        for key in &commit.new_distinct_ids {
            if !self.distinct_ids.contains_key(key) {
                self.new_distinct_ids.insert(key.clone());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: Uuid, version: i64) -> Person {
        Person {
            project_id: ProjectId(1),
            id,
            properties: Default::default(),
            is_identified: false,
            created_at: chrono::DateTime::UNIX_EPOCH,
            version,
            distinct_ids: vec!["d".into()],
        }
    }

    /// A key is new to a load only if its creation is the first change the
    /// load absorbs for it: a stored person deleted and created again under
    /// the same id still has its stored row replaced.
    #[test]
    fn a_key_is_new_when_the_load_first_sees_it_created() {
        let p = ProjectId(1);
        let (created, recreated) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut changes = EntityChanges::default();
        changes.absorb(&Commit {
            persons: vec![person(created, 0)],
            deleted_persons: vec![(p, recreated)],
            new_persons: vec![(p, created)],
            distinct_ids: vec![(p, "d".into(), created)],
            new_distinct_ids: vec![(p, "d".into())],
            ..Default::default()
        });
        changes.absorb(&Commit {
            persons: vec![person(created, 1), person(recreated, 0)],
            new_persons: vec![(p, recreated)],
            distinct_ids: vec![(p, "d".into(), recreated), (p, "e".into(), recreated)],
            new_distinct_ids: vec![(p, "d".into()), (p, "e".into())],
            ..Default::default()
        });
        assert_eq!(changes.new_persons, HashSet::from([(p, created)]));
        assert_eq!(
            changes.new_distinct_ids,
            HashSet::from([(p, "d".to_string()), (p, "e".to_string())])
        );
        assert_eq!(changes.persons[&(p, created)].as_ref().unwrap().version, 1);
    }
}
