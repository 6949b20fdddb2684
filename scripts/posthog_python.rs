//! The posthog-python interpreter for tests that drive the real SDK; each
//! test crate includes this file (`#[path]`), so both use one virtualenv,
//! made by `scripts/posthog-python-venv` once per target directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The SDK release the compatibility tests pin.
pub const VERSION: &str = "7.91.1";

pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/posthog-python-venv");
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("posthog-python-venv");
        let output = Command::new(script)
            .arg(venv)
            .arg(VERSION)
            .output()
            .expect("run scripts/posthog-python-venv");
        assert!(
            output.status.success(),
            "making the posthog-python virtualenv failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}
