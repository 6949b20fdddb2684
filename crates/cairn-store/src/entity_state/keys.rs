//! How entities are keyed in the key-value store: the project first (big
//! endian), so one project's entries sit together, then the entity's own
//! key. Every key of a keyspace has the same layout, so none is a prefix of
//! another of a different entity.

use cairn_core::{GroupTypeIndex, ProjectId};
use uuid::Uuid;

pub(super) fn person(project: ProjectId, id: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&project.0.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

pub(super) fn distinct_id(project: ProjectId, distinct_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + distinct_id.len());
    key.extend_from_slice(&project.0.to_be_bytes());
    key.extend_from_slice(distinct_id.as_bytes());
    key
}

pub(super) fn group(project: ProjectId, index: GroupTypeIndex, group_key: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + group_key.len());
    key.extend_from_slice(&project.0.to_be_bytes());
    key.push(index);
    key.extend_from_slice(group_key.as_bytes());
    key
}

/// Meta keys: the journal record applied last, and each project's group types.
pub(super) const APPLIED: &[u8] = b"applied";
/// Present once the state holds everything (after an import from an older
/// data directory, or from the first start).
pub(super) const COMPLETE: &[u8] = b"complete";
const GROUP_TYPES: &[u8] = b"group_types/";

pub(super) fn group_types(project: ProjectId) -> Vec<u8> {
    let mut key = GROUP_TYPES.to_vec();
    key.extend_from_slice(&project.0.to_be_bytes());
    key
}

/// The project of a [`group_types`] key.
pub(super) fn group_types_project(key: &[u8]) -> Option<ProjectId> {
    let id = key.strip_prefix(GROUP_TYPES)?;
    Some(ProjectId(i64::from_be_bytes(id.try_into().ok()?)))
}

pub(super) const GROUP_TYPES_PREFIX: &[u8] = GROUP_TYPES;
