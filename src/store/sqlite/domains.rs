//! Domains, each born with its own token.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{audit, tokens, workspaces};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Domain, Token, Workspace};
use crate::core::scopes::Resource;
use crate::core::time::Timestamp;
use crate::store::{DomainUsage, NewToken, Result, StoreError};

/// A domain with the number of active tokens holding `domain:<name>` or
/// `domain:<name>:read` (scopes are stored space-separated, so a padded
/// `instr` finds whole scopes only).
const USAGE_SELECT: &str = "SELECT d.id, d.name, d.created_at,
        (SELECT COUNT(*) FROM tokens t
         WHERE t.workspace_id = d.workspace_id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > :now)
           AND (instr(' ' || t.scopes || ' ', ' domain:' || d.name || ' ') > 0
             OR instr(' ' || t.scopes || ' ', ' domain:' || d.name || ':read ') > 0))
     FROM domains d";

fn usage_from_row(row: &Row<'_>) -> rusqlite::Result<DomainUsage> {
    Ok(DomainUsage {
        domain: Domain {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
        },
        active_tokens: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
    })
}

pub fn create(
    tx: &Transaction,
    workspace: Id<Workspace>,
    domain: &Domain,
    token: &NewToken,
    by: &Actor,
) -> Result<Token> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE workspace_id = ?1 AND name = ?2)",
        params![workspace, domain.name],
        |row| row.get(0),
    )?;
    if exists {
        return Err(StoreError::DomainExists);
    }
    tx.execute(
        "INSERT INTO domains (id, workspace_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![domain.id, workspace, domain.name, domain.created_at],
    )?;
    let created = tokens::create(tx, token)?;
    let change = Change::new(
        "domain.create",
        Some(workspace),
        Target::new("domain", domain.id, domain.name.clone()),
    )
    .with("token_id", created.id.to_string())
    .with("token_name", created.name.clone())
    .with("token_hint", created.hint.clone());
    // One change, one entry: the domain's token is part of it.
    audit::record(tx, by, &change)?;
    Ok(created)
}

pub fn list(
    conn: &Connection,
    workspace: Id<Workspace>,
    now: Timestamp,
) -> Result<Vec<DomainUsage>> {
    let sql = format!("{USAGE_SELECT} WHERE d.workspace_id = :ws ORDER BY d.name");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        rusqlite::named_params! {":ws": workspace, ":now": now},
        usage_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_id(
    conn: &Connection,
    workspace: Id<Workspace>,
    id: Id<Domain>,
    now: Timestamp,
) -> Result<Option<DomainUsage>> {
    let sql = format!("{USAGE_SELECT} WHERE d.workspace_id = :ws AND d.id = :id");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            rusqlite::named_params! {":ws": workspace, ":id": id, ":now": now},
            usage_from_row,
        )
        .optional()?)
}

pub fn delete(
    tx: &Transaction,
    workspace: Id<Workspace>,
    id: Id<Domain>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let name: String = tx
        .query_row(
            "SELECT name FROM domains WHERE workspace_id = ?1 AND id = ?2",
            params![workspace, id],
            |row| row.get(0),
        )
        .optional()?
        .ok_or(StoreError::NotFound)?;
    tx.execute("DELETE FROM domains WHERE id = ?1", [id])?;
    workspaces::strip_resource(tx, workspace, &Resource::Domain(name.clone()), now)?;
    let change = Change::new(
        "domain.delete",
        Some(workspace),
        Target::new("domain", id, name),
    );
    audit::record(tx, by, &change)
}
