//! Persons, distinct ids, groups and group types as ingestion leaves them:
//! the state ingestion processes against and `/flags` reads, in an embedded
//! key-value store (fjall, a pure-Rust LSM tree) with a bounded cache of
//! decoded entries in front. Memory no longer grows with the number of
//! persons, and nothing is replayed at start.
//!
//! The journal stays the source of durability: the journaled writer applies
//! each commit here right after journaling it (recording the commit's
//! sequence number in the same batch), catches this state up from the
//! journal after a crash, and deletes journal segments only once this state
//! is on disk past them ([`EntityState::persist`]).

mod cache;
mod keys;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cairn_core::{Group, GroupType, GroupTypeIndex, Person, ProjectId, Properties};
use chrono::{DateTime, Utc};
use fjall::config::PinningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use uuid::Uuid;

use crate::{Commit, PersonLookup, Result, SnapshotVisitor, StoreError};
use cache::{Cache, Entry, Key};

/// Where the state lives, inside the data directory.
pub const ENTITY_DIR: &str = "entities";
/// `--entity-cache-size`'s default.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// The share of the cache budget given to the store's own block cache
/// (compressed blocks, for entries not in the decoded cache).
const BLOCK_CACHE_SHARE: u64 = 4;
/// Write buffer of each keyspace: four of them are in memory at once.
const MEMTABLE_BYTES: u64 = 16 << 20;
/// The store's own journal is replayed at start: kept at fjall's least,
/// which bounds that replay (and flushes write buffers sooner).
const JOURNAL_BYTES: u64 = 64 << 20;
/// Entries written per batch while importing.
const IMPORT_BATCH: usize = 20_000;

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// Cache and store figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntityStats {
    pub cache_bytes: u64,
    pub cache_capacity: u64,
    pub cache_entries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub disk_bytes: u64,
    /// The store's own block cache, in use.
    pub block_cache_bytes: u64,
    /// Writes held in memory until the store flushes them (its memtables).
    pub write_buffer_bytes: u64,
}

pub struct EntityState {
    db: Database,
    persons: Keyspace,
    distinct_ids: Keyspace,
    groups: Keyspace,
    meta: Keyspace,
    cache: Cache,
    group_types: RwLock<HashMap<ProjectId, Arc<Vec<GroupType>>>>,
    /// The journal record applied last.
    applied: AtomicU64,
    /// Odd while [`EntityState::apply`] changes entries: a reader that
    /// missed the cache does not cache what it read unless this stayed the
    /// same, even, number (otherwise it might cache a value just replaced).
    writing: AtomicU64,
}

