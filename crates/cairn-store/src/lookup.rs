//! What `/flags` reads of persons and groups: their committed properties,
//! looked up by the names a request gives them, once per request. Served
//! today by ingestion's in-memory directory of what it committed; any store
//! that answers these point reads fast enough can stand behind it.

use cairn_core::{GroupTypeIndex, ProjectId, Properties};

use crate::Result;

pub trait PersonLookup: Send + Sync {
    /// The properties of the person `distinct_id` belongs to, if any.
    fn person_properties(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<Option<Properties>>;

    /// The properties of the group `key` of the type at `index`, if any.
    fn group_properties(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
    ) -> Result<Option<Properties>>;

    /// `(index, name)` of the project's group types, by index.
    fn group_types(&self, project: ProjectId) -> Result<Vec<(GroupTypeIndex, String)>>;
}
