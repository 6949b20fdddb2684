//! Delivery against a local server that fails on cue: retries and backoff,
//! `Retry-After`, no retry on 400/401, offline queueing and the full-queue
//! report, drain on shutdown and drop, sync mode.

use std::collections::VecDeque;
use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cairn_sdk::{Capture, Client, ClientBuilder, Error};
use serde_json::Value;

/// What the server answers next: a status and maybe a `Retry-After`.
type Cue = (u16, Option<&'static str>);

#[derive(Default)]
struct Recorded {
    cues: Mutex<VecDeque<Cue>>,
    /// Each request: when it came and the events in it.
    requests: Mutex<Vec<(Instant, Vec<Value>)>>,
}

impl Recorded {
    fn requests(&self) -> Vec<(Instant, Vec<Value>)> {
        self.requests.lock().unwrap().clone()
    }

    fn events(&self) -> usize {
        self.requests().iter().map(|(_, events)| events.len()).sum()
    }
}

async fn batch(State(recorded): State<Arc<Recorded>>, headers: HeaderMap, body: Bytes) -> Response {
    assert_eq!(
        headers["content-encoding"], "gzip",
        "batches are gzip-compressed"
    );
    let mut json = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut json)
        .unwrap();
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["api_key"], "phc_test");
    let events = body["batch"].as_array().unwrap().clone();
    recorded
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), events));
    let cue = recorded
        .cues
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, None));
    let status = StatusCode::from_u16(cue.0).unwrap();
    match cue.1 {
        Some(wait) => (status, [("retry-after", wait)], "slow down").into_response(),
        None => (status, "{\"status\": 1}").into_response(),
    }
}

/// Serves `/batch/` on `listener` from a thread of its own.
fn serve(listener: TcpListener, cues: &[Cue]) -> Arc<Recorded> {
    let recorded = Arc::new(Recorded::default());
    recorded.cues.lock().unwrap().extend(cues.iter().copied());
    let state = recorded.clone();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route("/batch/", post(batch))
                .with_state(state);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    recorded
}

fn reserve_port() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A client with fast retries that collects what it reports.
fn client(host: &str) -> (ClientBuilder, Arc<Mutex<Vec<Error>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let builder = Client::builder("phc_test")
        .host(host)
        .backoff(Duration::from_millis(40), Duration::from_millis(200))
        .on_error(move |error| sink.lock().unwrap().push(error.clone()));
    (builder, errors)
}

fn event(n: usize) -> Capture {
    Capture::new("tick").distinct_id("u").property("n", n)
}

#[test]
fn server_errors_are_retried_with_growing_waits_then_delivered() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[(503, None), (500, None), (408, None)]);
    let (builder, errors) = client(&url);
    let client = builder.build().unwrap();
    for n in 0..3 {
        client.capture(event(n)).unwrap();
    }
    client.flush().unwrap();
    let requests = recorded.requests();
    assert_eq!(requests.len(), 4);
    // The same batch each time.
    assert!(requests.iter().all(|(_, events)| events == &requests[0].1));
    let gaps: Vec<Duration> = requests.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // Attempt n waits between half and all of 40 ms · 2^(n-1).
    for (gap, floor) in gaps.iter().zip([20, 40, 80]) {
        assert!(*gap >= Duration::from_millis(floor), "{gaps:?}");
    }
    assert!(errors.lock().unwrap().is_empty());
    let stats = client.stats();
    assert_eq!((stats.delivered, stats.failed), (3, 0));
}

#[test]
fn retry_after_sets_the_wait() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[(429, Some("1"))]);
    let (builder, _) = client(&url);
    let client = builder.build().unwrap();
    client.capture(event(0)).unwrap();
    client.flush().unwrap();
    let requests = recorded.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].0 - requests[0].0 >= Duration::from_millis(950));
}

#[test]
fn refusals_are_not_retried_and_are_reported() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[(400, None), (401, None)]);
    let (builder, errors) = client(&url);
    let client = builder.build().unwrap();
    client.capture(event(0)).unwrap();
    client.flush().unwrap();
    client.capture(event(1)).unwrap();
    client.flush().unwrap();
    assert_eq!(recorded.requests().len(), 2);
    let statuses: Vec<u16> = errors
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            Error::Rejected {
                status, events: 1, ..
            } => *status,
            other => panic!("unexpected report: {other}"),
        })
        .collect();
    assert_eq!(statuses, [400, 401]);
    assert_eq!(client.stats().failed, 2);
}