impl std::fmt::Debug for EntityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityState")
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl EntityState {
    /// Opens (or creates) the state in `data_dir`; `cache_bytes` bounds the
    /// memory its caches hold.
    pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<Self> {
        Self::open_at(&data_dir.join(ENTITY_DIR), cache_bytes, false)
    }

    /// A state in a fresh directory, deleted with it (for tests).
    pub fn temporary(cache_bytes: u64) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("cairn-entities-{}", Uuid::new_v4()));
        Self::open_at(&path, cache_bytes, true)
    }

    fn open_at(path: &Path, cache_bytes: u64, temporary: bool) -> Result<Self> {
        let db = Database::builder(path)
            .cache_size((cache_bytes / BLOCK_CACHE_SHARE).max(1 << 20))
            .max_journaling_size(JOURNAL_BYTES)
            .temporary(temporary)
            .open()?;
        // Every keyspace is asked for keys it lacks (new persons, the
        // uuid a new person would take): all keep their Bloom filters. The
        // filters and indexes of every level stay in memory (about 3 bytes
        // a key): under random access each read would otherwise load them
        // again, and they are larger than the data block it is after.
        let keyspace = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .filter_block_pinning_policy(PinningPolicy::all(true))
                    .index_block_pinning_policy(PinningPolicy::all(true))
            })
        };
        let persons = keyspace("persons")?;
        let distinct_ids = keyspace("distinct_ids")?;
        let groups = keyspace("groups")?;
        let meta = keyspace("meta")?;
        let applied = match meta.get(keys::APPLIED)? {
            Some(bytes) => u64::from_le_bytes(<[u8; 8]>::try_from(&bytes[..]).map_err(|_| {
                StoreError::Corrupt("the entity state's applied sequence is not 8 bytes".into())
            })?),
            None => 0,
        };
        let mut group_types = HashMap::new();
        for entry in meta.prefix(keys::GROUP_TYPES_PREFIX) {
            let (key, value) = entry.into_inner()?;
            let project = keys::group_types_project(&key).ok_or_else(|| {
                StoreError::Corrupt("a group types key of the entity state is malformed".into())
            })?;
            let types: Vec<GroupType> = serde_json::from_slice(&value)?;
            group_types.insert(project, Arc::new(types));
        }
        let bytes = cache_bytes - cache_bytes / BLOCK_CACHE_SHARE;
        Ok(Self {
            db,
            persons,
            distinct_ids,
            groups,
            meta,
            cache: cache::new(bytes),
            group_types: RwLock::new(group_types),
            applied: AtomicU64::new(applied),
            writing: AtomicU64::new(0),
        })
    }

    /// The journal record applied last (0: none).
    pub fn applied_seq(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether the state holds every entity: false for a data directory
    /// made before it existed, until [`EntityState::import`] has run.
    pub fn is_complete(&self) -> Result<bool> {
        Ok(self.meta.contains_key(keys::COMPLETE)?)
    }

    /// The person `distinct_id` belongs to.
    pub fn person_id(&self, project: ProjectId, distinct_id: &str) -> Result<Option<Uuid>> {
        let key = Key::DistinctId(project, distinct_id.into());
        let person_id = |entry| match entry {
            Entry::PersonId(id) => Some(id),
            _ => None,
        };
        self.cached(key, person_id, || {
            let key = keys::distinct_id(project, distinct_id);
            let Some(bytes) = self.distinct_ids.get(key)? else {
                return Ok(None);
            };
            Ok(Some(Entry::PersonId(Uuid::from_slice(&bytes)?)))
        })
    }

    /// A person, decoded from the cache or else from the store.
    pub fn person(&self, project: ProjectId, id: Uuid) -> Result<Option<Arc<Person>>> {
        let encoded = |entry| match entry {
            Entry::Encoded(bytes) => Some(bytes),
            _ => None,
        };
        self.cached(Key::Person(project, id), encoded, || {
            let bytes = self.persons.get(keys::person(project, id))?;
            Ok(bytes.map(|bytes| Entry::Encoded(Arc::from(&bytes[..]))))
        })?
        .map(|bytes| Ok(Arc::new(serde_json::from_slice(&bytes)?)))
        .transpose()
    }

    pub fn group(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        group_key: &str,
    ) -> Result<Option<Arc<Group>>> {
        let key = Key::Group(project, index, group_key.into());
        let group = |entry| match entry {
            Entry::Group(group) => Some(group),
            _ => None,
        };
        self.cached(key, group, || {
            let Some(bytes) = self.groups.get(keys::group(project, index, group_key))? else {
                return Ok(None);
            };
            Ok(Some(Entry::Group(Arc::new(serde_json::from_slice(
                &bytes,
            )?))))
        })
    }

    /// When a group was created: all that an event naming it needs, unless
    /// the event is older. Cached apart from the group's record, in a sixth
    /// of the bytes.
    pub fn group_created_at(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        group_key: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        /// The one field read of a stored group.
        #[derive(serde::Deserialize)]
        struct Created {
            created_at: DateTime<Utc>,
        }
        let key = Key::GroupCreated(project, index, group_key.into());
        let created_at = |entry| match entry {
            Entry::Created(created_at) => Some(created_at),
            _ => None,
        };
        self.cached(key, created_at, || {
            let Some(bytes) = self.groups.get(keys::group(project, index, group_key))? else {
                return Ok(None);
            };
            let group: Created = serde_json::from_slice(&bytes)?;
            Ok(Some(Entry::Created(group.created_at)))
        })
    }

    /// What `pick` takes of `key`'s entry: from the cache, or else read from
    /// the store by `read` (and cached, see [`EntityState::read_through`]).
    fn cached<T>(
        &self,
        key: Key,
        pick: impl Fn(Entry) -> Option<T>,
        read: impl FnOnce() -> Result<Option<Entry>>,
    ) -> Result<Option<T>> {
        if let Some(found) = self.cache.get(&key).and_then(&pick) {
            return Ok(Some(found));
        }
        Ok(self.read_through(key, read)?.and_then(pick))
    }

    /// The project's group types, by index.
    pub fn project_group_types(&self, project: ProjectId) -> Arc<Vec<GroupType>> {
        self.group_types
            .read()
            .expect("group types lock")
            .get(&project)
            .cloned()
            .unwrap_or_default()
    }

    /// Reads a cache miss from the store and caches it, unless a write ran
    /// meanwhile (see `writing`).
    fn read_through(
        &self,
        key: Key,
        read: impl FnOnce() -> Result<Option<Entry>>,
    ) -> Result<Option<Entry>> {
        let before = self.writing.load(Ordering::Acquire);
        let entry = read()?;
        if let Some(entry) = &entry {
            if before.is_multiple_of(2) {
                self.cache.insert(key.clone(), entry.clone());
                if self.writing.load(Ordering::Acquire) != before {
                    self.cache.remove(&key);
                }
            }
        }
        Ok(entry)
    }

    /// Writes what `commit` (journal record `seq`) changed, in one batch
    /// that also records `seq`, and updates the cache. Not synced to disk:
    /// the journal holds the commit until [`EntityState::persist`] has run.
    pub fn apply(&self, commit: &Commit, seq: u64) -> Result<()> {
        let mut batch = self.db.batch();
        // What the commit writes, to be cached as written once it is.
        let mut cached = Vec::new();
        for (project, id) in &commit.deleted_persons {
            batch.remove(&self.persons, keys::person(*project, *id));
        }
        for person in &commit.persons {
            let bytes: Arc<[u8]> = serde_json::to_vec(person)?.into();
            batch.insert(
                &self.persons,
                keys::person(person.project_id, person.id),
                &*bytes,
            );
            cached.push((
                Key::Person(person.project_id, person.id),
                Entry::Encoded(bytes),
            ));
        }
        for (project, distinct_id, person) in &commit.distinct_ids {
            let key = keys::distinct_id(*project, distinct_id);
            batch.insert(&self.distinct_ids, key, person.as_bytes().to_vec());
            let key = Key::DistinctId(*project, distinct_id.as_str().into());
            cached.push((key, Entry::PersonId(*person)));
        }
        for group in &commit.groups {
            let (project, index) = (group.project_id, group.group_type_index);
            let key = keys::group(project, index, &group.group_key);
            batch.insert(&self.groups, key, serde_json::to_vec(group)?);
            let group_key: Box<str> = group.group_key.as_str().into();
            let key = Key::GroupCreated(project, index, group_key.clone());
            cached.push((key, Entry::Created(group.created_at)));
            let key = Key::Group(project, index, group_key);
            cached.push((key, Entry::Group(Arc::new(group.clone()))));
        }
        // Most commits create no group type: the map is copied only for those that do.
        let group_types = self.with_group_types(&commit.group_types);
        for (project, types) in group_types.iter().flatten() {
            if commit.group_types.iter().any(|(p, _)| p == project) {
                batch.insert(
                    &self.meta,
                    keys::group_types(*project),
                    serde_json::to_vec(types.as_ref())?,
                );
            }
        }
        batch.insert(&self.meta, keys::APPLIED, seq.to_le_bytes().to_vec());

        self.writing.fetch_add(1, Ordering::AcqRel);
        let written = batch.commit();
        if written.is_ok() {
            // Write-through: what was just written is what `/flags` and the
            // next events most likely read.
            for (project, id) in &commit.deleted_persons {
                self.cache.remove(&Key::Person(*project, *id));
            }
            for (key, entry) in cached {
                self.cache.insert(key, entry);
            }
            if let Some(group_types) = group_types {
                *self.group_types.write().expect("group types lock") = group_types;
            }
            self.applied.fetch_max(seq, Ordering::AcqRel);
        }
        self.writing.fetch_add(1, Ordering::AcqRel);
        Ok(written?)
    }

    /// The group types with `created` added, if it adds any.
    fn with_group_types(
        &self,
        created: &[(ProjectId, GroupType)],
    ) -> Option<HashMap<ProjectId, Arc<Vec<GroupType>>>> {
        if created.is_empty() {
            return None;
        }
        let mut group_types = self.group_types.read().expect("group types lock").clone();
        for (project, group_type) in created {
            let types = Arc::make_mut(group_types.entry(*project).or_default());
            if !types
                .iter()
                .any(|t| t.group_type_index == group_type.group_type_index)
            {
                types.push(group_type.clone());
                types.sort_by_key(|t| t.group_type_index);
            }
        }
        Some(group_types)
    }

    /// Syncs everything applied to disk; returns the journal record it
    /// covers, up to which the journal may be deleted.
    pub fn persist(&self) -> Result<u64> {
        let applied = self.applied_seq();
        self.db.persist(PersistMode::SyncAll)?;
        Ok(applied)
    }

    /// Replaces the state with the entities `load` visits (an older data
    /// directory's, read from its database), as of journal record `seq`.
    pub fn import(
        &self,
        seq: u64,
        load: impl FnOnce(&mut dyn SnapshotVisitor) -> Result<()>,
    ) -> Result<()> {
        for keyspace in [&self.persons, &self.distinct_ids, &self.groups, &self.meta] {
            keyspace.clear()?;
        }
        self.cache.clear();
        self.group_types.write().expect("group types lock").clear();
        let mut import = Import {
            state: self,
            commit: Commit::default(),
            entries: 0,
            failure: None,
        };
        load(&mut import)?;
        import.flush();
        if let Some(failure) = import.failure {
            return Err(failure);
        }
        let mut batch = self.db.batch();
        batch.insert(&self.meta, keys::COMPLETE, [1u8]);
        batch.insert(&self.meta, keys::APPLIED, seq.to_le_bytes());
        batch.commit()?;
        self.applied.store(seq, Ordering::Release);
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Cache and disk figures.
    pub fn stats(&self) -> EntityStats {
        EntityStats {
            cache_bytes: self.cache.weight(),
            cache_capacity: self.cache.capacity(),
            cache_entries: self.cache.len() as u64,
            cache_hits: self.cache.hits(),
            cache_misses: self.cache.misses(),
            disk_bytes: self.db.disk_space().unwrap_or(0),
            block_cache_bytes: self.db.cache_size(),
            write_buffer_bytes: self.db.write_buffer_size(),
        }
    }
}

/// Writes an imported snapshot in batches, as commits of sequence 0.
struct Import<'a> {
    state: &'a EntityState,
    commit: Commit,
    entries: usize,
    failure: Option<StoreError>,
}

