//! Checking an API token someone presented: checksum, SHA-256, one indexed
//! read (or a cache hit), then the verdict of [`crate::core::verdict`].

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
/// database read.
pub async fn inspect(
    store: &dyn Store,
    presented: &str,
    workspace: Option<Id<Workspace>>,
    wanted: &[Scope],
    now: Timestamp,
) -> Result<Inspection, StoreError> {
    if token_format::check(presented).is_err() {
        return Ok(Inspection {
            verdict: Verdict::Malformed,
            grant: None,
        });
    }
    let found = store.token_grant(TokenHash::of(presented)).await?;
    let verdict = verdict::judge(found.as_deref(), workspace, wanted, now);
    Ok(Inspection {
        verdict,
        grant: found.filter(|_| verdict.shows_token()),
    })
}
