//! Instance settings and the session signing key.

use postgres::GenericClient;

use super::audit;
use crate::core::audit::{Actor, Change, Target};
use crate::core::settings::{Settings, SettingsPatch};
use crate::random;
use crate::store::{Result, StoreError};

pub fn get(db: &mut impl GenericClient) -> Result<Settings> {
    let row = db.query_one(
        "SELECT default_ttl_seconds, max_ttl_seconds, allow_no_expiry, reset_grace_seconds,
                purge_after_seconds, allow_signup, token_prefix, audit_retention_days
         FROM settings WHERE id = 1",
        &[],
    )?;
    Ok(Settings {
        default_ttl_seconds: row.try_get(0)?,
        max_ttl_seconds: row.try_get(1)?,
        allow_no_expiry: row.try_get(2)?,
        reset_grace_seconds: row.try_get(3)?,
        purge_after_seconds: row.try_get(4)?,
        allow_signup: row.try_get(5)?,
        token_prefix: row.try_get(6)?,
        audit_retention_days: row.try_get(7)?,
    })
}

pub fn update(tx: &mut impl GenericClient, patch: &SettingsPatch, by: &Actor) -> Result<Settings> {
    let next = get(tx)?.apply(patch).map_err(StoreError::InvalidSettings)?;
    tx.execute(
        "UPDATE settings SET default_ttl_seconds = $1, max_ttl_seconds = $2, allow_no_expiry = $3,
             reset_grace_seconds = $4, purge_after_seconds = $5, allow_signup = $6, token_prefix = $7,
             audit_retention_days = $8
         WHERE id = 1",
        &[
            &next.default_ttl_seconds,
            &next.max_ttl_seconds,
            &next.allow_no_expiry,
            &next.reset_grace_seconds,
            &next.purge_after_seconds,
            &next.allow_signup,
            &next.token_prefix,
            &next.audit_retention_days,
        ],
    )?;
    // Settings hold no secret: the new values are the details.
    let mut change = Change::new(
        "settings.update",
        None,
        Target::named("settings", "instance"),
    );
    if let Ok(serde_json::Value::Object(values)) = serde_json::to_value(&next) {
        change.details = values;
    }
    audit::record(tx, by, &change)?;
    Ok(next)
}

const SIGNING_KEY: &str = "session_signing_key";

/// Nodes starting together may both make a key: the insert keeps the
/// first, and every node reads back the one kept.
pub fn signing_key(tx: &mut impl GenericClient) -> Result<Vec<u8>> {
    let key = random::bytes::<32>().map_err(|e| StoreError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&SIGNING_KEY, &key.as_slice()],
    )?;
    Ok(tx
        .query_one("SELECT value FROM meta WHERE key = $1", &[&SIGNING_KEY])?
        .try_get(0)?)
}
