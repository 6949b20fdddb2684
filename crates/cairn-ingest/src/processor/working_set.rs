//! What processing a request may read, fetched before it runs: the person
//! id of every distinct id its events name (their own, and the ids
//! `$identify`, `$create_alias` and `$merge_dangerously` merge with), the
//! person record itself where processing reads it (a merge, an event that
//! may change its person, a personless event's age check), the person a new
//! one would collide with, and every group they name. Processing then reads
//! only the working set, so it cannot fail on the store and needs no lock on
//! it. Most events of known persons change nothing about them: for those the
//! person record is not read at all.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use cairn_core::names::{event as names, property};
use cairn_core::{DistinctId, Person, ProjectId};
use cairn_store::{EntityState, StoreError};

use super::{Pending, Processor, ProjectState};
use crate::groups::group_key;
use crate::persons::may_change_person;
use crate::IncomingEvent;

impl Processor {
    /// Reads what `events` may touch into the working set; what an earlier
    /// request of the round changed there stays as it is.
    pub fn prepare(
        &mut self,
        project: ProjectId,
        events: &[IncomingEvent],
    ) -> cairn_store::Result<()> {
        self.project(project);
        let mut fetch = Fetch {
            project,
            entities: &self.entities,
            state: self.projects.get_mut(&project).expect("just made"),
            pending: &self.pending,
        };
        for event in events {
            let merges = matches!(
                event.event.as_str(),
                names::IDENTIFY | names::CREATE_ALIAS | names::MERGE_DANGEROUSLY
            );
            // A personless event's person is read for its age (force upgrade).
            let personless = !matches!(
                event.properties.get(property::PROCESS_PERSON_PROFILE),
                None | Some(Value::Bool(true))
            );
            let with_person = merges || personless || may_change_person(&event.properties);
            fetch.distinct_id(event.distinct_id.as_str(), with_person)?;
            if merges {
                for key in [property::ANON_DISTINCT_ID, "alias"] {
                    if let Some(id) = DistinctId::reference(event.properties.get(key)) {
                        fetch.distinct_id(id.as_str(), true)?;
                    }
                }
            }
            if let Some(Value::Object(groups)) = event.properties.get(property::GROUPS) {
                for (group_type, key) in groups {
                    fetch.group(group_type, key, Some(event.timestamp))?;
                }
            }
            let identified = event.properties.get(property::GROUP_TYPE);
            if let Some(Value::String(group_type)) = identified {
                let key = event.properties.get(property::GROUP_KEY);
                fetch.group(group_type, key.unwrap_or(&Value::Null), None)?;
            }
        }
        Ok(())
    }
}

struct Fetch<'a> {
    project: ProjectId,
    entities: &'a EntityState,
    state: &'a mut ProjectState,
    pending: &'a Pending,
}

impl Fetch<'_> {
    /// The person id of `distinct_id`, and its record if `with_person`
    /// (an earlier request of the round may have read only the id).
    fn distinct_id(&mut self, distinct_id: &str, with_person: bool) -> cairn_store::Result<()> {
        let known = self.state.person_of.get(distinct_id).copied();
        if known.is_some() && !with_person {
            return Ok(());
        }
        let person = match known {
            Some(person) => Some(person),
            None => self.entities.person_id(self.project, distinct_id)?,
        };
        match person {
            // The person first: a failed read must not leave the id
            // pointing at a person the working set lacks.
            Some(person) => {
                if with_person && !self.person(person)? {
                    return Err(StoreError::Corrupt(format!(
                        "distinct id {distinct_id:?} belongs to person {person}, which is not stored"
                    )));
                }
                self.state.person_of.insert(distinct_id.to_string(), person);
                Ok(())
            }
            // A person created for this id gets this uuid, unless it is taken.
            None => self
                .person(Person::uuid_for(self.project, distinct_id))
                .map(drop),
        }
    }

    /// Whether person `id` is in the working set now.
    fn person(&mut self, id: Uuid) -> cairn_store::Result<bool> {
        if self.pending.deleted_persons.contains(&(self.project, id)) {
            return Ok(false);
        }
        if self.state.persons.contains_key(&id) {
            return Ok(true);
        }
        let Some(person) = self.entities.person(self.project, id)? else {
            return Ok(false);
        };
        self.state.persons.insert(id, person);
        Ok(true)
    }

    /// A group of a type the project does not have yet cannot exist. An
    /// event that only names the group (`named_at` its time) changes it
    /// only if it is new or the event older than it: otherwise its creation
    /// time is all processing needs.
    fn group(
        &mut self,
        group_type: &str,
        key: &Value,
        named_at: Option<DateTime<Utc>>,
    ) -> cairn_store::Result<()> {
        let Ok(Some(key)) = group_key(key) else {
            return Ok(());
        };
        let types = &self.state.group_types;
        let Some(index) = types.iter().find(|t| t.group_type == group_type) else {
            return Ok(());
        };
        let lookup = (index.group_type_index, key.into_string());
        if self.state.groups.contains_key(&lookup) {
            return Ok(());
        }
        if let Some(named_at) = named_at {
            let created_at = match self.state.groups_created.get(&lookup) {
                Some(created_at) => Some(*created_at),
                None => self
                    .entities
                    .group_created_at(self.project, lookup.0, &lookup.1)?,
            };
            match created_at {
                None => return Ok(()),
                Some(created_at) if created_at <= named_at => {
                    self.state.groups_created.insert(lookup, created_at);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        if let Some(group) = self.entities.group(self.project, lookup.0, &lookup.1)? {
            self.state.groups.insert(lookup, Arc::clone(&group));
        }
        Ok(())
    }
}