impl Import<'_> {
    fn added(&mut self) {
        self.entries += 1;
        if self.entries >= IMPORT_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let commit = std::mem::take(&mut self.commit);
        self.entries = 0;
        if self.failure.is_none() && !commit.is_empty() {
            if let Err(error) = self.state.apply(&commit, 0) {
                self.failure = Some(error);
            }
        }
    }
}

impl SnapshotVisitor for Import<'_> {
    fn person(&mut self, person: Person) {
        for distinct_id in &person.distinct_ids {
            self.commit
                .distinct_ids
                .push((person.project_id, distinct_id.clone(), person.id));
        }
        self.commit.persons.push(person);
        self.added();
    }

    fn group_type(&mut self, project: ProjectId, group_type: GroupType) {
        self.commit.group_types.push((project, group_type));
        self.added();
    }

    fn group(&mut self, group: Group) {
        self.commit.groups.push(group);
        self.added();
    }
}

/// `/flags` reads committed properties here, through the cache.
impl PersonLookup for EntityState {
    fn person_properties(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<Option<Properties>> {
        let Some(id) = self.person_id(project, distinct_id)? else {
            return Ok(None);
        };
        Ok(self.person(project, id)?.map(|p| p.properties.clone()))
    }

    fn group_properties(
        &self,
        project: ProjectId,
        index: GroupTypeIndex,
        key: &str,
    ) -> Result<Option<Properties>> {
        Ok(self
            .group(project, index, key)?
            .map(|g| g.properties.clone()))
    }

    fn group_types(&self, project: ProjectId) -> Result<Vec<(GroupTypeIndex, String)>> {
        Ok(self
            .project_group_types(project)
            .iter()
            .map(|t| (t.group_type_index, t.group_type.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests;
