//! Person and group processing, in ingestion order. Before a request is
//! processed, [`Processor::prepare`] reads every person, distinct id and
//! group its events may touch from the committed [`EntityState`] into the
//! round's working set; processing then changes only the working set and
//! records what must be written, and [`Processor::take_commit`] hands that
//! over as one [`Commit`]. Whether that commit is stored or not, the working
//! set is dropped: the entity state is what the next round reads.

use std::collections::HashSet;
use std::sync::Arc;

// Looked up for every event: foldhash, not SipHash.
use foldhash::{HashMap, HashSet as FastSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use cairn_core::names::{event, property};
use cairn_core::{
    DistinctId, Event, Group, GroupType, GroupTypeIndex, IngestionWarning, Person, ProjectId,
    Properties, WarningKind,
};
use cairn_store::{Commit, EntityState};

use crate::groups::{group_key, is_valid_group_type};
use crate::persons::{add_initial_and_campaign_properties, PropertyUpdates};
use crate::properties_cap::{self, MAX_PROPERTIES_BYTES};
use crate::seen::{Seen, SeenUuids};
use crate::IncomingEvent;

/// Events that only make sense with a person profile.
const PERSON_EVENTS: &[&str] = &[
    event::IDENTIFY,
    event::CREATE_ALIAS,
    event::MERGE_DANGEROUSLY,
    event::GROUP_IDENTIFY,
];
/// Events that never change person properties.
const EVENTS_WITHOUT_PERSON_UPDATES: &[&str] = &[event::EXCEPTION, event::HEATMAP];
/// A personless event for a person older than this is attributed like a
/// person-processed one (PostHog's "force upgrade").
const FORCE_UPGRADE_AGE: Duration = Duration::minutes(1);
/// The same warning about the same thing is recorded at most this often.
const WARNING_DEBOUNCE: Duration = Duration::hours(1);
/// Tests send an event of this name to make processing panic half way.
#[cfg(test)]
pub(crate) const PANIC_EVENT: &str = "$cairn_test_panic";

mod working_set;

#[derive(Debug, Default)]
struct ProjectState {
    /// The round's working set: what `prepare` read and processing changed.
    persons: HashMap<Uuid, Arc<Person>>,
    person_of: HashMap<String, Uuid>,
    groups: HashMap<(GroupTypeIndex, String), Arc<Group>>,
    /// Stored groups whose record was not read, with their `created_at`:
    /// the events naming them are no older.
    groups_created: HashMap<(GroupTypeIndex, String), DateTime<Utc>>,
    /// Committed group types and this round's new ones.
    group_types: Vec<GroupType>,
    /// Uuids of committed events, and of this round's.
    uuids: SeenUuids,
    round_uuids: FastSet<Uuid>,
}

impl ProjectState {
    fn clear_working_set(&mut self) {
        self.persons.clear();
        self.person_of.clear();
        self.groups.clear();
        self.groups_created.clear();
    }
}

/// What the next commit must write, beyond the events themselves.
#[derive(Debug, Default)]
struct Pending {
    commit: Commit,
    dirty_persons: FastSet<(ProjectId, Uuid)>,
    deleted_persons: FastSet<(ProjectId, Uuid)>,
    person_overrides: Vec<(ProjectId, Uuid, Uuid)>,
    distinct_ids: HashMap<(ProjectId, String), Uuid>,
    dirty_groups: FastSet<(ProjectId, GroupTypeIndex, String)>,
}

/// How many of the submitted events were new.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    pub stored: usize,
    pub duplicates: usize,
}

pub struct Processor {
    entities: Arc<EntityState>,
    projects: HashMap<ProjectId, ProjectState>,
    group_type_limit: usize,
    pending: Pending,
    last_warned: HashMap<(ProjectId, WarningKind, String), DateTime<Utc>>,
}

impl Processor {
    /// A processor over the committed state in `entities`.
    pub fn new(entities: Arc<EntityState>, group_type_limit: usize) -> Self {
        Self {
            entities,
            projects: HashMap::default(),
            group_type_limit,
            pending: Pending::default(),
            last_warned: HashMap::default(),
        }
    }

