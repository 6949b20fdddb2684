//! Sorting the stored events (`DuckStore::sort_events`, which the server
//! runs in the background) rewrites them in the order of event name and
//! time, keeps each exactly once, and leaves loads beside it unharmed.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use cairn_core::{Event, ProjectId};
use cairn_store::{Commit, DuckStore, IngestStore, Pass};

const P: ProjectId = ProjectId(1);
const NAMES: [&str; 4] = ["pageview", "signed up", "activated", "clicked"];

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 0).unwrap()
}

/// `count` events of mixed names at descending times, inserted at `load`.
fn load(count: usize, load: i64) -> Arc<Commit> {
    let events = (0..count)
        .map(|i| Event {
            project_id: P,
            uuid: Uuid::now_v7(),
            event: NAMES[i % NAMES.len()].into(),
            distinct_id: format!("u{}", i % 7),
            person_id: None,
            timestamp: at(100_000 - (i as i64) * 3600 - load),
            inserted_at: at(load),
            properties: Default::default(),
            groups: vec![],
        })
        .collect();
    Arc::new(Commit {
        events,
        ..Default::default()
    })
}

/// The events in their stored order: (name, time).
fn stored(store: &DuckStore) -> Vec<(String, i64)> {
    let conn = store.conn().unwrap();
    let mut statement = conn
        .prepare("SELECT event, epoch_us(timestamp) FROM events ORDER BY rowid")
        .unwrap();
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn is_sorted(events: &[(String, i64)]) -> bool {
    // Within a name, days ascend (the key's person is the same here: none).
    events.windows(2).all(|w| w[0] <= w[1])
}

fn distinct_uuids(store: &DuckStore) -> (i64, i64) {
    store
        .conn()
        .unwrap()
        .query_row(
            "SELECT count(*), count(DISTINCT uuid) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn sorting_orders_events_by_name_and_time_and_merges_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckStore::open(dir.path(), 5).unwrap();
    let mut writer = store.writer().unwrap();
    writer.commit(load(40, 1)).unwrap();
    writer.commit(load(40, 2)).unwrap();
    assert!(!is_sorted(&stored(&store)));

    let pass = store.sort_events().unwrap();
    assert_eq!(
        pass,
        Some(Pass {
            unsorted: 80,
            rewritten: 80
        })
    );
    assert!(is_sorted(&stored(&store)));
    assert_eq!(store.sort_events().unwrap(), None, "nothing new to sort");

    // A small load makes a run of its own after the big one...
    writer.commit(load(20, 3)).unwrap();
    assert_eq!(
        store.sort_events().unwrap(),
        Some(Pass {
            unsorted: 20,
            rewritten: 20
        })
    );
    let events = stored(&store);
    assert!(is_sorted(&events[..80]) && is_sorted(&events[80..]));
    assert!(!is_sorted(&events));
    // ...and once the new ones add up to the big run, all merge into one.
    writer.commit(load(60, 4)).unwrap();
    assert_eq!(
        store.sort_events().unwrap(),
        Some(Pass {
            unsorted: 60,
            rewritten: 160
        })
    );
    assert!(is_sorted(&stored(&store)));
    assert_eq!(distinct_uuids(&store), (160, 160));

    // The sorted order survives reopening.
    drop(writer);
    drop(store);
    let store = DuckStore::open(dir.path(), 5).unwrap();
    assert!(is_sorted(&stored(&store)));
    assert_eq!(store.sort_events().unwrap(), None);
}

#[test]
fn loads_go_on_while_events_are_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckStore::open(dir.path(), 5).unwrap();
    let mut writer = store.writer().unwrap();
    writer.commit(load(500, 0)).unwrap();
    let loads = 40;
    let loading = std::thread::spawn(move || {
        for i in 1..=loads {
            writer.commit(load(100, i)).unwrap();
        }
    });
    let mut passes = 0;
    while !loading.is_finished() {
        // Readers never see an event twice or miss one mid-pass.
        let (count, distinct) = distinct_uuids(&store);
        assert_eq!(count, distinct);
        if store.sort_events().unwrap().is_some() {
            passes += 1;
        }
    }
    loading.join().unwrap();
    store.sort_events().unwrap();
    assert!(passes > 0);
    assert_eq!(distinct_uuids(&store), (4500, 4500));
    assert_eq!(store.sort_events().unwrap(), None);
}
