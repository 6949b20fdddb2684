//! How long one query may run, and whether its asker still waits. The
//! engine's work is stopped by interrupting the scanner; the per-actor state
//! machines in Rust check [`Budget::check`] as they go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cairn_store::EventScanner;

use crate::error::{QueryError, Result};

/// How often the watchdog looks at the clock and the cancel flag. An engine
/// may forget an interrupt that lands between two statements, so it is
/// repeated at this pace until the query gives up.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// A query's time limit and cancel flag, shared by everything it runs.
/// The default is [`Budget::unlimited`].
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// `None`: no time limit (tests and benchmarks).
    limit: Option<(Instant, Duration)>,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    pub fn unlimited() -> Self {
        Self {
            limit: None,
            cancelled: Arc::default(),
        }
    }

    /// A budget of `timeout` from now.
    pub fn new(timeout: Duration) -> Self {
        Self {
            limit: Some((Instant::now() + timeout, timeout)),
            cancelled: Arc::default(),
        }
    }

    /// A guard that cancels the query when dropped: hold it in the future
    /// that waits for the answer, so a client that goes away (and drops
    /// that future) stops the query too.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.cancelled.clone())
    }

    /// Why the query must stop now, if it must.
    fn exceeded(&self) -> Option<QueryError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Some(QueryError::Cancelled);
        }
        match self.limit {
            Some((deadline, limit)) if Instant::now() >= deadline => {
                Some(QueryError::TimedOut { limit })
            }
            _ => None,
        }
    }

    /// An error once the time is up or the asker left; call it in loops.
    pub fn check(&self) -> Result<()> {
        self.exceeded().map_or(Ok(()), Err)
    }

    /// Runs `work` on `scanner`, interrupting it once the time is up or
    /// the query is cancelled; the error then says which. Without a time
    /// limit (tests, benchmarks) `work` runs unwatched.
    pub fn watch<T>(
        &self,
        scanner: &dyn EventScanner,
        work: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.check()?;
        if self.limit.is_none() {
            return work();
        }
        let interrupt = scanner.interrupter();
        let finished = (Mutex::new(false), Condvar::new());
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                let (lock, wake) = &finished;
                let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*done {
                    if self.exceeded().is_some() {
                        interrupt.interrupt();
                    }
                    done = wake
                        .wait_timeout(done, WATCH_INTERVAL)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            });
            // Even if `work` panics, the watchdog must stop for the scope to end.
            let _stop_watching = Finished(&finished);
            work()
        });
        // An interrupted statement fails with the engine's own words; say why.
        match (result, self.exceeded()) {
            (Err(_), Some(reason)) => Err(reason),
            (result, _) => result,
        }
    }
}

/// Tells the watchdog its query is over, when dropped.
struct Finished<'a>(&'a (Mutex<bool>, Condvar));

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        let (lock, wake) = self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_one();
    }
}

/// Cancels its query when dropped (see [`Budget::cancel_on_drop`]).
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_store::{DuckStore, EventStore};

    const ENDLESS: &str = "SELECT sum(a.range % 7)::BIGINT FROM range(100000000000) a";

    fn scanner() -> (tempfile::TempDir, Box<dyn EventScanner>) {
        let dir = tempfile::tempdir().unwrap();
        let scanner = DuckStore::open(dir.path(), 1).unwrap().scanner().unwrap();
        (dir, scanner)
    }

    fn one_number(scanner: &dyn EventScanner, sql: &str) -> Result<i64> {
        let mut n = None;
        crate::sql::for_each_batch(scanner, sql, |batch| {
            n = Some(crate::sql::column::<arrow_array::Int64Array>(batch, 0)?.value(0));
            Ok(())
        })?;
        n.ok_or_else(|| QueryError::Internal("no row".into()))
    }

    #[test]
    fn a_query_past_its_time_is_interrupted_and_named() {
        let (_dir, scanner) = scanner();
        let budget = Budget::new(Duration::from_millis(200));
        let started = Instant::now();
        let err = budget
            .watch(&*scanner, || one_number(&*scanner, ENDLESS))
            .unwrap_err();
        assert!(matches!(err, QueryError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("query timeout of 0.2 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The session serves the next query.
        assert_eq!(one_number(&*scanner, "SELECT 1::BIGINT").unwrap(), 1);
    }

    #[test]
    fn dropping_the_guard_cancels_a_running_query() {
        let (_dir, scanner) = scanner();
        let budget = Budget::new(Duration::from_secs(600));
        let guard = budget.cancel_on_drop();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(guard);
        });
        let started = Instant::now();
        let err = budget
            .watch(&*scanner, || one_number(&*scanner, ENDLESS))
            .unwrap_err();
        assert!(matches!(err, QueryError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn quick_work_is_untouched() {
        let (_dir, scanner) = scanner();
        let budget = Budget::new(Duration::from_secs(60));
        let n = budget
            .watch(&*scanner, || one_number(&*scanner, "SELECT 42::BIGINT"))
            .unwrap();
        assert_eq!(n, 42);
        assert!(Budget::unlimited().check().is_ok());
    }
}