#[test]
fn an_unreachable_server_queues_events_and_reports_what_did_not_fit() {
    let (listener, url) = reserve_port();
    // Nothing listens until the server "comes back".
    let address = listener.local_addr().unwrap();
    drop(listener);
    let (builder, errors) = client(&url);
    let client = builder
        .max_queue_size(5)
        .flush_at(1)
        .max_retries(1_000)
        .build()
        .unwrap();
    client.capture(event(0)).unwrap();
    // The worker is now retrying that one; the queue takes five more.
    std::thread::sleep(Duration::from_millis(150));
    let results: Vec<_> = (1..=20).map(|n| client.capture(event(n))).collect();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(Error::QueueFull { capacity: 5 })))
        .count();
    let queued = results.iter().filter(|r| r.is_ok()).count();
    // Five fit (six if the worker had not yet taken the first one).
    assert!(queued == 5 || queued == 6, "{results:?}");
    assert_eq!(queued + full, 20);

    let recorded = serve(TcpListener::bind(address).unwrap(), &[]);
    client.flush().unwrap();
    assert_eq!(recorded.events(), 1 + queued);
    let stats = client.stats();
    let (accepted, dropped) = (1 + queued as u64, full as u64);
    assert_eq!(
        (stats.accepted, stats.delivered, stats.dropped),
        (accepted, accepted, dropped)
    );
    let dropped: u64 = errors
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            Error::Dropped { count } => *count,
            other => panic!("unexpected report: {other}"),
        })
        .sum();
    assert_eq!(dropped, full as u64);
}

#[test]
fn shutdown_and_drop_deliver_what_is_queued() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[]);
    let (builder, _) = client(&url);
    let client = builder
        .flush_at(1_000)
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    for n in 0..250 {
        client.capture(event(n)).unwrap();
    }
    assert_eq!(recorded.events(), 0);
    client.shutdown().unwrap();
    assert_eq!(recorded.events(), 250);
    assert!(matches!(client.capture(event(0)), Err(Error::ShutDown)));

    let (builder, _) = self::client(&url);
    let dropped = builder
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let clone = dropped.clone();
    for n in 0..5 {
        clone.capture(event(n)).unwrap();
    }
    drop(clone);
    drop(dropped);
    assert_eq!(recorded.events(), 255);
}

#[test]
fn shutdown_gives_up_on_time_when_the_server_is_gone() {
    let (listener, url) = reserve_port();
    drop(listener);
    let (builder, errors) = client(&url);
    let client = builder
        .max_retries(1_000)
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for n in 0..3 {
        client.capture(event(n)).unwrap();
    }
    let started = Instant::now();
    let result = client.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(result, Err(Error::Undelivered { events: 3 })),
        "{result:?}"
    );
    assert!(errors
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Error::GaveUp { events: 3, .. })));
}

#[test]
fn sync_mode_sends_each_call_and_returns_the_outcome() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[(503, None), (200, None), (400, None)]);
    let (builder, _) = client(&url);
    let client = builder.sync_mode(true).build().unwrap();
    let uuid = client.capture(event(0)).unwrap().unwrap();
    assert_eq!(recorded.requests().len(), 2, "retried once, then delivered");
    assert_eq!(recorded.requests()[1].1[0]["uuid"], uuid.to_string());
    let refused = client.capture(event(1));
    assert!(
        matches!(refused, Err(Error::Rejected { status: 400, .. })),
        "{refused:?}"
    );
}

#[test]
fn works_inside_an_async_runtime_with_task_contexts() {
    let (listener, url) = reserve_port();
    let recorded = serve(listener, &[]);
    let (builder, _) = client(&url);
    let client = builder.build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let task = client.clone();
        let sent = cairn_sdk::in_context(async move {
            cairn_sdk::identify_context("task-user");
            cairn_sdk::tag("request_id", "r-1");
            tokio::task::yield_now().await;
            task.capture(Capture::new("handled")).unwrap()
        })
        .await;
        assert!(sent.is_some());
        // Flushing and dropping on a runtime thread neither panic nor hang.
        client.flush().unwrap();
        drop(client);
    });
    let events = recorded.requests().pop().unwrap().1;
    assert_eq!(events[0]["distinct_id"], "task-user");
    assert_eq!(events[0]["properties"]["request_id"], "r-1");
}
