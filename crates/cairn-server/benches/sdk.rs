//! cairn-sdk benchmark: how long `client.capture(...)` keeps the caller
//! (the enqueue cost; target under 2 µs per event), and how many events/s
//! the client delivers to a freshly started local `cairn`.
//!
//!     cargo bench --profile dev -p cairn-server --bench sdk -- [--events N] [--offline]
//!
//! `--offline` points the client at a port nobody listens on: the enqueue
//! cost without a server competing for the same cores.

mod support;

use std::time::Instant;

use cairn_sdk::{Capture, Client};
use hdrhistogram::Histogram;

use support::{arg, BenchServer, PROJECT_KEY};

fn main() {
    let events = arg("--events", 200_000);
    let offline = std::env::args().any(|a| a == "--offline");
    let server = (!offline).then(BenchServer::start);
    let host = match &server {
        Some(server) => server.base.clone(),
        None => "http://127.0.0.1:9".into(),
    };
    let client = Client::builder(PROJECT_KEY)
        .host(host)
        // Room for the whole run: the enqueue cost is measured, not drops.
        .max_queue_size(events)
        .flush_at(500)
        .build()
        .unwrap();
    let users: Vec<String> = (0..10_000).map(|i| format!("user_{i}")).collect();
    let companies: Vec<String> = (0..500).map(|i| format!("company_{i}")).collect();

    let mut histogram = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for i in 0..events {
        let call = Instant::now();
        client
            .capture(
                Capture::new("feature_used")
                    .distinct_id(users[i % users.len()].as_str())
                    .property("feature", "advanced_dashboard")
                    .property("duration_ms", i % 1_000)
                    .group("company", companies[i % companies.len()].as_str()),
            )
            .unwrap();
        histogram.record(call.elapsed().as_nanos() as u64).unwrap();
    }
    let enqueued = started.elapsed();
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    println!("cairn-sdk: {events} events (2 properties and a group each)");
    println!(
        "  enqueue cost: mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs",
        histogram.mean() / 1_000.0,
        us(0.5),
        us(0.99),
        us(0.999),
        histogram.max() as f64 / 1_000.0
    );
    println!(
        "  enqueued at {:.0} events/s",
        events as f64 / enqueued.as_secs_f64()
    );
    if offline {
        println!("  (offline: no server, nothing delivered)");
        return;
    }
    client.flush().unwrap();
    let delivered = started.elapsed();
    let stats = client.stats();
    assert_eq!(stats.delivered, events as u64, "{stats:?}");

    println!(
        "  delivered to a local cairn (acknowledged, durable) at {:.0} events/s",
        events as f64 / delivered.as_secs_f64()
    );
    println!(
        "  accepted {}, delivered {}, dropped {}, failed {}",
        stats.accepted, stats.delivered, stats.dropped, stats.failed
    );
    client.shutdown().unwrap();
}
