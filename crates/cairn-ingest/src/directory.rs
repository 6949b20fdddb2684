//! Committed person and group properties, readable from any thread. The
//! writer thread owns the ingestion state; feature flags need to read it per
//! request without waiting for the writer, so every successful commit is
//! published here, and nothing that was not committed ever is.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cairn_core::{Group, GroupType, GroupTypeIndex, Person, ProjectId, Properties};
use cairn_store::{Commit, PersonLookup, SnapshotVisitor};
use uuid::Uuid;

#[derive(Debug, Default)]
pub(crate) struct Directory {
    projects: RwLock<HashMap<ProjectId, ProjectDirectory>>,
}

#[derive(Debug, Default)]
struct ProjectDirectory {
    person_of: HashMap<String, Uuid>,
    persons: HashMap<Uuid, Arc<Properties>>,
    groups: HashMap<(GroupTypeIndex, String), Arc<Properties>>,
    group_types: Vec<(GroupTypeIndex, String)>,
}

impl Directory {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ProjectId, ProjectDirectory>> {
        self.projects.read().expect("directory lock")
    }
}

/// `/flags` reads committed properties here, without waiting for the writer.
impl PersonLookup for Directory {
    fn person_properties(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> cairn_store::Result<Option<Properties>> {
        let stored = self.read().get(&project).and_then(|state| {
            let person = state.person_of.get(distinct_id)?;
            state.persons.get(person).cloned()
        });
        // Copied once the lock is released.
        Ok(stored.map(|properties| (*properties).clone()))
    }

    fn group_properties(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
    ) -> cairn_store::Result<Option<Properties>> {
        let stored = self
            .read()
            .get(&project)
            .and_then(|state| state.groups.get(&(index, key.to_string())).cloned());
        Ok(stored.map(|properties| (*properties).clone()))
    }

    fn group_types(
        &self,
        project: ProjectId,
    ) -> cairn_store::Result<Vec<(GroupTypeIndex, String)>> {
        Ok(self
            .read()
            .get(&project)
            .map(|state| state.group_types.clone())
            .unwrap_or_default())
    }
}

impl Directory {
    /// Publishes what a successful commit changed.
    pub(crate) fn publish(&self, commit: &Commit) {
        let mut projects = self.projects.write().expect("directory lock");
        for (project, person) in &commit.deleted_persons {
            if let Some(state) = projects.get_mut(project) {
                state.persons.remove(person);
            }
        }
        for (project, distinct_id, person) in &commit.distinct_ids {
            let state = projects.entry(*project).or_default();
            state.person_of.insert(distinct_id.clone(), *person);
        }
        for person in &commit.persons {
            projects
                .entry(person.project_id)
                .or_default()
                .add_person(person);
        }
        for (project, group_type) in &commit.group_types {
            projects
                .entry(*project)
                .or_default()
                .add_group_type(group_type);
        }
        for group in &commit.groups {
            projects
                .entry(group.project_id)
                .or_default()
                .add_group(group);
        }
    }

    /// Replaces everything with `fresh` (after a start or a reload).
    pub(crate) fn replace(&self, fresh: Directory) {
        let fresh = fresh.projects.into_inner().expect("directory lock");
        *self.projects.write().expect("directory lock") = fresh;
    }
}

impl ProjectDirectory {
    fn add_person(&mut self, person: &Person) {
        self.persons
            .insert(person.id, Arc::new(person.properties.clone()));
    }

    fn add_group_type(&mut self, group_type: &GroupType) {
        let entry = (group_type.group_type_index, group_type.group_type.clone());
        if !self.group_types.contains(&entry) {
            self.group_types.push(entry);
            self.group_types.sort();
        }
    }

    fn add_group(&mut self, group: &Group) {
        self.groups.insert(
            (group.group_type_index, group.group_key.clone()),
            Arc::new(group.properties.clone()),
        );
    }
}

/// Fills a directory while the processor loads the same snapshot.
pub(crate) struct Tee<'a, V> {
    pub first: &'a mut V,
    pub directory: &'a mut Directory,
}

impl<V: SnapshotVisitor> SnapshotVisitor for Tee<'_, V> {
    fn person(&mut self, person: Person) {
        let state = self.directory.projects.get_mut().expect("directory lock");
        let state = state.entry(person.project_id).or_default();
        for distinct_id in &person.distinct_ids {
            state.person_of.insert(distinct_id.clone(), person.id);
        }
        state.add_person(&person);
        self.first.person(person);
    }

    fn group_type(&mut self, project: ProjectId, group_type: GroupType) {
        let state = self.directory.projects.get_mut().expect("directory lock");
        state
            .entry(project)
            .or_default()
            .add_group_type(&group_type);
        self.first.group_type(project, group_type);
    }

    fn group(&mut self, group: Group) {
        let state = self.directory.projects.get_mut().expect("directory lock");
        state.entry(group.project_id).or_default().add_group(&group);
        self.first.group(group);
    }

    fn event_uuid(&mut self, project: ProjectId, uuid: Uuid) {
        self.first.event_uuid(project, uuid);
    }
}
