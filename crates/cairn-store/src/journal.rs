//! The ingestion journal: every [`Commit`] is appended here and synced to
//! disk before its requests are answered. DuckDB then loads commits in large
//! transactions in the background (see [`crate::loader`]), which is far
//! cheaper per event than one DuckDB transaction per group commit, and keeps
//! DuckDB's checkpoints off the acknowledgement path.
//!
//! The journal is a directory of segment files named by the sequence number
//! of their first record. A record is `length (u32) | crc32 (u32) | sequence
//! (u64) | the commit as JSON`, little-endian; the checksum covers the
//! sequence and the JSON. A torn record at the end of the last segment (a
//! crash mid-write, never acknowledged) is cut off when the journal opens.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use cairn_core::{Event, Group, GroupType, IngestionWarning, Person, ProjectId};
use serde::Serialize;
use uuid::Uuid;

use crate::{Commit, Result, StoreError};

/// Name of the journal's directory inside the data directory.
pub const JOURNAL_DIR: &str = "journal";
/// A segment past this size is closed and a new one started, so that loaded
/// segments can be deleted.
const SEGMENT_BYTES: u64 = 64 << 20;
const HEADER_BYTES: usize = 16;
/// Disk space kept free besides what loading the journal into DuckDB needs.
const FREE_SPACE_RESERVE: u64 = 4 << 20;

pub struct Journal {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    /// Bytes of whole records in the open segment.
    length: u64,
    next_seq: u64,
    /// Bytes appended since the journal opened.
    appended: u64,
}

/// What [`Journal::append`] wrote.
pub struct Appended {
    pub seq: u64,
    pub bytes: u64,
    /// Each event's properties as written, for the loader to reuse.
    pub properties: EventProperties,
}

