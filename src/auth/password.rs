//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, one
//! lane), on the blocking thread pool and never more at once than the
//! machine has cores to spare, so a burst of sign-ins cannot starve the
//! verify path.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// A password in memory; its `Debug` form is masked.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: String) -> Self {
        Password(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Hash checked when an email is unknown, so that answer takes as long
    /// as a wrong password does.
    decoy: OnceCell<String>,
}

fn argon2() -> Argon2<'static> {
    // `Params::DEFAULT` is the OWASP recommendation for argon2id.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

impl Passwords {
    /// `concurrency` hashes may run at once; more wait their turn.
    pub fn new(concurrency: usize) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: OnceCell::new(),
        }
    }

    /// One fewer than the cores, at least one.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.off_runtime(move || {
            argon2()
                .hash_password(password.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown
    /// account) a decoy is checked so that both answers take as long.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => {
                let decoy = self
                    .decoy
                    .get_or_try_init(|| {
                        self.hash(Password::new("decoy password, never valid".into()))
                    })
                    .await?;
                (decoy.clone(), false)
            }
        };
        let matches = self
            .off_runtime(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon2()
                            .verify_password(password.expose().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(real && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let passwords = Passwords::new(1);
        let hash = passwords
            .hash(Password::new("correct horse".into()))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify(Password::new("correct horse".into()), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(Password::new("wrong horse!".into()), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(Password::new("decoy password, never valid".into()), None)
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(Password::new("anything".into()), Some("garbage".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn passwords_do_not_debug_print() {
        assert_eq!(
            format!("{:?}", Password::new("hunter2hunter2".into())),
            "Password(***)"
        );
    }
}
