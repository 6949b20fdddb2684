//! The bounded cache in front of the key-value store, shared by ingestion
//! and `/flags`, bounded by the bytes its entries really take. Persons are
//! cached as stored (their JSON) and decoded on each hit: decoded, one
//! takes about three times the bytes, so the bound would hold a third as
//! many, and most events never need a person's record. Groups are cached
//! decoded for `$groupidentify` and `/flags`, and as their creation time
//! alone for the events that only name them (a company is named by every
//! event of its members, and that entry takes a sixth of the bytes).

use std::sync::Arc;

use cairn_core::{Group, GroupTypeIndex, ProjectId};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Person(ProjectId, Uuid),
    DistinctId(ProjectId, Box<str>),
    Group(ProjectId, GroupTypeIndex, Box<str>),
    /// When a group was created, for the events that only name it.
    GroupCreated(ProjectId, GroupTypeIndex, Box<str>),
}

#[derive(Debug, Clone)]
pub(super) enum Entry {
    /// A person's stored JSON.
    Encoded(Arc<[u8]>),
    Group(Arc<Group>),
    /// The person a distinct id belongs to.
    PersonId(Uuid),
    /// A group's `created_at`.
    Created(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Weigher;

/// What a cache slot (key, entry, links and hash index) costs besides the
/// heap blocks of its key and entry.
const SLOT_BYTES: u64 = 96;

/// A heap block of `len` bytes as the allocator rounds it: to 8 bytes for
/// small blocks, to size classes an eighth apart on average above.
fn heap_block(len: usize) -> u64 {
    match len {
        0 => 0,
        1..=64 => len.next_multiple_of(8) as u64,
        len => (len + len / 8) as u64,
    }
}

/// The heap a decoded group holds: the `Arc`'s block, its key and its
/// properties.
fn group_bytes(group: &Group) -> u64 {
    heap_block(16 + std::mem::size_of::<Group>())
        + heap_block(group.group_key.len())
        + map_bytes(&group.properties)
}

/// A JSON object's heap: its entries (grown by doubling), their hash index,
/// and each key and value.
fn map_bytes(map: &Map<String, Value>) -> u64 {
    if map.is_empty() {
        return 0;
    }
    const ENTRY: usize = 8 + std::mem::size_of::<String>() + std::mem::size_of::<Value>();
    // The hash index has a power of two of slots, at most 7/8 used (all
    // but one below 8); the entries' capacity follows the index's.
    let slots = match map.len() {
        0..=3 => 4,
        4..=7 => 8,
        len => (len * 8).div_ceil(7).next_power_of_two(),
    };
    let entries = if slots < 8 { slots - 1 } else { slots / 8 * 7 };
    let own = heap_block(entries * ENTRY) + heap_block(slots * 9 + 16);
    own + map
        .iter()
        .map(|(key, value)| heap_block(key.len()) + value_bytes(value))
        .sum::<u64>()
}

fn value_bytes(value: &Value) -> u64 {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => heap_block(s.len()),
        Value::Array(items) => {
            heap_block(items.capacity() * std::mem::size_of::<Value>())
                + items.iter().map(value_bytes).sum::<u64>()
        }
        Value::Object(map) => map_bytes(map),
    }
}

impl quick_cache::Weighter<Key, Entry> for Weigher {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let key = match key {
            Key::Person(..) => 0,
            Key::DistinctId(_, id) => heap_block(id.len()),
            Key::Group(_, _, group_key) | Key::GroupCreated(_, _, group_key) => {
                heap_block(group_key.len())
            }
        };
        let entry = match entry {
            // An `Arc`'s two counters sit before the bytes.
            Entry::Encoded(bytes) => heap_block(16 + bytes.len()),
            Entry::Group(group) => group_bytes(group),
            Entry::PersonId(_) | Entry::Created(_) => 0,
        };
        SLOT_BYTES + key + entry
    }
}

pub(super) type Cache = quick_cache::sync::Cache<Key, Entry, Weigher>;

pub(super) fn new(bytes: u64) -> Cache {
    // quick_cache sizes its tables from an item estimate: ~256 bytes each.
    let items = (bytes / 256).max(64) as usize;
    Cache::with_weighter(items, bytes.max(1), Weigher)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound is only as good as the weights: a decoded group weighs
    /// what decoding it leaves allocated (allocator rounding aside), for a
    /// small company and a large one with nested and listed properties.
    #[test]
    fn a_decoded_group_weighs_what_it_allocates() {
        let mut props = vec![
            r#""name":"Acme Corporation""#.to_string(),
            r#""plan":"enterprise""#.into(),
            r#""employees":250"#.into(),
        ];
        let small = props.join(",");
        for i in 0..40 {
            props.push(format!(
                r#""custom_field_{i}":"value number {i} of the company""#
            ));
        }
        props.push(r#""address":{"street":"1 Main St","city":"Springfield","zip":"12345"}"#.into());
        props.push(r#""tags":["b2b","saas","eu","priority"]"#.into());
        let large = props.join(",");
        for properties in [small, large] {
            let json = format!(
                r#"{{"project_id":1,"group_type_index":0,"group_key":"company-1234",
                "properties":{{{properties}}},"created_at":"2026-11-30T10:00:00Z","version":3}}"#
            );
            let mut group = None;
            let allocated = allocation_counter::measure(|| {
                group = Some(Arc::new(serde_json::from_str::<Group>(&json).unwrap()));
            })
            .bytes_current;
            let weighed = group_bytes(&group.unwrap());
            let ratio = weighed as f64 / allocated as f64;
            assert!(
                (1.0..1.25).contains(&ratio),
                "weighed {weighed} bytes for {allocated} allocated"
            );
        }
    }
}
