//! Checking an API token someone presented: checksum, SHA-256, one indexed
//! read (or a cache hit), then its state and its owner's grants now.

use std::sync::Arc;

use crate::core::model::TokenGrant;
use crate::core::time::Timestamp;
use crate::core::token_format::{self, TokenHash};
use crate::core::verdict::{self, Verdict};
use crate::store::{Store, StoreError};

pub enum Inspection {
    /// Not a token at all: wrong shape or checksum. No database read.
    Malformed,
    NotFound,
    Found(Arc<TokenGrant>, Verdict),
}

pub async fn inspect(
    store: &dyn Store,
    presented: &str,
    now: Timestamp,
) -> Result<Inspection, StoreError> {
    if token_format::check(presented).is_err() {
        return Ok(Inspection::Malformed);
    }
    Ok(match store.token_grant(TokenHash::of(presented)).await? {
        None => Inspection::NotFound,
        Some(grant) => {
            let verdict = verdict::judge(&grant, now);
            Inspection::Found(grant, verdict)
        }
    })
}
