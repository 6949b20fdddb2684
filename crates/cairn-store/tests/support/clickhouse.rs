//! Real ClickHouse servers for tests: one process per shard, forming a
//! cluster named [`CLUSTER`], each run out of the `chdb-core` wheel by
//! `tests/clickhouse/serve.py` (see there for how and why).
//!
//! The wheel is installed once into a venv at `$CARGO_TARGET_DIR/chdb-venv`
//! (or `target/chdb-venv` in the workspace): the first test to need it
//! creates it, which takes `python3` and network access to PyPI.
//!
//! ```ignore
//! mod support;
//! use support::clickhouse::ClickHouse;
//!
//! let ch = ClickHouse::start(2);
//! assert_eq!(ch.query(0, "SELECT 1"), "1\n");
//! ```

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The wheel, pinned: it is the ClickHouse version the tests run against.
const CHDB_CORE: &str = "chdb-core==26.9.0";
/// The cluster every server's `remote_servers` defines, over all shards.
pub const CLUSTER: &str = "cairn";
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts retried with fresh ports when another process took one first.
const START_ATTEMPTS: usize = 3;

/// A running cluster: its processes are killed when this is dropped.
pub struct ClickHouse {
    shards: Vec<Shard>,
    agent: ureq::Agent,
    /// Working and data directories; removed after the processes are gone.
    dir: tempfile::TempDir,
}

struct Shard {
    /// The python process; its stdin is a pipe from this process, so it also
    /// exits when the test process dies without running `Drop`.
    child: Child,
    http_port: u16,
    tcp_port: u16,
    /// The server's `displayName()`, to tell it from a stranger on its port.
    name: String,
    stderr: PathBuf,
}

enum StartError {
    /// A port was taken between choosing it and the server binding it.
    PortTaken(String),
    Failed(String),
}

impl ClickHouse {
    /// Starts `shards` servers forming the cluster [`CLUSTER`] and waits until
    /// each answers over HTTP.
    pub fn start(shards: usize) -> Self {
        assert!(shards > 0, "a cluster needs at least one shard");
        let venv = venv();
        let mut taken = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(shards, venv) {
                Ok(clickhouse) => return clickhouse,
                Err(StartError::PortTaken(message)) => taken = message,
                Err(StartError::Failed(message)) => panic!("{message}"),
            }
        }
        panic!("ClickHouse: other processes kept taking the chosen ports:\n{taken}")
    }

    fn try_start(shards: usize, venv: &Venv) -> Result<Self, StartError> {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let start = STARTS.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix("cairn-clickhouse-")
            .tempdir()
            .expect("a temporary directory for ClickHouse");
        // From the workspace's crates, so other crates' tests include this file too.
        let serve =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../cairn-store/tests/clickhouse/serve.py");

        // Every port at once, so that they differ; the servers bind them soon
        // after (and the rare loss of that race is retried).
        let ports: Vec<(u16, u16)> = {
            let listeners: Vec<TcpListener> = (0..2 * shards)
                .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
                .collect();
            let port = |i: usize| listeners[i].local_addr().unwrap().port();
            (0..shards)
                .map(|s| (port(2 * s), port(2 * s + 1)))
                .collect()
        };
        let cluster: String = ports
            .iter()
            .map(|(_, tcp)| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
                )
            })
            .collect();

        // Built up as the processes start, so that an early return kills the
        // ones already running.
        let mut clickhouse = ClickHouse {
            shards: Vec::with_capacity(shards),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            dir,
        };
        for (shard, &(http_port, tcp_port)) in ports.iter().enumerate() {
            let work = clickhouse.dir.path().join(format!("shard{shard}"));
            let data = work.join("data");
            fs::create_dir_all(&data).unwrap();
            let name = format!("cairn-test-{}-{start}-{shard}", std::process::id());
            // Read from the working directory; without it the server would
            // listen on the default ports.
            let config = format!(
                "<clickhouse>\
                 <listen_host>127.0.0.1</listen_host>\
                 <http_port>{http_port}</http_port>\
                 <tcp_port>{tcp_port}</tcp_port>\
                 <display_name>{name}</display_name>\
                 <remote_servers><{CLUSTER}>{cluster}</{CLUSTER}></remote_servers>\
                 </clickhouse>\n"
            );
            fs::write(work.join("config.xml"), config).unwrap();
            let stderr = work.join("stderr.log");
            let child = Command::new(&venv.python)
                .arg(&serve)
                .arg(&venv.site_packages)
                .arg(&data)
                .current_dir(&work)
                .stdin(Stdio::piped())
                .stdout(File::create(work.join("stdout.log")).unwrap())
                .stderr(File::create(&stderr).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", venv.python.display()));
            clickhouse.shards.push(Shard {
                child,
                http_port,
                tcp_port,
                name,
                stderr,
            });
        }

        let deadline = Instant::now() + START_TIMEOUT;
        for shard in 0..shards {
            clickhouse.wait_until_ready(shard, deadline)?;
        }
        Ok(clickhouse)
    }

    fn wait_until_ready(&mut self, shard: usize, deadline: Instant) -> Result<(), StartError> {
        let url = format!(
            "{}/?query=SELECT%20displayName()&default_format=TabSeparated",
            self.http_url(shard)
        );
        loop {
            let s = &mut self.shards[shard];
            if let Some(status) = s.child.try_wait().unwrap() {
                let stderr = tail(&s.stderr);
                let message = format!(
                    "ClickHouse shard {shard} (http {}, tcp {}) exited ({status}) before \
                     answering; its stderr:\n{stderr}",
                    s.http_port, s.tcp_port
                );
                return Err(if stderr.contains("Address already in use") {
                    StartError::PortTaken(message)
                } else {
                    StartError::Failed(message)
                });
            }
            let answer = self
                .agent
                .get(&url)
                .config()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok());
            if answer.is_some_and(|name| name.trim() == self.shards[shard].name) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let s = &self.shards[shard];
                return Err(StartError::Failed(format!(
                    "ClickHouse shard {shard} did not answer on {url} within {START_TIMEOUT:?}; \
                     its stderr:\n{}",
                    tail(&s.stderr)
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// `http://127.0.0.1:PORT`, the shard's HTTP interface.
    pub fn http_url(&self, shard: usize) -> String {
        format!("http://127.0.0.1:{}", self.shards[shard].http_port)
    }

    /// The shard's native-protocol port (on 127.0.0.1).
    pub fn tcp_port(&self, shard: usize) -> u16 {
        self.shards[shard].tcp_port
    }

    /// The servers' process ids, by shard.
    pub fn pids(&self) -> Vec<u32> {
        self.shards.iter().map(|s| s.child.id()).collect()
    }

    /// Runs `sql` on `shard` over HTTP and returns the answer, which is
    /// TabSeparated unless `sql` says `FORMAT` (the server's own default,
    /// chdb's, is CSV). Panics with ClickHouse's message if it fails.
    pub fn query(&self, shard: usize, sql: &str) -> String {
        let url = format!("{}/?default_format=TabSeparated", self.http_url(shard));
        let mut response = self
            .agent
            .post(&url)
            .send(sql)
            .unwrap_or_else(|e| panic!("ClickHouse shard {shard}: {e}\nquery: {sql}"));
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .unwrap_or_else(|e| panic!("ClickHouse shard {shard}: reading the answer: {e}"));
        assert!(
            status == 200,
            "ClickHouse shard {shard} answered {status}: {body}\nquery: {sql}"
        );
        body
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        for shard in &mut self.shards {
            let _ = shard.child.kill();
            let _ = shard.child.wait();
        }
    }
}

/// The last few KB of a log file.
fn tail(path: &Path) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(4000)..]);
    if text.trim().is_empty() {
        "(empty)".to_string()
    } else {
        text.into_owned()
    }
}

