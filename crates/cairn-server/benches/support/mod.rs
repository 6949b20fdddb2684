//! What the benchmark programs share: a fresh `cairn` binary on a free
//! loopback port, command-line numbers, and the server's peak memory.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
            .arg(data.path())
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
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
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
