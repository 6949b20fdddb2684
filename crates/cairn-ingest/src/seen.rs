//! Which event uuids a project already has, in memory that grows by a few
//! bytes per event instead of an exact set's ~30.
//!
//! A Bloom filter answers "certainly new" for almost every new event. The
//! uuids of the last [`RECENT`] events are kept exactly, so a retried batch
//! (the usual duplicate) is recognised at once. What remains, an older uuid
//! or a false positive of the filter, is [`Seen::Unsure`]: the caller asks
//! the store.

use std::collections::VecDeque;

use fastbloom::BloomFilter;
use uuid::Uuid;

mod file;
pub use file::{load, save, SAVED_FILE};

/// Uuids remembered exactly, per project.
const RECENT: usize = 1 << 17;
/// Items in the first filter; each further filter holds twice as many.
const FIRST_FILTER_ITEMS: usize = 1 << 16;
/// False-positive rate of each filter: with ten filters (~67M events) one new
/// event in 100,000 needs a store lookup.
const FALSE_POSITIVE_RATE: f64 = 1e-6;

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Yes,
    No,
    Unsure,
}

/// Each project's uuids.
pub type ByProject = std::collections::HashMap<cairn_core::ProjectId, SeenUuids>;

#[derive(Debug, Default)]
pub struct SeenUuids {
    /// Full filters first; only the last one takes new items.
    filters: Vec<BloomFilter>,
    /// Items in the last filter.
    in_last: usize,
    recent: foldhash::HashSet<Uuid>,
    recent_order: VecDeque<Uuid>,
}

impl SeenUuids {
    pub fn check(&self, uuid: &Uuid) -> Seen {
        if self.recent.contains(uuid) {
            return Seen::Yes;
        }
        let hash = hash(uuid);
        if self.filters.iter().rev().any(|f| f.contains_hash(hash)) {
            Seen::Unsure
        } else {
            Seen::No
        }
    }

    /// Whether `uuid` is among the recent ones kept exactly.
    pub fn is_recent(&self, uuid: &Uuid) -> bool {
        self.recent.contains(uuid)
    }

    /// Records a uuid just accepted.
    pub fn insert(&mut self, uuid: Uuid) {
        self.remember(&uuid);
        if self.recent.insert(uuid) {
            self.recent_order.push_back(uuid);
        }
    }

    /// Records a uuid read from the store.
    pub fn remember(&mut self, uuid: &Uuid) {
        let items_of = |filter: usize| FIRST_FILTER_ITEMS << filter;
        let count = self.filters.len();
        if count == 0 || self.in_last == items_of(count - 1) {
            self.filters.push(
                BloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(items_of(count)),
            );
            self.in_last = 0;
        }
        if let Some(last) = self.filters.last_mut() {
            last.insert_hash(hash(uuid));
            self.in_last += 1;
        }
    }

    /// Forgets the oldest exact uuids beyond [`RECENT`]. Called once the
    /// uuids inserted so far are on their way to the store, so that a later
    /// [`Seen::Unsure`] can be settled there.
    pub fn trim(&mut self) {
        while self.recent_order.len() > RECENT {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }
}

/// A uuid's hash, once for all the filters (each filter's own hasher would
/// hash it again, with SipHash). Fixed, unlike a seeded hasher: filters
/// saved by one run are read by the next. Both halves go through
/// splitmix64's finaliser.
fn hash(uuid: &Uuid) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let (high, low) = uuid.as_u64_pair();
    mix(mix(high.wrapping_add(0x9E37_79B9_7F4A_7C15)) ^ low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_recent_and_stored_uuids_are_told_apart() {
        let mut seen = SeenUuids::default();
        let stored = Uuid::now_v7();
        seen.remember(&stored);
        let accepted = Uuid::now_v7();
        seen.insert(accepted);
        assert_eq!(seen.check(&accepted), Seen::Yes);
        assert_eq!(seen.check(&stored), Seen::Unsure);
        assert_eq!(seen.check(&Uuid::now_v7()), Seen::No);
    }

    #[test]
    fn filters_grow_and_keep_every_uuid() {
        let mut seen = SeenUuids::default();
        let uuids: Vec<Uuid> = (0..3 * FIRST_FILTER_ITEMS as u128 + 7)
            .map(Uuid::from_u128)
            .collect();
        uuids.iter().for_each(|u| seen.remember(u));
        assert_eq!(seen.filters.len(), 3);
        assert!(uuids.iter().all(|u| seen.check(u) == Seen::Unsure));
        let fresh = (1u128 << 100..(1u128 << 100) + 100_000).map(Uuid::from_u128);
        let false_positives = fresh.filter(|u| seen.check(u) != Seen::No).count();
        assert!(false_positives <= 2, "{false_positives} false positives");
    }

    #[test]
    fn only_the_newest_uuids_stay_exact() {
        let mut seen = SeenUuids::default();
        let first = Uuid::from_u128(0);
        seen.insert(first);
        (1..=RECENT as u128).for_each(|i| seen.insert(Uuid::from_u128(i)));
        assert_eq!(
            seen.check(&first),
            Seen::Yes,
            "nothing is trimmed before the commit"
        );
        seen.trim();
        assert_eq!(seen.check(&first), Seen::Unsure);
        assert_eq!(seen.check(&Uuid::from_u128(1)), Seen::Yes);
    }
}