/// The JSON of each event's properties inside a journal record: serialized
/// once, for the journal and for DuckDB's properties column.
pub struct EventProperties {
    record: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl EventProperties {
    /// The properties of event `index` of the commit.
    pub fn get(&self, index: usize) -> &str {
        std::str::from_utf8(&self.record[self.spans[index].clone()]).expect("JSON is UTF-8")
    }
}

/// A record read back from the journal.
pub struct Record {
    pub seq: u64,
    pub commit: Commit,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Journal {
        path: path.display().to_string(),
        source,
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

/// The segments in `dir`, oldest first, with the sequence of their first record.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let first = path
            .file_name()
            .and_then(|name| name.to_str()?.strip_suffix(".log")?.parse().ok());
        if let Some(first) = first {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Reads the whole records of one segment; returns them and the byte length
/// they span. Reading stops at the first record that is short or fails its
/// checksum.
fn read_segment(path: &Path, after: u64, records: &mut Vec<Record>) -> Result<(u64, bool)> {
    read_segment_until(path, after, &mut |_| false, records)
}

/// [`read_segment`], stopping before a record when `full` says the records
/// read so far are enough.
fn read_segment_until(
    path: &Path,
    after: u64,
    full: &mut dyn FnMut(&[Record]) -> bool,
    records: &mut Vec<Record>,
) -> Result<(u64, bool)> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(io_error(path))?;
    let mut at = 0;
    while bytes.len() - at >= HEADER_BYTES {
        let header = &bytes[at..at + HEADER_BYTES];
        let length = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let end = at + HEADER_BYTES + length;
        if end > bytes.len() || crc32fast::hash(&bytes[at + 8..end]) != crc {
            break;
        }
        let seq = u64::from_le_bytes(header[8..16].try_into().unwrap());
        if seq > after && full(records) {
            break;
        }
        if seq > after {
            let commit = serde_json::from_slice(&bytes[at + HEADER_BYTES..end])?;
            records.push(Record { seq, commit });
        }
        at = end;
    }
    Ok((at as u64, at == bytes.len()))
}

impl Journal {
    /// Opens the journal in `data_dir`, returning it and the records with a
    /// sequence above `loaded` (those DuckDB does not have yet).
    pub fn open(data_dir: &Path, loaded: u64) -> Result<(Self, Vec<Record>)> {
        let dir = data_dir.join(JOURNAL_DIR);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let segments = segments(&dir)?;
        let mut records = Vec::new();
        let mut tail = None;
        for (i, (_, path)) in segments.iter().enumerate() {
            let (length, whole) = read_segment(path, loaded, &mut records)?;
            let last = i + 1 == segments.len();
            if !whole && !last {
                return Err(StoreError::Corrupt(format!(
                    "the ingestion journal segment {} is damaged before its end",
                    path.display()
                )));
            }
            if last {
                tail = Some((path.clone(), length));
            }
        }
        let next_seq = records.last().map_or(loaded, |r| r.seq).max(loaded) + 1;
        let (path, length) = match tail {
            Some(tail) => tail,
            None => (dir.join(segment_name(next_seq)), 0),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        // Cut a torn record off, so the next one starts on a boundary.
        let on_disk = file.metadata().map_err(io_error(&path))?.len();
        if on_disk > length {
            tracing::warn!(path = %path.display(), bytes = on_disk - length, "cutting an incomplete record (never acknowledged) off the journal");
        }
        file.set_len(length).map_err(io_error(&path))?;
        file.seek(SeekFrom::Start(length))
            .map_err(io_error(&path))?;
        let journal = Self {
            dir,
            file,
            path,
            length,
            next_seq,
            appended: 0,
        };
        Ok((journal, records))
    }

    /// Refuses a commit while the disk lacks room for DuckDB to load what
    /// the journal holds (`unloaded` bytes of it, twice over: DuckDB's WAL,
    /// then its checkpoint). Otherwise a full disk would hold events that
    /// were acknowledged but could never become readable.
    pub fn ensure_room(&self, unloaded: u64) -> Result<()> {
        let stats = rustix::fs::statvfs(&self.dir).map_err(|e| io_error(&self.dir)(e.into()))?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        let needed = unloaded.saturating_mul(2) + FREE_SPACE_RESERVE;
        if free < needed {
            return Err(io_error(&self.dir)(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("{free} bytes free, {needed} needed to load what is journaled"),
            )));
        }
        Ok(())
    }

    /// The last record appended (or found at open).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn appended_bytes(&self) -> u64 {
        self.appended
    }

    /// Appends `commit` and syncs it to disk.
    pub fn append(&mut self, commit: &Commit) -> Result<Appended> {
        self.rotate_past(SEGMENT_BYTES)?;
        let seq = self.next_seq;
        let mut record = Vec::with_capacity(HEADER_BYTES + 600 * commit.events.len());
        record.extend_from_slice(&[0; 8]);
        record.extend_from_slice(&seq.to_le_bytes());
        let spans = write_commit(&mut record, commit)?;
        let length = (record.len() - HEADER_BYTES) as u32;
        let crc = crc32fast::hash(&record[8..]);
        record[0..4].copy_from_slice(&length.to_le_bytes());
        record[4..8].copy_from_slice(&crc.to_le_bytes());
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            // Drop whatever part of the record reached the file, so that the
            // next record follows the last whole one.
            let _ = self
                .file
                .set_len(self.length)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.length)).map(drop));
            return Err(io_error(&self.path)(error));
        }
        let bytes = record.len() as u64;
        self.length += bytes;
        self.appended += bytes;
        self.next_seq += 1;
        Ok(Appended {
            seq,
            bytes,
            properties: EventProperties { record, spans },
        })
    }

    /// Starts a new segment if the open one holds more than `limit` bytes.
    pub fn rotate_past(&mut self, limit: u64) -> Result<()> {
        if self.length <= limit {
            return Ok(());
        }
        let path = self.dir.join(segment_name(self.next_seq));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        // The new file's name must be durable before records in it are acknowledged.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(&self.dir))?;
        self.file = file;
        self.path = path;
        self.length = 0;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A commit without its events, for [`write_commit`]. Built by an
/// exhaustive destructuring, so a new field of [`Commit`] cannot be missed.
#[derive(Serialize)]
struct CommitWithoutEvents<'a> {
    persons: &'a [Person],
    deleted_persons: &'a [(ProjectId, Uuid)],
    person_overrides: &'a [(ProjectId, Uuid, Uuid)],
    distinct_ids: &'a [(ProjectId, String, Uuid)],
    group_types: &'a [(ProjectId, GroupType)],
    groups: &'a [Group],
    warnings: &'a [IngestionWarning],
    new_persons: &'a [(ProjectId, Uuid)],
    new_distinct_ids: &'a [(ProjectId, String)],
}

