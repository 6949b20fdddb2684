//! The Node project (posthog-node, posthog-js, playwright-core from npm) and
//! the Chromium that the JavaScript compatibility tests use; each test crate
//! includes this file (`#[path]`). Both are made once per target directory
//! by `scripts/node-compat` and `scripts/chromium`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn run(script: &str, args: &[&str]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let output = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(
        output.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The directory whose `node_modules` holds the pinned SDKs.
pub fn node_project() -> &'static PathBuf {
    static PROJECT: OnceLock<PathBuf> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("node-compat");
        run("node-compat", &[dir.to_str().unwrap()])
    })
}

/// Debian's Chromium, for playwright-core.
pub fn chromium() -> &'static PathBuf {
    static CHROMIUM: OnceLock<PathBuf> = OnceLock::new();
    CHROMIUM.get_or_init(|| run("chromium", &[]))
}

/// Runs `tests/compat/<script>` with Node, with `CAIRN_NODE_PROJECT` (and
/// `CAIRN_CHROMIUM`) set, and parses the JSON it prints.
pub fn run_node(script: &str, args: &[&str], browser: bool) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let mut command = Command::new("node");
    command
        .arg(path)
        .args(args)
        .env("CAIRN_NODE_PROJECT", node_project());
    if browser {
        command.env("CAIRN_CHROMIUM", chromium());
    }
    let output = command.output().expect("run node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stderr}"))
}
