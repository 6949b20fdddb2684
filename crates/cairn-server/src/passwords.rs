//! Account passwords, kept as Argon2id hashes. Hashing costs tens of
//! milliseconds of CPU and ~19 MB on purpose, so the server does it on the
//! blocking pool, a few at a time: a flood of sign-ins then waits for its
//! turn instead of taking the async workers that capture and `/flags` need.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// How long a sign-in waits for a turn before it is told to come back.
const MAX_WAIT: Duration = Duration::from_secs(10);

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| format!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash no password matches in practice, checked for emails that have no
/// account, so that a wrong email takes as long as a wrong password and the
/// answer's timing does not tell which emails exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let password: [u8; 16] = rand::random();
    hash_password(&format!("{password:?}")).expect("hashing a random password")
});

/// Why a password check could not run now.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "the server is busy checking other passwords; try again in {} seconds",
        MAX_WAIT.as_secs()
    )]
    Busy,
    #[error("{0}")]
    Failed(String),
}

/// Runs password hashing and verification off the async workers, at most
/// `permits` at once.
pub struct PasswordWork {
    permits: Arc<Semaphore>,
}

impl Default for PasswordWork {
    /// Half the cores (at least one), so that the others keep serving.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new((cores / 2).max(1))),
        }
    }
}

impl PasswordWork {
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let turn = tokio::time::timeout(MAX_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        // The turn ends with the work, not with the request: a client that
        // hangs up cannot free its turn while its hash still runs.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work()
        })
        .await
        .map_err(|e| PasswordError::Failed(format!("password task failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(PasswordError::Failed)
    }

    /// Whether `password` matches `hash`; with no hash (no such account) it
    /// is checked against a dummy one, which takes just as long.
    pub async fn matches(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move || match hash {
            Some(hash) => password_matches(&password, &hash),
            None => {
                password_matches(&password, &DUMMY_HASH);
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("wrong", &hash));
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn checks_run_on_the_blocking_pool() {
        let work = PasswordWork::default();
        let hash = work.hash("correct horse".into()).await.unwrap();
        assert!(work
            .matches("correct horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!work.matches("correct horse".into(), None).await.unwrap());
    }
}
