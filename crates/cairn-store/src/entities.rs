//! The [`EntityReader`]: what ingestion wrote, as the API and the web UI
//! browse it — persons, groups, events, property names and values, and
//! ingestion warnings. Every read sees every commit acknowledged before it.

use std::collections::BTreeMap;

use serde_json::Value;

use cairn_core::{Group, GroupTypeIndex, IngestionWarning, Person, ProjectId};

use crate::read::{EventFilter, GroupFilter, PersonFilter, StoredEvent};
use crate::Result;

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
