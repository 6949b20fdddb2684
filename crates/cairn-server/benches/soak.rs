//! Soak benchmark: measures the maximum ingest rate over 40,000 events, then ingests
//! at half of it for `--minutes` (10) while a reader lists persons and
//! groups, and prints every 30 s the throughput, ack latency, errors, the
//! lowest and highest RSS of the server (sampled every second) and the
//! reads' latency. RSS is a sawtooth: DuckDB holds appended data in memory
//! until a checkpoint writes it out, so "flat" means the lows and highs of
//! the second half are those of the first. Targets: flat RSS, no errors,
//! ack p99 under 100 ms.
//!
//!     cargo bench --profile dev -p cairn-server --bench soak -- [--minutes M] [--clients C] [--rate EVENTS_PER_S]

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;

use hyper::body::Bytes;
use support::{arg, batch_body, drive, post, BenchServer, BATCH, PERSONAL_KEY};

/// What the current reporting window saw.
struct Window {
    acks: Histogram<u64>,
    reads: Histogram<u64>,
}

impl Window {
    fn new() -> Self {
        Self {
            acks: Histogram::new(3).unwrap(),
            reads: Histogram::new(3).unwrap(),
        }
    }
}

fn main() {
    let minutes = arg("--minutes", 10);
    let clients = arg("--clients", 8);
    let server = BenchServer::start();
    let base = server.base.clone();
    let sent_at = chrono::Utc::now().to_rfc3339();

    // 1. The maximum rate, flat out.
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let probe: Vec<Bytes> = (0..400)
        .map(|_| batch_body(&mut rng, &sent_at).into())
        .collect();
    let probed = probe.len() * BATCH;
    let load = drive(&base, clients, probe.len(), move |i| {
        post("/batch/", probe[i].clone())
    });
    let max_rate = probed as f64 / load.elapsed.as_secs_f64();
    let url = format!("{base}/batch/");
    let rate = arg("--rate", (max_rate / 2.0) as usize) as f64;
    println!("soak: maximum {max_rate:.0} events/s over {} events; soaking at {rate:.0} events/s for {minutes} min with {clients} clients", probed);

    // 2. Paced ingestion and a reader, for `minutes`.
    let window = Arc::new(Mutex::new(Window::new()));
    let (events, errors, reads_failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let per_client = Duration::from_secs_f64(clients as f64 * BATCH as f64 / rate);
    let senders: Vec<_> = (0..clients)
        .map(|c| {
            let (window, events, errors, done, url, sent_at) = (
                window.clone(),
                events.clone(),
                errors.clone(),
                done.clone(),
                url.clone(),
                sent_at.clone(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut rng = rand::rngs::StdRng::seed_from_u64(100 + c as u64);
                // Clients start spread over one interval, then keep a fixed schedule.
                let mut next = started + per_client.mul_f64(c as f64 / clients as f64);
                while !done.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next += per_client;
                    let body = batch_body(&mut rng, &sent_at);
                    let sent = Instant::now();
                    let ok = client
                        .post(&url)
                        .body(body)
                        .send()
                        .is_ok_and(|r| r.status() == 200);
                    let took = sent.elapsed().as_micros() as u64;
                    window.lock().unwrap().acks.record(took).unwrap();
                    if ok {
                        events.fetch_add(BATCH as u64, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let reader = {
        let (window, reads_failed, done, base) = (
            window.clone(),
            reads_failed.clone(),
            done.clone(),
            base.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let paths = [
                "/persons/?search=user-42&limit=20",
                "/groups/?group_type_index=0&limit=50",
                "/persons/?limit=100",
            ];
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                let path = paths[i % paths.len()];
                i += 1;
                let sent = Instant::now();
                let ok = client
                    .get(format!("{base}/api/projects/1{path}"))
                    .bearer_auth(PERSONAL_KEY)
                    .send()
                    .is_ok_and(|r| r.status() == 200);
                window
                    .lock()
                    .unwrap()
                    .reads
                    .record(sent.elapsed().as_micros() as u64)
                    .unwrap();
                if !ok {
                    reads_failed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    println!(
        "  {:>6} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9} {:>10}",
        "min", "events/s", "ack p50", "ack p99", "ack max", "errors", "RSS MiB", "read p99"
    );
    let sample_every = Duration::from_secs(1);
    let report_every = Duration::from_secs(30);
    let end = started + Duration::from_secs(60 * minutes as u64);
    let mut last_events = 0;
    let mut last_at = started;
    let mut overall = Histogram::<u64>::new(3).unwrap();
    let mut rss_windows: Vec<(f64, f64)> = Vec::new();
    while Instant::now() < end {
        let window_end = (Instant::now() + report_every).min(end);
        let (mut low, mut high) = (f64::MAX, 0f64);
        while Instant::now() < window_end {
            std::thread::sleep(sample_every.min(window_end - Instant::now()));
            let rss = server.rss_mib();
            (low, high) = (low.min(rss), high.max(rss));
        }
        rss_windows.push((low, high));
        let seen = std::mem::replace(&mut *window.lock().unwrap(), Window::new());
        overall.add(&seen.acks).unwrap();
        let now = Instant::now();
        let total = events.load(Ordering::Relaxed);
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "  {:>6.1} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>9} {:>10.1}",
            (now - started).as_secs_f64() / 60.0,
            (total - last_events) as f64 / (now - last_at).as_secs_f64(),
            ms(&seen.acks, 0.5),
            ms(&seen.acks, 0.99),
            seen.acks.max() as f64 / 1000.0,
            errors.load(Ordering::Relaxed) + reads_failed.load(Ordering::Relaxed),
            format!("{low:.0}-{high:.0}"),
            ms(&seen.reads, 0.99),
        );
        last_events = total;
        last_at = now;
    }
    done.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    reader.join().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // The first window is warm-up; compare the rest's halves.
    let settled = &rss_windows[1.min(rss_windows.len())..];
    let (first, second) = settled.split_at(settled.len() / 2);
    let range = |windows: &[(f64, f64)]| {
        let low = windows.iter().map(|w| w.0).fold(f64::MAX, f64::min);
        let high = windows.iter().map(|w| w.1).fold(0.0, f64::max);
        format!("{low:.0}-{high:.0}")
    };
    println!(
        "  overall: {:.0} events/s, ack p99 {:.1} ms, {} failed writes, {} failed reads; RSS {} MiB in the first half, {} MiB in the second (peak {:.0} MiB)",
        events.load(Ordering::Relaxed) as f64 / elapsed,
        overall.value_at_quantile(0.99) as f64 / 1000.0,
        errors.load(Ordering::Relaxed),
        reads_failed.load(Ordering::Relaxed),
        range(first),
        range(second),
        server.peak_rss_mib(),
    );
}
