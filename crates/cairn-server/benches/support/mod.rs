//! What the benchmark programs share: a fresh `cairn` binary on a free

// Each benchmark program uses a subset of these.
#![allow(dead_code)]
//! loopback port, command-line numbers, and the server's peak memory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

pub const PROJECT_KEY: &str = "phc_bench_project_key";
pub const PERSONAL_KEY: &str = "phx_bench_personal_key";

/// `--name N` from the command line, else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct BenchServer {
    pub base: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl BenchServer {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_path_buf();
        Self::start_in(data, &dir)
    }

    /// Starts on `dir`, whose lifetime `data` holds.
    pub fn start_in(data: tempfile::TempDir, dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir)
            .env("CAIRN_PROJECT_API_KEY", PROJECT_KEY)
            .env("CAIRN_PERSONAL_API_KEY", PERSONAL_KEY)
            .env("CAIRN_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start cairn");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::new();
        let ready = Instant::now();
        while client.get(format!("{base}/_health")).send().is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(60),
                "cairn did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            base,
            child,
            _data: data,
        }
    }

    /// The server's peak resident memory so far.
    pub fn peak_rss_mib(&self) -> f64 {
        self.memory_mib("VmHWM:")
    }

    /// The server's resident memory now.
    pub fn rss_mib(&self) -> f64 {
        self.memory_mib("VmRSS:")
    }

    fn memory_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Events per `/batch` request of the load generators.
pub const BATCH: usize = 100;
const PERSONS: usize = 10_000;
const COMPANIES: usize = 500;
const EVENT_NAMES: &[&str] = &[
    "$pageview",
    "signed_up",
    "report_generated",
    "feature_used",
    "invite_sent",
    "dashboard_viewed",
];

/// One posthog-python 7.x `/batch` body, built as text: generating JSON must
/// not cost the client more CPU than the server spends on it.
pub fn batch_body(rng: &mut rand::rngs::StdRng, sent_at: &str) -> Vec<u8> {
    let mut body = String::with_capacity(BATCH * 700);
    body.push_str("{\"batch\":[");
    for i in 0..BATCH {
        let person = rng.random_range(0..PERSONS);
        let company = person % COMPANIES;
        let team = person % (COMPANIES * 4);
        let project = rng.random_range(0..20_000);
        let name = EVENT_NAMES[rng.random_range(0..EVENT_NAMES.len())];
        let uuid = uuid::Uuid::from_u128(rng.random());
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"event\":\"{name}\",\"distinct_id\":\"user-{person}\",\"properties\":{{\"plan\":\"{plan}\",\"duration_ms\":{duration},\
             \"$groups\":{{\"company\":\"company-{company}\",\"team\":\"team-{team}\",\"project\":\"project-{project}\"}},\
             \"$lib\":\"posthog-python\",\"$lib_version\":\"7.91.1\",\"$python_runtime\":\"CPython\",\"$python_version\":\"3.11.7\",\
             \"$os\":\"Linux\",\"$os_version\":\"6.1.0\",\"$geoip_disable\":true,\"$is_server\":true}},\
             \"timestamp\":\"{sent_at}\",\"uuid\":\"{uuid}\"}}",
            plan = ["free", "team", "enterprise"][company % 3],
            duration = rng.random_range(5..5000),
        ));
    }
    body.push_str(&format!("],\"historical_migration\":false,\"sent_at\":\"{sent_at}\",\"api_key\":\"{PROJECT_KEY}\"}}"));
    body.into_bytes()
}

pub fn data_dir(events: usize) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target)
        .join("bench-data")
        .join(format!("demo-{events}"))
}

/// The demo data set, built once per size.
pub fn build(events: usize) -> PathBuf {
    let dir = data_dir(events);
    let done = dir.join("complete");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("building {events} events in {} (once)…", dir.display());
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["demo", "--events", &events.to_string(), "--data-dir"])
        .arg(&dir)
        .status()
        .expect("run cairn demo");
    assert!(status.success(), "cairn demo failed");
    std::fs::write(&done, "").unwrap();
    println!("built in {:.0} s", started.elapsed().as_secs_f64());
    dir
}

/// What a load run measured.
pub struct Load {
    /// Per-request latency in microseconds.
    pub latencies: hdrhistogram::Histogram<u64>,
    pub failures: usize,
    pub elapsed: Duration,
}

impl Load {
    /// Latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latencies.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.max() as f64 / 1000.0
    }
}

/// Sends requests `0..requests` from `clients` threads, each with its own
/// HTTP client; `send(client, i)` answers whether request `i` succeeded.
pub fn drive<F>(clients: usize, requests: usize, send: F) -> Load
where
    F: Fn(&reqwest::blocking::Client, usize) -> bool + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let send = Arc::new(send);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(hdrhistogram::Histogram::<u64>::new(3).unwrap()));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (send, next, failures, latencies) = (
                send.clone(),
                next.clone(),
                failures.clone(),
                latencies.clone(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                let mut local = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let sent = Instant::now();
                    let ok = send(&client, i);
                    local.record(sent.elapsed().as_micros() as u64).unwrap();
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.lock().unwrap().add(local).unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed();
    let latencies = std::mem::replace(
        &mut *latencies.lock().unwrap(),
        hdrhistogram::Histogram::new(3).unwrap(),
    );
    Load {
        latencies,
        failures: failures.load(Ordering::Relaxed),
        elapsed,
    }
}