    /// Knows the event uuids stored before, per project.
    pub(crate) fn with_seen_uuids(
        mut self,
        uuids: impl IntoIterator<Item = (ProjectId, SeenUuids)>,
    ) -> Self {
        for (project, uuids) in uuids {
            self.project(project).uuids = uuids;
        }
        self
    }

    /// The state of `project`, with its committed group types at first use.
    fn project(&mut self, project: ProjectId) -> &mut ProjectState {
        let entities = &self.entities;
        self.projects
            .entry(project)
            .or_insert_with(|| ProjectState {
                group_types: entities.project_group_types(project).to_vec(),
                ..ProjectState::default()
            })
    }

    /// The uuids among `events` that only the store can tell apart from
    /// new ones; [`Processor::process`] wants those of them it has.
    pub fn unsure(&self, project: ProjectId, events: &[IncomingEvent]) -> Vec<Uuid> {
        let Some(state) = self.projects.get(&project) else {
            return Vec::new();
        };
        let mut unsure: Vec<Uuid> = events
            .iter()
            .map(|e| e.uuid)
            .filter(|uuid| {
                !state.round_uuids.contains(uuid) && state.uuids.check(uuid) == Seen::Unsure
            })
            .collect();
        unsure.sort_unstable();
        unsure.dedup();
        unsure
    }

    /// Processes one request's events in order. `stored` holds those of
    /// its [`Processor::unsure`] uuids that the store already has.
    pub fn process(
        &mut self,
        project: ProjectId,
        events: Vec<IncomingEvent>,
        now: DateTime<Utc>,
        stored: &HashSet<Uuid>,
    ) -> Processed {
        let mut processed = Processed::default();
        let group_type_limit = self.group_type_limit;
        self.project(project);
        let mut run = Run {
            project,
            now,
            state: self.projects.get_mut(&project).expect("just made"),
            pending: &mut self.pending,
            last_warned: &mut self.last_warned,
            group_type_limit,
        };
        for event in events {
            if run.process_event(event, stored) {
                processed.stored += 1;
            } else {
                processed.duplicates += 1;
            }
        }
        processed
    }

    /// Records a warning for each event of a request that the normaliser
    /// refused; nothing else of them is kept.
    pub fn record_refused(
        &mut self,
        project: ProjectId,
        refused: Vec<(WarningKind, Value)>,
        now: DateTime<Utc>,
    ) {
        let warnings = refused.into_iter().map(|(kind, details)| IngestionWarning {
            project_id: project,
            kind,
            details,
            timestamp: now,
        });
        self.pending.commit.warnings.extend(warnings);
    }

    /// Everything processed since the last call, ready to be written. The
    /// working set is dropped; [`Processor::committed`] or
    /// [`Processor::discard`] must follow, once the outcome is known.
    pub fn take_commit(&mut self) -> Commit {
        let pending = std::mem::take(&mut self.pending);
        let mut commit = pending.commit;
        commit.persons = pending
            .dirty_persons
            .into_iter()
            .filter_map(|(project, id)| {
                let person = self.projects.get(&project)?.persons.get(&id)?;
                Some(Person::clone(person))
            })
            .collect();
        commit.deleted_persons = pending.deleted_persons.into_iter().collect();
        commit.person_overrides = pending.person_overrides;
        commit.distinct_ids = pending
            .distinct_ids
            .into_iter()
            .map(|((project, distinct_id), person)| (project, distinct_id, person))
            .collect();
        commit.groups = pending
            .dirty_groups
            .into_iter()
            .filter_map(|(project, index, key)| {
                let group = self.projects.get(&project)?.groups.get(&(index, key))?;
                Some(Group::clone(group))
            })
            .collect();
        for state in self.projects.values_mut() {
            state.clear_working_set();
        }
        if self.last_warned.len() > 100_000 {
            self.last_warned.clear();
        }
        commit
    }

    /// The commit taken last is stored: its event uuids are known from now on.
    pub fn committed(&mut self) {
        for state in self.projects.values_mut() {
            for uuid in state.round_uuids.drain() {
                state.uuids.insert(uuid);
            }
            state.uuids.trim();
        }
    }

    /// Nothing processed since the last commit was stored: forgets it all.
    pub fn discard(&mut self) {
        self.pending = Pending::default();
        for (project, state) in &mut self.projects {
            state.clear_working_set();
            state.round_uuids.clear();
            state.group_types = self.entities.project_group_types(*project).to_vec();
        }
    }

