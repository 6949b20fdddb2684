//! Contexts: a scope in which calls without a distinct id use the scope's,
//! and tags fold into every event's properties (posthog-python's
//! `new_context`, `identify_context`, `tag`).
//!
//! Two kinds of scope share one set of functions: a thread scope
//! ([`with_context`]) for synchronous code, and a task scope
//! ([`in_context`]) that follows an async task across the threads of a
//! runtime. Inside both, the task scope wins. A new scope inherits its
//! parent's distinct id, session id and tags unless it is fresh.

use std::cell::RefCell;
use std::future::Future;

use serde::Serialize;
use serde_json::{Map, Value};

/// What a scope knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub distinct_id: Option<String>,
    pub session_id: Option<String>,
    pub tags: Map<String, Value>,
}

thread_local! {
    static THREAD: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static TASK: RefCell<Scope>;
}

/// The innermost scope's state, if any scope is open.
pub(crate) fn current() -> Option<Scope> {
    TASK.try_with(|scope| scope.borrow().clone())
        .ok()
        .or_else(|| THREAD.with(|stack| stack.borrow().last().cloned()))
}

/// The innermost scope's distinct id.
pub(crate) fn distinct_id() -> Option<String> {
    TASK.try_with(|scope| scope.borrow().distinct_id.clone())
        .ok()
        .unwrap_or_else(|| {
            THREAD.with(|stack| stack.borrow().last().and_then(|s| s.distinct_id.clone()))
        })
}

/// Changes the innermost scope; outside every scope, nothing happens.
fn update(change: impl FnOnce(&mut Scope)) {
    let mut change = Some(change);
    let _ = TASK.try_with(|scope| change.take().map(|c| c(&mut scope.borrow_mut())));
    if let Some(change) = change {
        THREAD.with(|stack| stack.borrow_mut().last_mut().map(change));
    }
}

fn child(fresh: bool) -> Scope {
    if fresh {
        Scope::default()
    } else {
        current().unwrap_or_default()
    }
}

/// Pops the thread scope even when the closure panics.
struct Popped;

impl Drop for Popped {
    fn drop(&mut self) {
        THREAD.with(|stack| stack.borrow_mut().pop());
    }
}

fn thread_scope<R>(scope: Scope, f: impl FnOnce() -> R) -> R {
    THREAD.with(|stack| stack.borrow_mut().push(scope));
    let _popped = Popped;
    f()
}

/// Runs `f` in a new thread scope that inherits the current one's distinct
/// id, session id and tags.
///
/// ```
/// cairn_sdk::with_context(|| {
///     cairn_sdk::identify_context("user_456");
///     cairn_sdk::tag("session_type", "premium");
///     // client.set(...) and client.capture(...) here use user_456.
/// });
/// ```
pub fn with_context<R>(f: impl FnOnce() -> R) -> R {
    thread_scope(child(false), f)
}

/// Runs `f` in a new thread scope that starts empty.
pub fn with_fresh_context<R>(f: impl FnOnce() -> R) -> R {
    thread_scope(Scope::default(), f)
}

/// Runs `future` in a new task scope that inherits the scope current at
/// this call. The scope follows the future across threads and `.await`s;
/// a task started with `tokio::spawn` inside it does not inherit it unless
/// its future is wrapped in `in_context` too.
pub fn in_context<F: Future>(future: F) -> impl Future<Output = F::Output> {
    TASK.scope(RefCell::new(child(false)), future)
}

/// Like [`in_context`], with a scope that starts empty.
pub fn in_fresh_context<F: Future>(future: F) -> impl Future<Output = F::Output> {
    TASK.scope(RefCell::new(Scope::default()), future)
}

/// Sets the distinct id that calls in the current scope (and the scopes it
/// opens later) use when they are given none. Outside every scope this does
/// nothing.
pub fn identify_context(distinct_id: impl Into<String>) {
    let distinct_id = distinct_id.into();
    update(|scope| scope.distinct_id = Some(distinct_id));
}

/// Sets the `$session_id` that events in the current scope carry.
pub fn set_context_session(session_id: impl Into<String>) {
    let session_id = session_id.into();
    update(|scope| scope.session_id = Some(session_id));
}

/// Adds a tag, a property every event in the current scope carries (the
/// event's own properties win). A value that does not serialise to JSON
/// is reported through `tracing` and not added.
pub fn tag(key: impl Into<String>, value: impl Serialize) {
    let key = key.into();
    match serde_json::to_value(value) {
        Ok(value) => update(|scope| {
            scope.tags.insert(key, value);
        }),
        Err(error) => tracing::warn!(%key, %error, "context tag cannot be serialised"),
    }
}

/// The current scope's tags (with the inherited ones).
pub fn tags() -> Map<String, Value> {
    current().map(|scope| scope.tags).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_thread_scopes_inherit_and_restore() {
        assert!(current().is_none());
        identify_context("ignored");
        assert!(current().is_none());
        with_context(|| {
            identify_context("u1");
            tag("a", 1);
            with_context(|| {
                tag("b", 2);
                assert_eq!(distinct_id().as_deref(), Some("u1"));
                assert_eq!(tags().len(), 2);
                with_fresh_context(|| assert!(distinct_id().is_none()));
            });
            assert_eq!(tags().len(), 1);
        });
        assert!(current().is_none());
    }

    #[test]
    fn a_panic_inside_a_scope_still_closes_it() {
        let result = std::panic::catch_unwind(|| with_context(|| panic!("boom")));
        assert!(result.is_err());
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn task_scopes_follow_the_future_and_win_over_thread_scopes() {
        let seen = with_context(|| {
            identify_context("thread-user");
            in_context(async {
                tag("request", "r1");
                tokio::task::yield_now().await;
                identify_context("task-user");
                (distinct_id(), tags())
            })
        })
        .await;
        assert_eq!(seen.0.as_deref(), Some("task-user"));
        assert_eq!(seen.1.get("request"), Some(&Value::from("r1")));
        assert!(current().is_none());
    }
}
