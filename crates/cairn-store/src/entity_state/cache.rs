//! The bounded cache of decoded entities in front of the key-value store,
//! shared by ingestion and `/flags`. Entries are weighed by an estimate of
//! the memory they hold, so the bound is in bytes, not in entries.

use std::sync::Arc;

use cairn_core::{Group, GroupTypeIndex, Person, ProjectId};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Person(ProjectId, Uuid),
    DistinctId(ProjectId, Box<str>),
    Group(ProjectId, GroupTypeIndex, Box<str>),
}

#[derive(Debug, Clone)]
pub(super) enum Entry {
    Person(Arc<Person>),
    /// The person a distinct id belongs to.
    PersonId(Uuid),
    Group(Arc<Group>),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Weigher;

/// What a hash-map slot, an `Arc` and a key cost besides their text.
const ENTRY_OVERHEAD: u64 = 96;

impl quick_cache::Weighter<Key, Entry> for Weigher {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let key = match key {
            Key::Person(..) => 0,
            Key::DistinctId(_, id) => id.len(),
            Key::Group(_, _, group_key) => group_key.len(),
        };
        let entry = match entry {
            Entry::Person(person) => {
                properties_weight(&person.properties)
                    + person
                        .distinct_ids
                        .iter()
                        .map(|id| id.len() + 24)
                        .sum::<usize>()
                    + 96
            }
            Entry::PersonId(_) => 16,
            Entry::Group(group) => {
                properties_weight(&group.properties) + group.group_key.len() + 64
            }
        };
        ENTRY_OVERHEAD + (key + entry) as u64
    }
}

pub(super) type Cache = quick_cache::sync::Cache<Key, Entry, Weigher>;

pub(super) fn new(bytes: u64) -> Cache {
    // quick_cache sizes its tables from an item estimate: ~1 KiB each.
    let items = (bytes / 1024).max(64) as usize;
    Cache::with_weighter(items, bytes.max(1), Weigher)
}

fn properties_weight(properties: &serde_json::Map<String, Value>) -> usize {
    properties
        .iter()
        .map(|(key, value)| key.len() + 32 + value_weight(value))
        .sum()
}

/// A JSON value's heap size, roughly: what `serde_json` allocates for it.
fn value_weight(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(|v| 32 + value_weight(v)).sum(),
        Value::Object(map) => properties_weight(map),
    }
}
