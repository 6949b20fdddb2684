//! API keys. Project keys (`phc_`) are public by design — they ship inside
//! web pages — so they are stored as they are. Personal keys (`phx_`) open
//! the private API and are stored only as SHA-256 hashes.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

pub const PROJECT_KEY_PREFIX: &str = "phc_";
pub const PERSONAL_KEY_PREFIX: &str = "phx_";

fn random_key(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 43)
    )
}

pub fn new_project_key() -> String {
    random_key(PROJECT_KEY_PREFIX)
}

pub fn new_personal_key() -> String {
    random_key(PERSONAL_KEY_PREFIX)
}

pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A personal key as listed: its prefix and last four characters.
pub(crate) fn mask(secret: &str) -> String {
    let tail = &secret[secret.len().saturating_sub(4)..];
    format!(
        "{}...{tail}",
        &secret[..PERSONAL_KEY_PREFIX.len().min(secret.len())]
    )
}
