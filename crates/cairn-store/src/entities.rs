//! The [`EntityReader`]: what ingestion wrote, as the API and the web UI
//! browse it — persons, groups, events, property names and values, and
//! ingestion warnings. Every read sees every commit acknowledged before it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use cairn_core::{Group, GroupTypeIndex, IngestionWarning, Person, ProjectId, Properties};

use crate::Result;

/// Which persons to list, newest first unless `order` says otherwise.
#[derive(Debug, Default)]
pub struct PersonFilter<'a> {
    /// Matches part of a distinct id, the `email` or `name` property, or the uuid.
    pub search: Option<&'a str>,
    pub distinct_id: Option<&'a str>,
    pub id: Option<Uuid>,
    /// SQL in the store's dialect that the person, as `p`, must pass (a
    /// property filter written by the query crate).
    pub condition: Option<&'a str>,
    pub order: &'a [(ListKey<'a>, bool)],
    pub offset: usize,
    pub limit: usize,
}

/// What a list is ordered by (`true`: descending), most significant first;
/// ties are broken by the person's id or the group's key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ListKey<'a> {
    CreatedAt,
    /// The person's id or the group's key.
    Id,
    /// What lists call the actor (see `Person::display_name`,
    /// `Group::display_name`), ignoring case.
    DisplayName,
    /// A property's text, ignoring case; missing last.
    Property(&'a str),
}

/// Which groups to list, newest first.
#[derive(Debug, Default)]
pub struct GroupFilter<'a> {
    pub group_type_index: GroupTypeIndex,
    /// Matches any property text, or the key.
    pub search: Option<&'a str>,
    /// Matches part of the key.
    pub key_contains: Option<&'a str>,
    /// Matches part of the `name` property or of the key (PostHog's
    /// `GroupsQuery` search).
    pub name_or_key_contains: Option<&'a str>,
    /// SQL in the store's dialect that the group, as `g<index>`, must pass.
    pub condition: Option<&'a str>,
    pub order: &'a [(ListKey<'a>, bool)],
    pub offset: usize,
    pub limit: usize,
}

/// An event as the events API shows it, with its current person (see
/// [`crate::identity`]).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub uuid: Uuid,
    pub event: String,
    pub distinct_id: String,
    pub person_id: Option<Uuid>,
    pub timestamp: DateTime<Utc>,
    pub properties: Properties,
    pub groups: Vec<Option<String>>,
}

/// Which events to list, newest first.
#[derive(Debug, Default)]
pub struct EventFilter<'a> {
    pub event: Option<&'a str>,
    pub distinct_id: Option<&'a str>,
    pub person_id: Option<Uuid>,
    pub group: Option<(GroupTypeIndex, &'a str)>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    /// Continue after this `(timestamp, uuid)`: the last event of the previous page.
    pub after_cursor: Option<(DateTime<Utc>, Uuid)>,
    pub limit: usize,
}

/// Blocking calls: run them off the async workers.
pub trait EntityReader: Send + Sync {
    /// Newest first.
    fn list_persons(&self, project: ProjectId, filter: &PersonFilter<'_>) -> Result<Vec<Person>>;
    /// Newest first.
    fn list_groups(&self, project: ProjectId, filter: &GroupFilter<'_>) -> Result<Vec<Group>>;
    fn find_group(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
    ) -> Result<Option<Group>>;
    /// Property names used by the groups of each type, most used first.
    fn group_property_definitions(
        &self,
        project: ProjectId,
    ) -> Result<BTreeMap<GroupTypeIndex, Vec<(String, i64)>>>;
    /// The most common values of one group property, at most 20.
    fn group_property_values(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
        value_contains: Option<&str>,
    ) -> Result<Vec<(Value, i64)>>;
    /// Newest first, each with its current person (see [`crate::identity`]).
    fn list_events(&self, project: ProjectId, filter: &EventFilter<'_>)
        -> Result<Vec<StoredEvent>>;
    /// The newest ingestion warnings.
    fn list_warnings(&self, project: ProjectId, limit: usize) -> Result<Vec<IngestionWarning>>;
    /// The project's event names, most frequent in the last 30 days first.
    fn event_names(&self, project: ProjectId, limit: usize) -> Result<Vec<String>>;
}
