//! Black-box harness: starts the real `cairn` binary on a free port with a
//! temporary data directory and talks to it over HTTP.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

#[path = "../../../cairn-store/tests/support/clickhouse.rs"]
pub mod clickhouse;

/// The tests `clickhouse_suite` includes run each server with a 2-shard
/// ClickHouse cluster behind it: the same black-box assertions, on the
/// other engine.
fn on_clickhouse() -> bool {
    module_path!().starts_with("clickhouse_suite::")
}

pub const PROJECT_KEY: &str = "phc_test_project_key_0123456789";
pub const PERSONAL_KEY: &str = "phx_test_personal_key_0123456789";

pub struct Server {
    child: Option<Child>,
    /// The ClickHouse cluster the server runs insights on, in the suite
    /// that runs the black-box tests on ClickHouse.
    clickhouse: Option<clickhouse::ClickHouse>,
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    port: u16,
    extra_args: Vec<String>,
    pub client: Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`
/// (Linux's /proc; elsewhere the answer on the port is believed).
fn listens(pid: u32, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    // Sockets listening (state 0A) on the port, by inode.
    let sockets: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode = fields.get(9)?;
            (local_port == port && *fields.get(3)? == "0A").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
    })
}

impl Server {
    /// `POST query/` with `query` as the insight: the status and the body.
    pub fn query(&self, query: Value) -> (u16, Value) {
        let response = self
            .authed(self.client.post(self.api("/query/")))
            .json(&json!({ "query": query }))
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    /// The answer to an insight query that must succeed.
    pub fn answer(&self, query: Value) -> Value {
        let (status, body) = self.query(query.clone());
        assert_eq!(status, 200, "{query} -> {body}");
        body
    }

    /// The server's process id (the binary runs as the test's child).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        Self::start_in(data_dir, Some(temp), extra_args)
    }

    /// Starts with its data in `data_dir` (kept by `temp`, if given).
    pub fn start_in(
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        extra_args: &[&str],
    ) -> Self {
        let port = free_port();
        let mut extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let clickhouse = on_clickhouse().then(|| {
            let cluster = clickhouse::ClickHouse::start(2);
            let urls: Vec<String> = (0..2).map(|s| cluster.http_url(s)).collect();
            extra_args.extend([
                "--clickhouse-url".into(),
                urls.join(","),
                "--clickhouse-cluster".into(),
                clickhouse::CLUSTER.into(),
            ]);
            cluster
        });
        let mut server = Server {
            child: None,
            clickhouse,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            _temp: temp,
            port,
            extra_args,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                // Below the shortest keep-alive a test gives the server
                // (`--request-timeout 2`), so a request never goes out on a
                // connection the server is closing at that moment.
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
        };
        server.spawn();
        server
    }

    /// Starts again on the same data directory with `extra_args` instead.
    pub fn respawn_with(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// Starts (again) on the same port and data directory.
    pub fn spawn(&mut self) {
        self.spawn_child();
        self.wait_ready();
    }

    fn spawn_child(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("CAIRN_PROJECT_API_KEY", PROJECT_KEY)
            .env("CAIRN_PERSONAL_API_KEY", PERSONAL_KEY)
            .env("CAIRN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the cairn binary");
        self.child = Some(child);
    }

    /// Waits until this server answers. The port was free when chosen, but
    /// a concurrent test may take it first: then this server cannot bind
    /// and another answers on the port, so readiness is only believed of
    /// the socket this child holds, and a child that exits before it is
    /// ready is started again on a new port.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut restarts = 0;
        while Instant::now() < deadline {
            let pid = self.pid();
            if listens(pid, self.port) {
                if let Ok(response) = self.client.get(self.url("/_health")).send() {
                    if response.status().is_success() {
                        return;
                    }
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                if restarts == 3 {
                    panic!("cairn exited before it was ready: {status}");
                }
                restarts += 1;
                self.port = free_port();
                self.base = format!("http://127.0.0.1:{}", self.port);
                self.spawn_child();
                continue;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cairn did not become ready within 60 s");
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        self.authed(self.client.get(self.url("/metrics")))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// SIGTERM, as a service manager stops it; waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
            child.wait().unwrap();
        }
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("/api/projects/1{path}"))
    }

    pub fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        request.bearer_auth(PERSONAL_KEY)
    }

    /// GET on the private API of project 1, expecting success.
    pub fn get(&self, path: &str) -> Value {
        let response = self.authed(self.client.get(self.api(path))).send().unwrap();
        let status = response.status();
        let body = response.text().unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn post_batch(&self, batch: Value) -> Response {
        self.client
            .post(self.url("/batch/"))
            .json(&json!({"api_key": PROJECT_KEY, "batch": batch}))
            .send()
            .unwrap()
    }

    /// Posts a body to `/batch/` exactly as given.
    pub fn post_batch_raw(&self, body: String) -> Response {
        self.client
            .post(self.url("/batch/"))
            .body(body)
            .send()
            .unwrap()
    }

    /// Sends events and requires a 200.
    pub fn capture(&self, batch: Value) {
        let response = self.post_batch(batch);
        let status = response.status();
        assert_eq!(status, 200, "capture failed: {}", response.text().unwrap());
    }

    pub fn events(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/events/?limit=1000&{query}"))["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn person(&self, distinct_id: &str) -> Option<Value> {
        let response = self
            .authed(
                self.client
                    .get(self.api(&format!("/persons/{distinct_id}/"))),
            )
            .send()
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success());
        Some(response.json().unwrap())
    }

    pub fn group(&self, index: u8, key: &str) -> Option<Value> {
        let response = self
            .authed(self.client.get(self.api("/groups/find")))
            .query(&[
                ("group_type_index", index.to_string()),
                ("group_key", key.to_string()),
            ])
            .send()
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success());
        Some(response.json().unwrap())
    }

    /// Every result of a paged private-API listing, following `next`.
    pub fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut results = Vec::new();
        let mut url = self.api(path);
        loop {
            let page: Value = self
                .authed(self.client.get(&url))
                .send()
                .unwrap()
                .json()
                .unwrap();
            results.extend(page["results"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => return results,
            }
        }
    }

    pub fn warnings(&self) -> Vec<Value> {
        let body = self.get("/ingestion_warnings/");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|summary| summary["warnings"].as_array().unwrap().clone())
            .collect()
    }

    /// Creates a feature flag through the private API, expecting 201.
    pub fn create_flag(&self, flag: Value) -> Value {
        let response = self
            .authed(self.client.post(self.api("/feature_flags/")))
            .json(&flag)
            .send()
            .unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    pub fn warning_types(&self) -> Vec<String> {
        self.warnings()
            .iter()
            .map(|w| w["type"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn event(name: &str, distinct_id: &str, properties: Value) -> Value {
    json!({"event": name, "distinct_id": distinct_id, "properties": properties})
}

/// A person's properties without the `$creator_event_uuid` every person gets.
pub fn properties_without_creator(person: &Value) -> Value {
    let mut properties = person["properties"].clone();
    properties
        .as_object_mut()
        .unwrap()
        .remove("$creator_event_uuid");
    properties
}

/// `(VmRSS, VmHWM)` of a process in kB: its memory now and the most so far.
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds a process has used (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// An event at a given time.
pub fn event_at(name: &str, distinct_id: &str, timestamp: &str, properties: Value) -> Value {
    let mut e = event(name, distinct_id, properties);
    e["timestamp"] = json!(timestamp);
    e
}
