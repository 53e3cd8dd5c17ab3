//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, one
//! lane) on a few dedicated threads, never on the async runtime and never
//! more at once than there are workers, so a burst of sign-ins cannot starve
//! the verify path.
//!
//! Each worker owns its 19 MiB of argon2 memory and reuses it for every
//! hash. Allocating it per hash on the blocking pool left a copy behind in
//! many malloc arenas: gigabytes of resident memory after a sign-in flood.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, mpsc, oneshot};

use crate::random;

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

impl HashError {
    fn from(err: impl fmt::Display) -> Self {
        HashError(err.to_string())
    }
}

/// A worker's argon2 memory, grown to the largest parameters it has met.
type Memory = Vec<Block>;
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Jobs waiting for a worker; beyond this, callers wait to queue.
const QUEUE: usize = 256;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// Runs argon2 in `memory`, growing it if `params` need more.
fn compute(
    memory: &mut Memory,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    // Every block is written before it is read, so stale contents from the
    // previous hash do not matter.
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(HashError::from)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
fn hash_in(memory: &mut Memory, password: &[u8]) -> Result<String, HashError> {
    // `Params::DEFAULT` is the OWASP recommendation for argon2id.
    let params = Params::DEFAULT;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = random::bytes::<SALT_LEN>().map_err(HashError::from)?;
    let mut out = [0u8; HASH_LEN];
    compute(memory, &argon2, &params, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(HashError::from)?,
        salt: Some(Salt::new(&salt).map_err(HashError::from)?),
        hash: Some(Output::new(&out).map_err(HashError::from)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to the PHC string `stored`, with the
/// parameters `stored` names.
fn verify_in(memory: &mut Memory, password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if compute(memory, &argon2, &params, password, salt.as_ref(), &mut out).is_err() {
        return false;
    }
    // Constant time: the comparison does not stop at the first difference.
    out.iter()
        .zip(expected.as_bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Moves the calling thread to the idle scheduling class: it runs on what
/// the request threads leave, and any of them that wakes preempts it at
/// once. When the cores are busy, sign-ins take longer rather than
/// verification. (CFS still gives idle-class threads a sliver of time, so
/// sign-ins are slowed, never starved.)
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    // SAFETY: `sched_setscheduler` reads the `sched_param` we pass for the
    // duration of the call only; pid 0 names the calling thread.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    /// Hash checked when an email is unknown, so that answer takes as long
    /// as a wrong password does.
    decoy: OnceCell<String>,
}

impl Passwords {
    /// Starts `workers` hashing threads; they stop when this is dropped.
    pub fn new(workers: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    yield_to_requests();
                    let mut memory = Memory::new();
                    loop {
                        let job = match queue.lock() {
                            Ok(mut queue) => queue.blocking_recv(),
                            Err(_) => None,
                        };
                        let Some(job) = job else { break };
                        // A failed job drops its reply channel; the worker lives on.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(%err, "cannot start a password hashing thread");
            }
        }
        Passwords {
            jobs,
            decoy: OnceCell::new(),
        }
    }

    /// One fewer than the cores, at least one.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    async fn on_worker<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = reply.send(work(memory));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| HashError("no hashing thread is running".into()))?;
        answer
            .await
            .map_err(|_| HashError("the hashing thread failed".into()))
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.on_worker(move |memory| hash_in(memory, password.expose().as_bytes()))
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
            .on_worker(move |memory| verify_in(memory, password.expose().as_bytes(), &hash))
            .await?;
        Ok(real && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

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
    fn reused_memory_agrees_with_the_reference_implementation() {
        let reference = Argon2::default();
        let mut memory = Memory::new();
        for password in [&b"first password"[..], b"second password", b""] {
            // Ours verifies with the crate's own verifier, with dirty memory.
            let ours = hash_in(&mut memory, password).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(reference.verify_password(password, &parsed).is_ok());
            // And theirs verifies with ours, with smaller custom parameters too.
            let theirs = reference.hash_password(password).unwrap().to_string();
            assert!(verify_in(&mut memory, password, &theirs));
            assert!(!verify_in(&mut memory, b"other", &theirs));
        }
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let theirs = small.hash_password(b"pw").unwrap().to_string();
        assert!(verify_in(&mut memory, b"pw", &theirs));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 2, 1, None).unwrap(),
        );
        let old = argon2i.hash_password(b"pw").unwrap().to_string();
        assert!(verify_in(&mut memory, b"pw", &old));
    }

    #[test]
    fn passwords_do_not_debug_print() {
        assert_eq!(
            format!("{:?}", Password::new("hunter2hunter2".into())),
            "Password(***)"
        );
    }
}