    /// The event uuids known per project, to be saved for the next start.
    pub(crate) fn seen_uuids(&self) -> impl Iterator<Item = (ProjectId, &SeenUuids)> {
        self.projects
            .iter()
            .map(|(project, state)| (*project, &state.uuids))
    }

    #[cfg(test)]
    fn person_of(&self, project: ProjectId, distinct_id: &str) -> Option<Arc<Person>> {
        let id = self.entities.person_id(project, distinct_id).unwrap()?;
        self.entities.person(project, id).unwrap()
    }
}

/// Processing of one request for one project.
struct Run<'a> {
    project: ProjectId,
    now: DateTime<Utc>,
    state: &'a mut ProjectState,
    pending: &'a mut Pending,
    last_warned: &'a mut HashMap<(ProjectId, WarningKind, String), DateTime<Utc>>,
    group_type_limit: usize,
}

/// Drops the person operations of an event that must not change a person.
fn strip_person_updates(properties: &mut Properties) {
    for key in [property::SET, property::SET_ONCE, property::UNSET] {
        properties.remove(key);
    }
}

impl Run<'_> {
    /// Returns false for a duplicate uuid (nothing is stored).
    fn process_event(&mut self, incoming: IncomingEvent, stored: &HashSet<Uuid>) -> bool {
        // `stored` holds those of the request's unsure uuids the store has:
        // the filters need not be asked again.
        let state = &mut self.state;
        if state.uuids.is_recent(&incoming.uuid)
            || stored.contains(&incoming.uuid)
            || !state.round_uuids.insert(incoming.uuid)
        {
            return false;
        }
        let IncomingEvent {
            uuid,
            event: name,
            distinct_id,
            mut properties,
            timestamp,
            warnings,
        } = incoming;
        for (kind, details) in warnings {
            self.warn(kind, details);
        }

        let process_person = match properties.get(property::PROCESS_PERSON_PROFILE) {
            None | Some(Value::Bool(true)) => true,
            Some(Value::Bool(false)) => false,
            Some(other) => {
                let details = json!({"event_uuid": uuid, "value": other});
                self.warn(WarningKind::InvalidProcessPersonProfile, details);
                true
            }
        };

        let (person_id, attach_groups) = if process_person {
            (
                self.process_person(uuid, &name, &distinct_id, &mut properties, timestamp),
                true,
            )
        } else {
            let id = distinct_id.as_str();
            self.process_personless(uuid, &name, id, &mut properties, timestamp)
        };

        #[cfg(test)]
        if name == PANIC_EVENT {
            panic!("a panic injected by a test, after the person was processed");
        }

        let mut groups = Vec::new();
        if attach_groups {
            if name == event::GROUP_IDENTIFY {
                self.group_identify(uuid, &properties, timestamp);
            }
            groups = self.event_groups(uuid, &mut properties, timestamp);
        }

        self.pending.commit.events.push(Event {
            project_id: self.project,
            uuid,
            event: name,
            distinct_id: distinct_id.into_string(),
            person_id,
            timestamp,
            inserted_at: self.now,
            properties,
            groups,
        });
        true
    }

    /// Personless events change no person; they are attributed to the
    /// distinct id's person if there is one. Returns the person id and whether
    /// the event gets its groups (only when "force upgraded", as in PostHog).
    fn process_personless(
        &mut self,
        uuid: Uuid,
        name: &str,
        distinct_id: &str,
        properties: &mut Properties,
        timestamp: DateTime<Utc>,
    ) -> (Option<Uuid>, bool) {
        strip_person_updates(properties);
        if PERSON_EVENTS.contains(&name) {
            let details = json!({"event_uuid": uuid, "event": name, "distinct_id": distinct_id});
            self.warn(
                WarningKind::InvalidEventWhenProcessPersonProfileIsFalse,
                details,
            );
            return (Some(self.attributed_person(distinct_id)), false);
        }
        let upgraded = self.existing_person(distinct_id).is_some_and(|person| {
            timestamp
                .checked_sub_signed(FORCE_UPGRADE_AGE)
                .is_some_and(|upgrade_after| person.created_at <= upgrade_after)
        });
        (Some(self.attributed_person(distinct_id)), upgraded)
    }

    /// The person an event that changes no person is attributed to: the
    /// distinct id's person, else the id that person would get.
    fn attributed_person(&self, distinct_id: &str) -> Uuid {
        match self.state.person_of.get(distinct_id) {
            Some(person) => *person,
            None => Person::uuid_for(self.project, distinct_id),
        }
    }

    fn process_person(
        &mut self,
        uuid: Uuid,
        name: &str,
        distinct_id: &DistinctId,
        properties: &mut Properties,
        timestamp: DateTime<Utc>,
    ) -> Option<Uuid> {
        if name == event::GROUP_IDENTIFY {
            // Group updates never touch persons, and (unlike PostHog) a
            // `$groupidentify` sent under a throwaway distinct id creates no person.
            strip_person_updates(properties);
            return Some(self.attributed_person(distinct_id.as_str()));
        }
        let updates_person = !EVENTS_WITHOUT_PERSON_UPDATES.contains(&name);
        if updates_person {
            add_initial_and_campaign_properties(properties);
        }
        match name {
            event::IDENTIFY => {
                let anon = DistinctId::reference(properties.get(property::ANON_DISTINCT_ID));
                if let Some(anon) = anon {
                    self.merge(uuid, distinct_id, &anon, false, timestamp);
                }
            }
            event::CREATE_ALIAS | event::MERGE_DANGEROUSLY => {
                if let Some(alias) = DistinctId::reference(properties.get("alias")) {
                    let dangerously = name == event::MERGE_DANGEROUSLY;
                    self.merge(uuid, distinct_id, &alias, dangerously, timestamp);
                }
            }
            _ => {}
        }
        let person_id = self.person_for(distinct_id.as_str(), uuid, timestamp);
        if updates_person {
            self.update_person_properties(
                person_id,
                uuid,
                &PropertyUpdates::from_event(properties),
            );
        }
        Some(person_id)
    }

    fn existing_person(&self, distinct_id: &str) -> Option<&Person> {
        let id = self.state.person_of.get(distinct_id)?;
        self.state.persons.get(id).map(Arc::as_ref)
    }

    /// The person of `distinct_id`, created if it has none.
    fn person_for(
        &mut self,
        distinct_id: &str,
        event_uuid: Uuid,
        timestamp: DateTime<Utc>,
    ) -> Uuid {
        if let Some(id) = self.state.person_of.get(distinct_id) {
            return *id;
        }
        self.create_person(vec![distinct_id.to_string()], false, event_uuid, timestamp)
    }

    fn create_person(
        &mut self,
        distinct_ids: Vec<String>,
        is_identified: bool,
        event_uuid: Uuid,
        timestamp: DateTime<Utc>,
    ) -> Uuid {
        let mut id = Person::uuid_for(self.project, &distinct_ids[0]);
        if self.state.persons.contains_key(&id) {
            id = Uuid::now_v7();
        }
        let mut properties = Properties::new();
        properties.insert(
            property::CREATOR_EVENT_UUID.into(),
            Value::String(event_uuid.to_string()),
        );
        // Only ids no stored or earlier person of the round has get a new
        // person (they are not in the working set's `person_of`).
        self.pending.commit.new_persons.push((self.project, id));
        for distinct_id in &distinct_ids {
            let key = (self.project, distinct_id.clone());
            self.pending.commit.new_distinct_ids.push(key);
            self.assign_distinct_id(distinct_id, id);
        }
        let person = Person {
            project_id: self.project,
            id,
            properties,
            is_identified,
            created_at: timestamp,
            version: 0,
            distinct_ids,
        };
        self.state.persons.insert(id, Arc::new(person));
        self.pending.dirty_persons.insert((self.project, id));
        id
    }

    fn assign_distinct_id(&mut self, distinct_id: &str, person: Uuid) {
        self.state.person_of.insert(distinct_id.to_string(), person);
        self.pending
            .distinct_ids
            .insert((self.project, distinct_id.to_string()), person);
    }

    fn mark_dirty(&mut self, id: Uuid) {
        self.pending.dirty_persons.insert((self.project, id));
    }

    fn update_person_properties(&mut self, id: Uuid, event_uuid: Uuid, updates: &PropertyUpdates) {
        if updates.is_empty() {
            return;
        }
        let person = self
            .state
            .persons
            .get_mut(&id)
            .map(Arc::make_mut)
            .expect("prepare reads the person of every event that may change it");
        if !updates.changes(&person.properties) {
            return;
        }
        let mut properties = person.properties.clone();
        updates.apply(&mut properties);
        if let Some(size) = properties_cap::oversize(&properties) {
            let details = json!({"event_uuid": event_uuid, "person_id": id, "size": size,
                "limit": MAX_PROPERTIES_BYTES});
            self.warn(WarningKind::PersonPropertiesSizeViolation, details);
            return;
        }
        person.properties = properties;
        person.version += 1;
        self.mark_dirty(id);
    }

    fn set_identified(&mut self, id: Uuid) {
        if let Some(person) = self.state.persons.get_mut(&id).map(Arc::make_mut) {
            if !person.is_identified {
                person.is_identified = true;
                person.version += 1;
                self.mark_dirty(id);
            }
        }
    }

    /// PostHog's merge: the event's distinct id is the target, whose person
    /// survives; the source's distinct ids join it.
    fn merge(
        &mut self,
        event_uuid: Uuid,
        target: &DistinctId,
        source: &DistinctId,
        dangerously: bool,
        timestamp: DateTime<Utc>,
    ) {
        if target.is_illegal() || source.is_illegal() {
            let details = json!({"event_uuid": event_uuid, "source": source.as_str(),
                "target": target.as_str()});
            self.warn(WarningKind::CannotMergeWithIllegalDistinctId, details);
            return;
        }
        let (target, source) = (target.as_str(), source.as_str());
        if target == source {
            return;
        }
        let target_person = self.state.person_of.get(target).copied();
        let source_person = self.state.person_of.get(source).copied();
        match (target_person, source_person) {
            (None, None) => {
                let person = self.create_person(
                    vec![target.to_string(), source.to_string()],
                    true,
                    event_uuid,
                    timestamp,
                );
                self.repoint_personless(target, person);
                self.repoint_personless(source, person);
            }
            (None, Some(person)) => {
                self.add_distinct_id(person, target);
                self.repoint_personless(target, person);
                self.set_identified(person);
            }
            (Some(person), None) => {
                self.add_distinct_id(person, source);
                self.repoint_personless(source, person);
                self.set_identified(person);
            }
            (Some(target_id), Some(source_id)) if target_id == source_id => {
                self.set_identified(target_id)
            }
            (Some(target_id), Some(source_id)) => {
                let source_identified = self.state.persons[&source_id].is_identified;
                if source_identified && !dangerously {
                    let details =
                        json!({"event_uuid": event_uuid, "source": source, "target": target});
                    self.warn(WarningKind::CannotMergeAlreadyIdentified, details);
                } else {
                    self.merge_persons(target_id, source_id);
                }
                self.set_identified(target_id);
            }
        }
    }

    /// `distinct_id` had no person and now belongs to `person`: the events
    /// it sent personless carry the id [`Run::attributed_person`] gave them,
    /// so an override re-points them to `person`, as PostHog does, and
    /// insights and the API count them as `person` (see
    /// `cairn_store::identity`).
    fn repoint_personless(&mut self, distinct_id: &str, person: Uuid) {
        let attributed = Person::uuid_for(self.project, distinct_id);
        if attributed != person {
            self.pending
                .person_overrides
                .push((self.project, attributed, person));
        }
    }

    fn add_distinct_id(&mut self, person: Uuid, distinct_id: &str) {
        self.assign_distinct_id(distinct_id, person);
        if let Some(person) = self.state.persons.get_mut(&person).map(Arc::make_mut) {
            person.distinct_ids.push(distinct_id.to_string());
        }
        self.mark_dirty(person);
    }

    /// Moves everything of `source` into `target`; target properties win.
    fn merge_persons(&mut self, target: Uuid, source: Uuid) {
        let Some(source) = self.state.persons.remove(&source).map(Arc::unwrap_or_clone) else {
            return;
        };
        for distinct_id in &source.distinct_ids {
            self.assign_distinct_id(distinct_id, target);
        }
        let person = self
            .state
            .persons
            .get_mut(&target)
            .map(Arc::make_mut)
            .expect("target person exists");
        let mut properties = source.properties;
        properties.extend(std::mem::take(&mut person.properties));
        person.properties = properties;
        person.created_at = person.created_at.min(source.created_at);
        person.version = person.version.max(source.version) + 1;
        person.is_identified = true;
        person.distinct_ids.extend(source.distinct_ids);
        self.pending
            .dirty_persons
            .remove(&(self.project, source.id));
        self.pending
            .deleted_persons
            .insert((self.project, source.id));
        self.pending
            .person_overrides
            .push((self.project, source.id, target));
        self.mark_dirty(target);
    }

    /// The index of a group type, created at first sight while under the limit.
    fn group_type_index(&mut self, group_type: &str, event_uuid: Uuid) -> Option<GroupTypeIndex> {
        if let Some(existing) = self
            .state
            .group_types
            .iter()
            .find(|t| t.group_type == group_type)
        {
            return Some(existing.group_type_index);
        }
        if !is_valid_group_type(group_type) {
            let details = json!({"event_uuid": event_uuid, "group_type": group_type,
                "reason": "a group type name must be 1 to 400 characters"});
            self.warn(WarningKind::InvalidGroupKey, details);
            return None;
        }
        let count = self.state.group_types.len();
        if count >= self.group_type_limit {
            let details = json!({"event_uuid": event_uuid, "group_type": group_type, "limit": self.group_type_limit});
            self.warn_once(WarningKind::GroupTypeLimitReached, group_type, details);
            return None;
        }
        let created = GroupType {
            group_type: group_type.to_string(),
            group_type_index: count as GroupTypeIndex,
            name_singular: None,
            name_plural: None,
            created_at: self.now,
        };
        self.pending
            .commit
            .group_types
            .push((self.project, created.clone()));
        self.state.group_types.push(created);
        Some(count as GroupTypeIndex)
    }

    /// `$groupidentify`: shallow-merges `$group_set` into the group.
    fn group_identify(
        &mut self,
        event_uuid: Uuid,
        properties: &Properties,
        timestamp: DateTime<Utc>,
    ) {
        let Some(group_type) = properties.get(property::GROUP_TYPE).and_then(Value::as_str) else {
            let details = json!({"event_uuid": event_uuid, "reason": "$groupidentify without a $group_type string"});
            self.warn(WarningKind::InvalidGroupKey, details);
            return;
        };
        let raw_key = properties.get(property::GROUP_KEY).unwrap_or(&Value::Null);
        let key = match group_key(raw_key) {
            // PostHog skips a falsy key: the number 0 too.
            Ok(Some(key)) if key.as_str() != "0" || !raw_key.is_number() => key.into_string(),
            Ok(_) | Err(WarningKind::InvalidGroupKey) => {
                let details = json!({"event_uuid": event_uuid, "group_type": group_type, "group_key": raw_key});
                self.warn(WarningKind::InvalidGroupKey, details);
                return;
            }
            Err(kind) => {
                self.warn(
                    kind,
                    json!({"event_uuid": event_uuid, "group_type": group_type}),
                );
                return;
            }
        };
        let set = match properties.get(property::GROUP_SET) {
            Some(Value::Object(set)) => set.clone(),
            None | Some(Value::Null) => Properties::new(),
            Some(other) => {
                let details = json!({"event_uuid": event_uuid, "group_set": other});
                self.warn(WarningKind::InvalidGroupSet, details);
                Properties::new()
            }
        };
        let Some(index) = self.group_type_index(group_type, event_uuid) else {
            return;
        };
        self.upsert_group(index, key, set, timestamp, event_uuid);
    }

    fn upsert_group(
        &mut self,
        index: GroupTypeIndex,
        key: String,
        set: Properties,
        timestamp: DateTime<Utc>,
        event_uuid: Uuid,
    ) {
        let dirty_key = (self.project, index, key.clone());
        match self
            .state
            .groups
            .get_mut(&(index, key.clone()))
            .map(Arc::make_mut)
        {
            Some(group) => {
                let mut changed = timestamp < group.created_at;
                let changes_properties = set
                    .iter()
                    .any(|(name, value)| group.properties.get(name) != Some(value));
                if changes_properties {
                    let mut properties = group.properties.clone();
                    properties.extend(set);
                    if let Some(size) = properties_cap::oversize(&properties) {
                        self.warn_group_too_large(event_uuid, index, &key, size);
                        return;
                    }
                    group.properties = properties;
                    changed = true;
                }
                if changed {
                    group.created_at = group.created_at.min(timestamp);
                    group.version += 1;
                    self.pending.dirty_groups.insert(dirty_key);
                }
            }
            None => {
                // `prepare` reads the record of a stored group an event may change.
                assert!(
                    !self
                        .state
                        .groups_created
                        .contains_key(&(index, key.clone())),
                    "group {key:?} is stored, but its record was not read"
                );
                if let Some(size) = properties_cap::oversize(&set) {
                    self.warn_group_too_large(event_uuid, index, &key, size);
                    return;
                }
                let group = Group {
                    project_id: self.project,
                    group_type_index: index,
                    group_key: key.clone(),
                    properties: set,
                    created_at: timestamp,
                    version: 1,
                };
                self.state.groups.insert((index, key), Arc::new(group));
                self.pending.dirty_groups.insert(dirty_key);
            }
        }
    }

    /// A group update refused for the size it would give the group.
    fn warn_group_too_large(
        &mut self,
        event_uuid: Uuid,
        index: GroupTypeIndex,
        key: &str,
        size: usize,
    ) {
        let details = json!({"event_uuid": event_uuid, "group_type_index": index,
            "group_key": key, "size": size, "limit": MAX_PROPERTIES_BYTES});
        self.warn(WarningKind::GroupPropertiesSizeViolation, details);
    }

    /// The event's group of each type from `$groups`; every group referenced
    /// exists afterwards, even without properties. As PostHog does, each
    /// attached group is also written into the event's properties as
    /// `$group_<index>: <key as sent>`, which the events API and property
    /// filters then see.
    fn event_groups(
        &mut self,
        event_uuid: Uuid,
        properties: &mut Properties,
        timestamp: DateTime<Utc>,
    ) -> Vec<Option<String>> {
        let mut columns: Vec<Option<String>> = Vec::new();
        let mut stamped: Vec<(GroupTypeIndex, Value)> = Vec::new();
        let groups = match properties.get(property::GROUPS) {
            None | Some(Value::Null) => return columns,
            Some(Value::Object(groups)) => groups,
            Some(other) => {
                self.warn(
                    WarningKind::InvalidGroups,
                    json!({"event_uuid": event_uuid, "groups": other}),
                );
                return columns;
            }
        };
        for (group_type, value) in groups {
            let key = match group_key(value) {
                Ok(Some(key)) => key.into_string(),
                Ok(None) => continue,
                Err(kind) => {
                    let shown = match value {
                        Value::String(s) => Value::String(s.chars().take(100).collect()),
                        other => other.clone(),
                    };
                    self.warn(kind, json!({"event_uuid": event_uuid, "group_type": group_type, "group_key": shown}));
                    continue;
                }
            };
            let Some(index) = self.group_type_index(group_type, event_uuid) else {
                continue;
            };
            let lookup = (index, key);
            let known_since = match self.state.groups.get(&lookup) {
                Some(group) => Some(group.created_at),
                None => self.state.groups_created.get(&lookup).copied(),
            };
            let key = lookup.1;
            if known_since.is_none_or(|created_at| created_at > timestamp) {
                self.upsert_group(index, key.clone(), Properties::new(), timestamp, event_uuid);
            }
            let slot = index as usize;
            if columns.len() <= slot {
                columns.resize(slot + 1, None);
            }
            columns[slot] = Some(key);
            stamped.push((index, value.clone()));
        }
        for (index, value) in stamped {
            properties.insert(format!("$group_{index}"), value);
        }
        columns
    }

    fn warn(&mut self, kind: WarningKind, details: Value) {
        self.pending.commit.warnings.push(IngestionWarning {
            project_id: self.project,
            kind,
            details,
            timestamp: self.now,
        });
    }

    /// Records a warning about `subject` unless the same one was recorded
    /// within the last hour: a misconfigured client repeats it on every event.
    fn warn_once(&mut self, kind: WarningKind, subject: &str, details: Value) {
        let key = (self.project, kind, subject.to_string());
        if let Some(last) = self.last_warned.get(&key) {
            if self.now - *last < WARNING_DEBOUNCE {
                return;
            }
        }
        self.last_warned.insert(key, self.now);
        self.warn(kind, details);
    }
}

#[cfg(test)]
mod tests;