/// The venv holding the chdb-core wheel.
struct Venv {
    python: PathBuf,
    /// `VENV/lib/python3.*/site-packages`
    site_packages: PathBuf,
}

/// The venv, installed first if need be (once per test process; across
/// processes, under a file lock).
fn venv() -> &'static Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = target_dir().join("chdb-venv");
        let site_packages = install_venv(&dir);
        Venv {
            python: dir.join("bin/python"),
            site_packages,
        }
    })
}

fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    // A relative CARGO_TARGET_DIR is taken to be relative to the workspace;
    // an absolute one replaces it.
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// `VENV/lib/python3.*/site-packages` if the wheel is installed there.
fn installed(venv: &Path) -> Option<PathBuf> {
    fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("site-packages"))
        .find(|site| site.join("chdb/_chdb.abi3.so").is_file())
}

/// Finds or creates the venv; returns its site-packages. It is built under
/// another name and renamed into place once complete, so a venv that exists
/// is whole; the lock keeps concurrent test processes from building it at
/// the same time.
fn install_venv(venv: &Path) -> PathBuf {
    if let Some(site) = installed(venv) {
        return site;
    }
    let target = venv.parent().unwrap();
    fs::create_dir_all(target).unwrap_or_else(|e| panic!("creating {}: {e}", target.display()));
    let lock_path = target.join("chdb-venv.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    // Another process may have built it while this one waited for the lock.
    if let Some(site) = installed(venv) {
        return site;
    }

    let partial = target.join("chdb-venv.partial");
    // Left over by an interrupted install, or an incomplete venv.
    let _ = fs::remove_dir_all(&partial);
    let _ = fs::remove_dir_all(venv);
    // Straight to stderr, past the test harness's capture: the first run
    // waits on this.
    let _ = writeln!(
        std::io::stderr(),
        "ClickHouse tests: installing {CHDB_CORE} (~180 MB download) into {}",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&partial));
    run(Command::new(partial.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        CHDB_CORE,
    ]));
    fs::rename(&partial, venv)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", partial.display(), venv.display()));
    installed(venv).unwrap_or_else(|| {
        panic!(
            "{} has no chdb/_chdb.abi3.so after installing {CHDB_CORE}",
            venv.display()
        )
    })
}

fn run(command: &mut Command) {
    let shown = format!("{command:?}");
    let output = command.output().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!(
                "the ClickHouse tests need python3 (with venv and pip) on PATH \
                 to install {CHDB_CORE}: {shown}: {e}"
            )
        }
        panic!("{shown}: {e}")
    });
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
