//! Ingest benchmark: a loopback load generator posting posthog-python-shaped
//! `/batch` requests of 100 events (10k persons, 500 companies, 3 group
//! types) to a freshly started `cairn` binary. Prints events/s, ack latency
//! percentiles and the server's peak RSS. Every 200 is a durable commit.
//!
//!     cargo bench -p cairn-server --bench ingest -- [--events N] [--clients C]

mod support;

use rand::SeedableRng;

use hyper::body::Bytes;
use support::{arg, batch_body, drive, post, BenchServer, BATCH, PERSONAL_KEY};

fn main() {
    let events = arg("--events", 1_000_000);
    let clients = arg("--clients", 8);
    let requests = events.div_ceil(BATCH);

    let server = BenchServer::start();
    let base = server.base.clone();
    let client = reqwest::blocking::Client::new();

    eprintln!("generating {requests} batches of {BATCH} events…");
    let sent_at = chrono::Utc::now().to_rfc3339();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Vec<Bytes> = (0..requests)
        .map(|_| batch_body(&mut rng, &sent_at).into())
        .collect();
    let mean_kib = bodies.iter().map(Bytes::len).sum::<usize>() as f64 / requests as f64 / 1024.0;

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
    let stored: serde_json::Value = client
        .get(format!("{base}/metrics"))
        .bearer_auth(PERSONAL_KEY)
        .send()
        .map(|r| serde_json::Value::String(r.text().unwrap_or_default()))
        .unwrap_or_default();
    let accepted = stored
        .as_str()
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("cairn_events_accepted_total "))
        .unwrap_or("cairn_events_accepted_total ?")
        .to_string();
    println!("  {accepted}");
}
