//! What the benchmark programs share: a fresh `cairn` binary on a free

// Each benchmark program uses a subset of these.
#![allow(dead_code)]
//! loopback port, command-line numbers, and the server's peak memory.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Request;
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
    dir: PathBuf,
    /// Options of `cairn serve` besides the address and data directory.
    args: Vec<String>,
    /// The temporary data directory, removed with the server (none for a
    /// directory of the caller's).
    _data: Option<tempfile::TempDir>,
}

impl BenchServer {
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts on a fresh data directory with `args` as well.
    pub fn start_with(args: Vec<String>) -> Self {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_path_buf();
        Self::start_in_with(Some(data), &dir, args)
    }

    /// Starts on `dir`, whose lifetime `data` holds.
    pub fn start_in(data: tempfile::TempDir, dir: &Path) -> Self {
        Self::start_in_with(Some(data), dir, Vec::new())
    }

    /// Starts on `dir`, which stays when the server stops.
    pub fn start_on(dir: &Path) -> Self {
        Self::start_in_with(None, dir, Vec::new())
    }

    fn start_in_with(data: Option<tempfile::TempDir>, dir: &Path, args: Vec<String>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let child = spawn(&base, dir, &args);
        wait_healthy(&base);
        Self {
            base,
            child,
            dir: dir.to_path_buf(),
            args,
            _data: data,
        }
    }

    /// Stops the server as an operator would (SIGTERM, then it drains its
    /// queue) and starts it again on the same data directory and port.
    /// Returns how long stopping took and how long from the new process's
    /// start until `/_health` answered 200.
    pub fn restart(&mut self) -> (Duration, Duration) {
        let stopping = Instant::now();
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal cairn");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "cairn stopped with {status}");
        let stopped = stopping.elapsed();
        let starting = Instant::now();
        self.child = spawn(&self.base, &self.dir, &self.args);
        wait_healthy(&self.base);
        (stopped, starting.elapsed())
    }

    /// Bytes the data directory's files hold.
    pub fn data_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
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
        process_memory_mib(self.child.id(), field)
    }
}

/// Bytes the files under `dir` hold.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A process's memory by its `/proc/PID/status` field (`VmRSS:`, `VmHWM:`).
pub fn process_memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(base: &str, dir: &Path, args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "serve",
            "--bind",
            base.trim_start_matches("http://"),
            "--data-dir",
        ])
        .arg(dir)
        .args(args)
        .env("CAIRN_PROJECT_API_KEY", PROJECT_KEY)
        .env("CAIRN_PERSONAL_API_KEY", PERSONAL_KEY)
        .env("CAIRN_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start cairn")
}

/// A metric's value from the `/metrics` of the server at `base` (the first
/// series named so).
pub fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::blocking::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(PERSONAL_KEY)
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Waits until `/_health` answers 200.
fn wait_healthy(base: &str) {
    let client = reqwest::blocking::Client::new();
    let ready = Instant::now();
    while !client
        .get(format!("{base}/_health"))
        .send()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            ready.elapsed() < Duration::from_secs(600),
            "cairn did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
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

/// A POST of `body` to `path` for [`drive`].
pub fn post(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

/// Sends requests `0..requests` over `clients` keep-alive HTTP/1.1
/// connections to `base`, all driven by one thread, as wrk does: the load
/// generator shares the machine with the server, and a thread (and runtime)
/// per client would take the cores the server is measured on. `request(i)`
/// builds request `i`; it succeeds when answered 200 with a whole body.
pub fn drive<F>(base: &str, clients: usize, requests: usize, request: F) -> Load
where
    F: Fn(usize) -> Request<Full<Bytes>> + 'static,
{
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    let address: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let request = Rc::new(request);
    let next = Rc::new(Cell::new(0));
    let failures = Rc::new(Cell::new(0));
    let latencies = Rc::new(RefCell::new(
        hdrhistogram::Histogram::<u64>::new(3).unwrap(),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    for _ in 0..clients {
        let (request, next, failures, latencies) = (
            request.clone(),
            next.clone(),
            failures.clone(),
            latencies.clone(),
        );
        local.spawn_local(async move {
            let mut sender = None;
            loop {
                let i = next.get();
                if i >= requests {
                    break;
                }
                next.set(i + 1);
                if sender.is_none() {
                    sender = connect(address).await;
                }
                let sent = Instant::now();
                let ok = match sender.as_mut() {
                    // A hung server counts as a failure rather than hanging the bench.
                    Some(connection) => tokio::time::timeout(
                        Duration::from_secs(60),
                        exchange(connection, request(i)),
                    )
                    .await
                    .unwrap_or(false),
                    None => false,
                };
                latencies
                    .borrow_mut()
                    .record(sent.elapsed().as_micros() as u64)
                    .unwrap();
                if !ok {
                    failures.set(failures.get() + 1);
                    // Start over on a fresh connection.
                    sender = None;
                }
            }
        });
    }
    runtime.block_on(local);
    let elapsed = started.elapsed();
    let latencies = latencies.replace(hdrhistogram::Histogram::new(3).unwrap());
    Load {
        latencies,
        failures: failures.get(),
        elapsed,
    }
}

type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(address: SocketAddr) -> Option<Connection> {
    let stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::task::spawn_local(connection);
    Some(sender)
}

async fn exchange(connection: &mut Connection, request: Request<Full<Bytes>>) -> bool {
    use http_body_util::BodyExt;
    match connection.send_request(request).await {
        Ok(response) => {
            let ok = response.status() == 200;
            response.into_body().collect().await.is_ok() && ok
        }
        Err(_) => false,
    }
}
