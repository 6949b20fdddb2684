//! Ingest benchmark: a loopback load generator posting posthog-python-shaped
//! `/batch` requests of 100 events (10k persons, 500 companies, 3 group
//! types) to a freshly started `cairn` binary. Prints events/s, ack latency
//! percentiles and the server's peak RSS. Every 200 is a durable commit.
//! With `--clickhouse` the server also loads a 2-shard ClickHouse cluster
//! (local `chdb-core` servers): it prints the events/s ClickHouse received
//! and how far its loader lagged behind capture.
//!
//!     cargo bench -p cairn-server --bench ingest -- [--events N] [--clients C] [--clickhouse]

mod support;

#[path = "../../cairn-store/tests/support/clickhouse.rs"]
mod clickhouse;

use std::time::{Duration, Instant};

use rand::SeedableRng;

use hyper::body::Bytes;
use support::{arg, batch_body, drive, metric, post, BenchServer, BATCH};

fn main() {
    let events = arg("--events", 1_000_000);
    let clients = arg("--clients", 8);
    let requests = events.div_ceil(BATCH);

    let cluster = std::env::args()
        .any(|a| a == "--clickhouse")
        .then(|| clickhouse::ClickHouse::start(2));
    let server = match &cluster {
        Some(cluster) => BenchServer::start_with(vec![
            "--clickhouse-url".into(),
            format!("{},{}", cluster.http_url(0), cluster.http_url(1)),
            "--clickhouse-cluster".into(),
            clickhouse::CLUSTER.into(),
        ]),
        None => BenchServer::start(),
    };
    let base = server.base.clone();

    eprintln!("generating {requests} batches of {BATCH} events…");
    let sent_at = chrono::Utc::now().to_rfc3339();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Vec<Bytes> = (0..requests)
        .map(|_| batch_body(&mut rng, &sent_at).into())
        .collect();
    let mean_kib = bodies.iter().map(Bytes::len).sum::<usize>() as f64 / requests as f64 / 1024.0;

    // The ClickHouse loader's lag, sampled while capture runs.
    let lag = std::sync::Arc::new(std::sync::Mutex::new(0f64));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(cluster.is_some()));
    let sampler = std::thread::spawn({
        let (lag, sampling, base) = (lag.clone(), sampling.clone(), base.clone());
        move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(now) = metric(&base, LAG) {
                    let mut max = lag.lock().unwrap();
                    *max = max.max(now);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    let started = Instant::now();
    let load = drive(&base, clients, requests, move |i| {
        post("/batch/", bodies[i].clone())
    });
    let elapsed = load.elapsed;
    let rss = server.peak_rss_mib();

    println!("ingest benchmark: {} events in {requests} /batch requests of {BATCH} ({mean_kib:.0} KiB each), {clients} concurrent clients",
        requests * BATCH);
    println!(
        "  throughput:   {:.0} events/s ({:.1} s)",
        (requests * BATCH) as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  ack latency:  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        load.ms(0.5),
        load.ms(0.99),
        load.max_ms()
    );
    println!("  server peak RSS: {rss:.0} MiB");
    println!("  failed requests: {}", load.failures);

    // Durable means stored: count what the server kept.
    let accepted = metric(&base, "cairn_events_accepted_total ").expect("accepted events");
    println!("  cairn_events_accepted_total {accepted}");

    if let Some(cluster) = &cluster {
        // Until ClickHouse holds every event capture acknowledged.
        let count = || -> u64 {
            cluster
                .query(0, "SELECT count() FROM events")
                .trim()
                .parse()
                .unwrap()
        };
        let mut stored = count();
        while (stored as f64) < accepted {
            std::thread::sleep(Duration::from_millis(20));
            stored = count();
        }
        let loaded = started.elapsed();
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap();
        println!(
            "  into ClickHouse (2 shards): {stored} events, all loaded {:.1} s after capture began: {:.0} events/s",
            loaded.as_secs_f64(),
            stored as f64 / loaded.as_secs_f64()
        );
        println!(
            "  loader lag: at most {:.0} journal records while capturing, caught up {:.1} s after the last acknowledgement",
            *lag.lock().unwrap(),
            (loaded - elapsed).as_secs_f64()
        );
        // The loader's own pace: events over the time its loads took.
        let busy = metric(&base, "cairn_store_load_seconds_sum{engine=\"clickhouse\"}")
            .expect("the ClickHouse loader's load times");
        println!(
            "  loader busy {busy:.1} s in all: {:.0} events/s while loading",
            stored as f64 / busy
        );
    }
}

const LAG: &str = "cairn_loader_lag_records{engine=\"clickhouse\"}";
