//! Domains, each born with its own token.

use postgres::{GenericClient, Row};

use super::{audit, tokens, workspaces};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Domain, Token, Workspace};
use crate::core::scopes::Resource;
use crate::core::time::Timestamp;
use crate::store::{DomainUsage, NewToken, Result, StoreError};

/// A domain with the number of active tokens holding `domain:<name>` or
/// `domain:<name>:read` (scopes are stored space-separated, so a padded
/// `strpos` finds whole scopes only). `$1` is the workspace, `$2` now.
const USAGE_SELECT: &str = "SELECT d.id, d.name, d.created_at,
        (SELECT COUNT(*) FROM tokens t
         WHERE t.workspace_id = d.workspace_id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > $2)
           AND (strpos(' ' || t.scopes || ' ', ' domain:' || d.name || ' ') > 0
             OR strpos(' ' || t.scopes || ' ', ' domain:' || d.name || ':read ') > 0))
     FROM domains d";

fn usage_from_row(row: &Row) -> Result<DomainUsage> {
    Ok(DomainUsage {
        domain: Domain {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            created_at: row.try_get(2)?,
        },
        active_tokens: u64::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
    })
}

pub fn create(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    domain: &Domain,
    token: &NewToken,
    by: &Actor,
) -> Result<Token> {
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM domains WHERE workspace_id = $1 AND name = $2)",
            &[&workspace, &domain.name],
        )?
        .try_get(0)?;
    if exists {
        return Err(StoreError::DomainExists);
    }
    tx.execute(
        "INSERT INTO domains (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)",
        &[&domain.id, &workspace, &domain.name, &domain.created_at],
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
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    now: Timestamp,
) -> Result<Vec<DomainUsage>> {
    let sql = format!("{USAGE_SELECT} WHERE d.workspace_id = $1 ORDER BY d.name");
    db.query(&sql, &[&workspace, &now])?
        .iter()
        .map(usage_from_row)
        .collect()
}

pub fn by_id(
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    id: Id<Domain>,
    now: Timestamp,
) -> Result<Option<DomainUsage>> {
    let sql = format!("{USAGE_SELECT} WHERE d.workspace_id = $1 AND d.id = $3");
    db.query_opt(&sql, &[&workspace, &now, &id])?
        .map(|row| usage_from_row(&row))
        .transpose()
}

pub fn delete(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    id: Id<Domain>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let name: String = tx
        .query_opt(
            "SELECT name FROM domains WHERE workspace_id = $1 AND id = $2",
            &[&workspace, &id],
        )?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    tx.execute("DELETE FROM domains WHERE id = $1", &[&id])?;
    workspaces::strip_resource(tx, workspace, &Resource::Domain(name.clone()), now)?;
    let change = Change::new(
        "domain.delete",
        Some(workspace),
        Target::new("domain", id, name),
    );
    audit::record(tx, by, &change)
}
