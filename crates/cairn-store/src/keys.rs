//! API keys. Project keys (`phc_`) are public by design — they ship inside
//! web pages — so they are stored as they are. Personal keys (`phx_`) open
//! the private API and are stored only as SHA-256 hashes.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

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

/// A new project's key: `chosen` if it has the shape of one, else a fresh one.
pub(crate) fn project_key(chosen: Option<String>) -> Result<String> {
    let key = chosen.unwrap_or_else(new_project_key);
    if !key.starts_with(PROJECT_KEY_PREFIX) || key.len() > 64 || !key.is_ascii() {
        return Err(StoreError::Conflict(format!(
            "a project API key must start with {PROJECT_KEY_PREFIX} and be at most 64 ASCII characters"
        )));
    }
    Ok(key)
}

/// A new personal key's secret: `chosen` if it has the shape of one, else a
/// fresh one.
pub(crate) fn personal_key(chosen: Option<String>) -> Result<String> {
    let secret = chosen.unwrap_or_else(new_personal_key);
    if !secret.starts_with(PERSONAL_KEY_PREFIX) {
        return Err(StoreError::Conflict(format!(
            "a personal API key must start with {PERSONAL_KEY_PREFIX}"
        )));
    }
    Ok(secret)
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
