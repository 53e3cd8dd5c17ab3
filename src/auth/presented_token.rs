//! Checking an API token someone presented: SHA-256 and a cache hit, or
//! the format's checksum and one indexed read; then the verdict of
//! [`crate::core::verdict`].

use std::sync::Arc;

use crate::core::ids::Id;
use crate::core::model::{TokenGrant, Workspace};
use crate::core::scopes::Scope;
use crate::core::time::Timestamp;
use crate::core::token_format::{self, TokenHash};
use crate::core::verdict::{self, Verdict};
use crate::store::{Store, StoreError};

pub struct Inspection {
    pub verdict: Verdict,
    /// The token, when the verdict shows it to the caller.
    pub grant: Option<Arc<TokenGrant>>,
}

/// The verdict on `presented` for a caller confined to `workspace` (if
/// any), asking for `wanted` scopes on top. A malformed token costs no
/// database read. A token whose hash is in the cache needs no format
/// check: it hashes like a token tokenward made, so it is that token.
pub async fn inspect(
    store: &dyn Store,
    presented: &str,
    workspace: Option<Id<Workspace>>,
    wanted: &[Scope],
    now: Timestamp,
) -> Result<Inspection, StoreError> {
    let malformed = Inspection {
        verdict: Verdict::Malformed,
        grant: None,
    };
    // Bounds what is hashed.
    if presented.len() > token_format::MAX_LEN {
        return Ok(malformed);
    }
    let hash = TokenHash::of(presented);
    let found = match store.token_grant_in_memory(&hash) {
        Some(grant) => Some(grant),
        None if token_format::check(presented).is_err() => return Ok(malformed),
        None => store.token_grant(hash).await?,
    };
    let verdict = verdict::judge(found.as_deref(), workspace, wanted, now);
    Ok(Inspection {
        verdict,
        grant: found.filter(|_| verdict.shows_token()),
    })
}