/// Writes `commit` as the JSON of a [`Commit`], writing each event by hand
/// so as to know where its properties are; returns those spans.
fn write_commit(record: &mut Vec<u8>, commit: &Commit) -> Result<Vec<Range<usize>>> {
    let Commit {
        events,
        persons,
        deleted_persons,
        person_overrides,
        distinct_ids,
        group_types,
        groups,
        warnings,
        new_persons,
        new_distinct_ids,
    } = commit;
    let rest = CommitWithoutEvents {
        persons,
        deleted_persons,
        person_overrides,
        distinct_ids,
        group_types,
        groups,
        warnings,
        new_persons,
        new_distinct_ids,
    };
    serde_json::to_writer(&mut *record, &rest)?;
    record.pop(); // Its closing brace: the events follow.
    record.extend_from_slice(b",\"events\":[");
    let mut spans = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            record.push(b',');
        }
        spans.push(write_event(record, event)?);
    }
    record.extend_from_slice(b"]}");
    Ok(spans)
}

/// Writes `event` as the JSON of an [`Event`]; returns where its properties are.
fn write_event(record: &mut Vec<u8>, event: &Event) -> Result<Range<usize>> {
    let Event {
        project_id,
        uuid,
        event,
        distinct_id,
        person_id,
        timestamp,
        inserted_at,
        properties,
        groups,
    } = event;
    field(record, "{\"project_id\":", project_id)?;
    field(record, ",\"uuid\":", uuid)?;
    field(record, ",\"event\":", event)?;
    field(record, ",\"distinct_id\":", distinct_id)?;
    field(record, ",\"person_id\":", person_id)?;
    field(record, ",\"timestamp\":", timestamp)?;
    field(record, ",\"inserted_at\":", inserted_at)?;
    record.extend_from_slice(b",\"properties\":");
    let start = record.len();
    serde_json::to_writer(&mut *record, properties)?;
    let span = start..record.len();
    field(record, ",\"groups\":", groups)?;
    record.push(b'}');
    Ok(span)
}

/// Writes `prefix` (punctuation and a field name), then `value` as JSON.
fn field<T: Serialize + ?Sized>(record: &mut Vec<u8>, prefix: &str, value: &T) -> Result<()> {
    record.extend_from_slice(prefix.as_bytes());
    Ok(serde_json::to_writer(record, value)?)
}

