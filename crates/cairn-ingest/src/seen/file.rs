//! The uuid filters saved between runs, so that a start need not read every
//! stored event's uuid. The file records the time of the last commit it
//! covers: at start, only events inserted since then are read from the
//! store. It is written whole to a new file, synced, then renamed over the
//! old one; one that is missing or damaged means reading every uuid once.
//!
//! Layout, little endian: magic, the covered time (µs), the project count,
//! then per project its id, the items in its last filter and its filters
//! (hash count, word count, words), and a CRC-32 of everything before it.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use fastbloom::BloomFilter;

use cairn_core::ProjectId;

use super::SeenUuids;

/// The file's name in the data directory.
pub const SAVED_FILE: &str = "event-uuids.filters";
const MAGIC: &[u8; 8] = b"CAIRNSU1";

/// Writes `filters` as covering every event inserted up to `covered`.
pub fn save<'a>(
    path: &Path,
    covered: DateTime<Utc>,
    filters: impl Iterator<Item = (ProjectId, &'a SeenUuids)>,
) -> std::io::Result<()> {
    let filters: Vec<_> = filters.collect();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&covered.timestamp_micros().to_le_bytes());
    bytes.extend_from_slice(&(filters.len() as u32).to_le_bytes());
    for (project, seen) in filters {
        bytes.extend_from_slice(&project.0.to_le_bytes());
        bytes.extend_from_slice(&(seen.in_last as u64).to_le_bytes());
        bytes.extend_from_slice(&(seen.filters.len() as u32).to_le_bytes());
        for filter in &seen.filters {
            let words = filter.as_slice();
            bytes.extend_from_slice(&filter.num_hashes().to_le_bytes());
            bytes.extend_from_slice(&(words.len() as u64).to_le_bytes());
            for word in words {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
    }
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
    let fresh = path.with_extension("new");
    let mut file = std::fs::File::create(&fresh)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&fresh, path)
}

/// Saved filters: the time they cover and each project's.
pub type Saved = (DateTime<Utc>, super::ByProject);

/// The saved filters; `None` when there is no file or it does not read back
/// whole.
pub fn load(path: &Path) -> std::io::Result<Option<Saved>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(decode(&bytes))
}

fn decode(bytes: &[u8]) -> Option<Saved> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut reader = Reader(body.strip_prefix(MAGIC)?);
    let covered = DateTime::from_timestamp_micros(reader.u64()? as i64)?;
    let mut projects = HashMap::new();
    for _ in 0..reader.u32()? {
        let project = ProjectId(reader.u64()? as i64);
        let in_last = reader.u64()? as usize;
        let mut seen = SeenUuids {
            in_last,
            ..SeenUuids::default()
        };
        for _ in 0..reader.u32()? {
            let hashes = reader.u32()?;
            let count = reader.u64()? as usize;
            // Bounded by what the file holds before anything is allocated.
            if count == 0 || count > reader.0.len() / 8 {
                return None;
            }
            let words = (0..count)
                .map(|_| reader.u64())
                .collect::<Option<Vec<u64>>>()?;
            seen.filters
                .push(BloomFilter::from_vec(words).hashes(hashes));
        }
        projects.insert(project, seen);
    }
    reader.0.is_empty().then_some((covered, projects))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::super::Seen;
    use super::*;

    #[test]
    fn saved_filters_know_the_same_uuids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SAVED_FILE);
        let mut seen = SeenUuids::default();
        let stored: Vec<Uuid> = (0..100_000).map(|_| Uuid::new_v4()).collect();
        stored.iter().for_each(|u| seen.remember(u));
        let covered = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        save(&path, covered, [(ProjectId(7), &seen)].into_iter()).unwrap();

        let (at, mut loaded) = load(&path).unwrap().unwrap();
        assert_eq!(at, covered);
        let loaded = loaded.remove(&ProjectId(7)).unwrap();
        assert!(stored.iter().all(|u| loaded.check(u) == Seen::Unsure));
        let fresh = (0..10_000).filter(|_| loaded.check(&Uuid::new_v4()) != Seen::No);
        assert!(fresh.count() <= 1);
        assert_eq!(loaded.in_last, seen.in_last);
    }

    #[test]
    fn a_damaged_or_missing_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SAVED_FILE);
        assert!(load(&path).unwrap().is_none());
        let mut seen = SeenUuids::default();
        seen.remember(&Uuid::new_v4());
        save(&path, Utc::now(), [(ProjectId(1), &seen)].into_iter()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(load(&path).unwrap().is_none());
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(load(&path).unwrap().is_none());
    }
}
