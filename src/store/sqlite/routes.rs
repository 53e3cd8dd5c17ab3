//! Forward-auth rules: one JSON document per workspace, read whole and
//! replaced whole.

use super::audit;
use crate::core::audit::{Actor, Change, Target};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::workspaces::ensure_known;
use crate::core::forward_auth::RuleDocument;
use crate::core::ids::Id;
use crate::core::model::Workspace;
use crate::core::time::Timestamp;
use crate::store::{IfMatch, Result, StoreError, StoredRoutes, check_rule_scopes};

pub fn get(conn: &Connection, workspace: Id<Workspace>) -> Result<Option<StoredRoutes>> {
    let row: Option<(Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT r.version, r.document
             FROM workspaces w LEFT JOIN route_documents r ON r.workspace_id = w.id
             WHERE w.id = ?1",
        )?
        .query_row([workspace], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((Some(version), Some(text))) => Ok(Some(StoredRoutes {
            document: parse(&text)?,
            version,
        })),
        Some(_) => Ok(Some(StoredRoutes {
            document: RuleDocument::default(),
            version: 0,
        })),
    }
}

/// A stored document is one this server validated; one that no longer
/// reads is a fault, not something to guess at.
fn parse(text: &str) -> Result<RuleDocument> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| StoreError::Internal(format!("stored rules are not JSON: {err}")))?;
    RuleDocument::from_json(&value)
        .map_err(|problems| StoreError::Internal(format!("stored rules are invalid: {problems:?}")))
}

pub fn put(
    tx: &Transaction,
    workspace: Id<Workspace>,
    document: RuleDocument,
    expected: Option<&IfMatch>,
    now: Timestamp,
    by: &Actor,
) -> Result<StoredRoutes> {
    let current = get(tx, workspace)?.ok_or(StoreError::NotFound)?;
    if expected.is_some_and(|expected| !expected.allows(current.version)) {
        return Err(StoreError::PreconditionFailed);
    }
    check_rule_scopes(&document, |scopes| ensure_known(tx, workspace, scopes))?;
    let version = current.version + 1;
    tx.execute(
        "INSERT INTO route_documents (workspace_id, version, document, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id) DO UPDATE
         SET version = excluded.version, document = excluded.document,
             updated_at = excluded.updated_at",
        params![workspace, version, document.to_json().to_string(), now],
    )?;
    let change = Change::new(
        "routes.update",
        Some(workspace),
        Target::new("routes", workspace, "forward-auth rules"),
    )
    .with("version", version)
    .with("rules", document.rules.len());
    audit::record(tx, by, &change)?;
    Ok(StoredRoutes { document, version })
}