/// Deletes the segments of `dir` whose records all have a sequence up to
/// `loaded`. The newest segment stays: the journal appends to it.
pub fn remove_loaded(dir: &Path, loaded: u64) -> Result<()> {
    let segments = segments(dir)?;
    for pair in segments.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= loaded + 1 {
            // Two loader threads may delete the same segment at once.
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error(path)(e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The records after `after` up to `through`, in order, stopping once they
/// hold `max_events` events (at least one record is read): a consumer far
/// behind reads the journal a bounded piece at a time. Segments wholly
/// before `after` are not read.
pub fn read_range(dir: &Path, after: u64, through: u64, max_events: usize) -> Result<Vec<Record>> {
    let segments = segments(dir)?;
    let mut records = Vec::new();
    let (mut counted, mut events) = (0, 0);
    let mut full = |records: &[Record]| {
        events += records[counted..]
            .iter()
            .map(|r| r.commit.events.len())
            .sum::<usize>();
        counted = records.len();
        events >= max_events || records.last().is_some_and(|r| r.seq >= through)
    };
    for (i, (_, path)) in segments.iter().enumerate() {
        let next_first = segments.get(i + 1).map(|(first, _)| *first);
        if next_first.is_some_and(|next| next <= after + 1) {
            continue;
        }
        read_segment_until(path, after, &mut full, &mut records)?;
        if full(&records) {
            break;
        }
    }
    records.retain(|r| r.seq <= through);
    Ok(records)
}

/// Bytes of the journal's segments on disk.
pub fn disk_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for (_, path) in segments(dir)? {
        total += std::fs::metadata(&path).map_err(io_error(&path))?.len();
    }
    Ok(total)
}

/// The records of the journal in `dir` with a sequence above `after`, for a
/// load that has to be redone.
pub fn read_after(dir: &Path, after: u64) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for (_, path) in segments(dir)? {
        read_segment(&path, after, &mut records)?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::{IngestionWarning, ProjectId, WarningKind};

    fn commit(n: i64) -> Commit {
        Commit {
            warnings: vec![IngestionWarning {
                project_id: ProjectId(n),
                kind: WarningKind::InvalidGroups,
                details: serde_json::json!({"n": n}),
                timestamp: chrono::Utc::now(),
            }],
            ..Default::default()
        }
    }

    fn projects(records: &[Record]) -> Vec<(u64, i64)> {
        records
            .iter()
            .map(|r| (r.seq, r.commit.warnings[0].project_id.0))
            .collect()
    }

    #[test]
    fn records_after_the_loaded_one_come_back_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut journal, records) = Journal::open(dir.path(), 0).unwrap();
            assert!(records.is_empty());
            for n in 1..=3 {
                assert_eq!(journal.append(&commit(n)).unwrap().seq, n as u64);
            }
            // A crash in the middle of the next record.
            journal.file.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        }
        let (mut journal, records) = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(projects(&records), vec![(2, 2), (3, 3)]);
        assert_eq!(journal.append(&commit(4)).unwrap().seq, 4);
        drop(journal);
        let (_, records) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(projects(&records), vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
    }

    #[test]
    fn loaded_segments_are_deleted_but_the_open_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 0).unwrap();
        journal.append(&commit(1)).unwrap();
        journal.rotate_past(0).unwrap();
        journal.append(&commit(2)).unwrap();
        journal.rotate_past(0).unwrap();
        remove_loaded(journal.dir(), 1).unwrap();
        assert_eq!(
            projects(&read_after(journal.dir(), 0).unwrap()),
            vec![(2, 2)]
        );
        remove_loaded(journal.dir(), 2).unwrap();
        assert!(read_after(journal.dir(), 0).unwrap().is_empty());
        assert_eq!(segments(journal.dir()).unwrap().len(), 1);
        // Sequence numbers go on after a restart with nothing left to load.
        drop(journal);
        let (mut journal, records) = Journal::open(dir.path(), 2).unwrap();
        assert!(records.is_empty());
        assert_eq!(journal.append(&commit(3)).unwrap().seq, 3);
    }

    #[test]
    fn a_commit_reads_back_whole_and_its_properties_are_at_hand() {
        use cairn_core::{Event, Group, GroupType, Person};
        use serde_json::json;
        let at = chrono::Utc::now();
        let p = ProjectId(7);
        let id = Uuid::from_u128(1);
        let props = |v: serde_json::Value| v.as_object().unwrap().clone();
        let written = Commit {
            events: vec![Event {
                project_id: p,
                uuid: Uuid::from_u128(2),
                event: "say \"hi\"".into(),
                distinct_id: "d".into(),
                person_id: Some(id),
                timestamp: at,
                inserted_at: at,
                properties: props(json!({"a": [1, "ü"], "b": null})),
                groups: vec![None, Some("acme".into())],
            }],
            persons: vec![Person {
                project_id: p,
                id,
                properties: props(json!({"plan": "team"})),
                is_identified: true,
                created_at: at,
                version: 2,
                distinct_ids: vec!["d".into()],
            }],
            deleted_persons: vec![(p, Uuid::from_u128(3))],
            person_overrides: vec![(p, Uuid::from_u128(3), id)],
            distinct_ids: vec![(p, "d".into(), id)],
            group_types: vec![(
                p,
                GroupType {
                    group_type_index: 1,
                    group_type: "company".into(),
                    created_at: at,
                    name_singular: None,
                    name_plural: None,
                },
            )],
            groups: vec![Group {
                project_id: p,
                group_type_index: 1,
                group_key: "acme".into(),
                properties: props(json!({"name": "Acme"})),
                created_at: at,
                version: 1,
            }],
            warnings: commit(7).warnings,
            new_persons: vec![(p, id)],
            new_distinct_ids: vec![(p, "d".into())],
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 0).unwrap();
        let appended = journal.append(&written).unwrap();
        assert_eq!(appended.properties.get(0), r#"{"a":[1,"ü"],"b":null}"#);
        let read = read_after(journal.dir(), 0).unwrap().remove(0).commit;
        assert_eq!(format!("{read:?}"), format!("{written:?}"));
    }
}
