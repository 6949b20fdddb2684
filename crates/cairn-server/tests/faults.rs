//! Storage faults: a full disk makes capture answer 503 (SDKs retry)
//! without storing any part of the refused requests, and capture recovers
//! by itself when space returns; a read-only data directory, or a memory
//! limit that is not a size, stops the server at start with a message naming
//! it. The disk tests run on small tmpfs mounts, so they need root (as CI has).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, PROJECT_KEY};
use serde_json::{json, Value};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .ok()?;
        status.success().then_some(Self(dir))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn post(server: &Server, batch: &[Value]) -> (u16, String) {
    let response = server
        .client
        .post(server.url("/batch/"))
        .json(&json!({"api_key": PROJECT_KEY, "batch": batch}))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn fill_batch(n: usize) -> Vec<Value> {
    (0..100)
        .map(|i| {
            json!({"event": "fill", "distinct_id": format!("u{n}"), "uuid": uuid::Uuid::new_v4(),
                "properties": {"blob": "x".repeat(2_000), "n": n, "i": i}})
        })
        .collect()
}

fn stored_uuids(server: &Server) -> Vec<String> {
    server
        .all_pages("/events/?event=fill&limit=1000")
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_full_disk_is_503_and_capture_recovers() {
    let Some(disk) = Tmpfs::mount("24m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let mut server = Server::start_in(disk.path().join("data"), None, &[]);

    // Fill the disk: acknowledged batches, then 503s.
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for n in 0..2_000 {
        let batch = fill_batch(n);
        match post(&server, &batch) {
            (200, _) => acknowledged.extend(batch),
            (503, body) => {
                refusal = Some((n, batch, body));
                break;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    let (refused_n, refused, body) = refusal.expect("the disk never filled");
    assert!(
        body.contains("nothing of this request was stored"),
        "{body}"
    );
    assert!(!acknowledged.is_empty());
    // The refused request left nothing behind: no event, not even its person.
    assert_eq!(stored_uuids(&server).len(), acknowledged.len());
    let ghost = format!("u{refused_n}");
    assert!(server.person(&ghost).is_none());

    // Space returns: the client's retry succeeds, and nothing is doubled.
    disk.remount("size=256m");
    assert_eq!(post(&server, &refused).0, 200);
    let mut expected: Vec<String> = acknowledged
        .iter()
        .chain(&refused)
        .map(|e| e["uuid"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let mut stored = stored_uuids(&server);
    stored.sort();
    assert_eq!(stored, expected);

    // And the data directory opens cleanly afterwards.
    server.kill();
    server.spawn();
    assert_eq!(stored_uuids(&server).len(), expected.len());
    assert!(server.person(&ghost).is_some());
    drop(server);
}

#[test]
fn a_read_only_data_directory_is_refused_at_start_by_name() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    disk.remount("ro");
    let data_dir = disk.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&data_dir.display().to_string()), "{stderr}");
}

#[test]
fn a_memory_limit_that_is_not_a_size_is_refused_at_start_by_name() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--memory-limit",
            "lots",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("memory_limit") && stderr.contains("\"lots\""),
        "{stderr}"
    );
}
