//! The events table's physical order. Ingestion appends events as they
//! arrive, so every row group holds every event name and a scan for three
//! rare events (a funnel) reads the `event` column of the whole range. In
//! the background, the events appended since the last pass are rewritten
//! sorted by [`SORT_KEY`] (as ClickHouse's sort key orders its parts), so
//! that DuckDB's zone maps skip the row groups of other events and other
//! days. Each pass makes a *sorted run*: the events of a span of
//! `inserted_at`, recorded in `event_runs`; passes merge the newest runs
//! into bigger ones, as an LSM tree merges its levels, so that a scan meets
//! a few runs (logarithmically many) and each event is rewritten a few times
//! over its life. A pass is one transaction: readers see the events before
//! or after it, never both or neither, and loads go on beside it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duckdb::{Connection, InterruptHandle};

use super::PooledConnection;
use crate::Result;

/// Events of one project and name lie together, by day, then by person (so
/// that the person and session columns compress in runs) and time.
const SORT_KEY: &str = "project_id, event, date_trunc('day', timestamp), person_id, timestamp";

/// How often the background pass looks at the unsorted events.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A run is merged into the pass when it holds at most this many times the
/// events merged so far: runs then grow geometrically, like a binary counter.
const MERGE_RATIO: i64 = 1;

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Events appended since the last pass.
    pub unsorted: i64,
    /// Events rewritten: those, and the runs merged with them.
    pub rewritten: i64,
}

/// A sorted run: the events inserted up to `upto` (after the run before).
#[derive(Debug, Clone, Copy)]
struct Run {
    upto: i64,
    rows: i64,
}

/// The condition on `column` (an insertion time) that holds after `run`.
fn after(column: &str, run: Option<&Run>) -> String {
    match run {
        Some(run) => format!("{column} > make_timestamp({})", run.upto),
        None => "TRUE".into(),
    }
}

/// How many of the newest `runs` a pass over `unsorted` events merges.
fn runs_to_merge(runs: &[Run], unsorted: i64) -> usize {
    let mut rows = unsorted;
    let mut merged = 0;
    for run in runs.iter().rev() {
        if run.rows > MERGE_RATIO * rows {
            break;
        }
        rows += run.rows;
        merged += 1;
    }
    merged
}

/// Sorts the unsorted events (merging runs as [`runs_to_merge`] says) when
/// there are at least `min_unsorted` of them; `None` if there were fewer.
pub(crate) fn sort_pass(conn: &mut Connection, min_unsorted: i64) -> Result<Option<Pass>> {
    let runs: Vec<Run> = conn
        .prepare("SELECT epoch_us(upto), rows FROM event_runs ORDER BY upto")?
        .query_map([], |row| {
            Ok(Run {
                upto: row.get(0)?,
                rows: row.get(1)?,
            })
        })?
        .collect::<std::result::Result<_, _>>()?;
    // Runs hold everything inserted up to the last one's `upto`.
    let unsorted: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM events WHERE {}",
            after("inserted_at", runs.last())
        ),
        [],
        |row| row.get(0),
    )?;
    metrics::gauge!("cairn_events_unsorted").set(unsorted as f64);
    if unsorted == 0 || unsorted < min_unsorted {
        return Ok(None);
    }
    let kept = &runs[..runs.len() - runs_to_merge(&runs, unsorted)];
    let events = after("inserted_at", kept.last());
    let tx = conn.transaction()?;
    // What this snapshot holds: loads committing meanwhile land after it.
    let (last_row, upto, rows): (Option<i64>, Option<i64>, i64) = tx.query_row(
        &format!(
            "SELECT max(rowid), epoch_us(max(inserted_at)), count(*) FROM events WHERE {events}"
        ),
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let (Some(last_row), Some(upto)) = (last_row, upto) else {
        return Ok(None);
    };
    // The sorted copy's rows are new to the transaction, with row ids past
    // every stored one: the delete takes the old copies only.
    tx.execute_batch(&format!(
        "INSERT INTO events SELECT * FROM events WHERE {events} ORDER BY {SORT_KEY};
         DELETE FROM events WHERE {events} AND rowid <= {last_row};
         DELETE FROM event_runs WHERE {merged};
         INSERT INTO event_runs VALUES (make_timestamp({upto}), {rows});",
        merged = after("upto", kept.last()),
    ))?;
    tx.commit()?;
    // Row groups emptied by the delete are dropped at a checkpoint; one
    // that cannot run now (another write is open) happens later.
    if let Err(error) = conn.execute_batch("CHECKPOINT") {
        tracing::debug!(%error, "no checkpoint after sorting events");
    }
    Ok(Some(Pass {
        unsorted,
        rewritten: rows,
    }))
}

/// The background pass: every few seconds, sorts the events appended since
/// the last once there are at least `min_unsorted`. Dropping it stops it,
/// interrupting a pass under way (which then changes nothing).
pub struct Clustering {
    stop: Option<mpsc::Sender<()>>,
    interrupt: Arc<InterruptHandle>,
    thread: Option<JoinHandle<()>>,
}

impl Clustering {
    pub(crate) fn start(mut conn: PooledConnection, min_unsorted: i64) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let interrupt = conn.interrupt_handle();
        let thread = std::thread::Builder::new()
            .name("cairn-clustering".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECK_EVERY) {
                    let started = Instant::now();
                    match sort_pass(&mut conn, min_unsorted) {
                        Ok(None) => {}
                        Ok(Some(pass)) => {
                            metrics::counter!("cairn_event_sort_passes_total").increment(1);
                            metrics::counter!("cairn_events_resorted_total")
                                .increment(pass.rewritten as u64);
                            tracing::info!(
                                unsorted = pass.unsorted,
                                rewritten = pass.rewritten,
                                seconds = started.elapsed().as_secs_f64(),
                                "sorted the newest events by event and time"
                            );
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot sort the newest events; trying again later")
                        }
                    }
                }
            })
            .map_err(|e| {
                crate::StoreError::Unavailable(format!("cannot start the clustering thread: {e}"))
            })?;
        Ok(Self {
            stop: Some(stop),
            interrupt,
            thread: Some(thread),
        })
    }
}

impl Drop for Clustering {
    fn drop(&mut self) {
        self.stop.take();
        self.interrupt.interrupt();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(sizes: &[i64]) -> Vec<Run> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| Run {
                upto: i as i64,
                rows,
            })
            .collect()
    }

    #[test]
    fn runs_grow_like_a_binary_counter() {
        // Passes of 1 each: the runs are the binary digits of the total.
        let mut sizes: Vec<i64> = Vec::new();
        for _ in 0..11 {
            let merged = runs_to_merge(&runs(&sizes), 1);
            let rows = 1 + sizes.split_off(sizes.len() - merged).iter().sum::<i64>();
            sizes.push(rows);
        }
        assert_eq!(sizes, vec![8, 2, 1]);
    }

    #[test]
    fn a_big_run_is_not_rewritten_for_a_small_tail() {
        assert_eq!(runs_to_merge(&runs(&[1000, 10]), 10), 1);
        assert_eq!(runs_to_merge(&runs(&[1000]), 10), 0);
        assert_eq!(runs_to_merge(&runs(&[]), 10), 0);
    }
}
