//! API tokens: create, list, edit, revoke, rotate, the verify read, the
//! batched last-used flush and the purge.

use postgres::types::Type;
use postgres::{GenericClient, Row};

use super::audit;
use super::settings;
use super::workspaces::ensure_known;
use crate::core::acting::{ActingOn, Refusal};
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{
    AccountRef, Membership, Role, Token, TokenGrant, TokenState, Workspace, numbered_name,
};
use crate::core::scopes::{self, Access, Scope};
use crate::core::time::Timestamp;
use crate::core::token_format::TokenHash;
use crate::store::{
    NewToken, Page, Result, StoreError, TokenEdit, TokenName, TokenQuery, TokenUse,
};

/// A token with its owner's email, as `token_from_row` reads it.
const TOKEN_SELECT: &str = "SELECT t.id, t.number, t.name, t.hint, t.scopes, t.workspace_id,
        a.id, a.email, t.created_at, t.expires_at, t.last_used_at, t.last_used_ip,
        t.revoked_at, t.replaced_by, a.disabled_at IS NOT NULL
     FROM tokens t JOIN accounts a ON a.id = t.owner_id";

/// The verify read: the token, its owner, and the owner's membership of the
/// token's workspace, through three primary-key or unique-index lookups.
const GRANT_SELECT: &str = "SELECT t.id, t.number, t.name, t.hint, t.scopes, t.workspace_id,
        a.id, a.email, t.created_at, t.expires_at, t.last_used_at, t.last_used_ip,
        t.revoked_at, t.replaced_by, a.disabled_at IS NOT NULL, m.role, m.scopes
     FROM tokens t
     JOIN accounts a ON a.id = t.owner_id
     LEFT JOIN members m ON m.workspace_id = t.workspace_id AND m.account_id = t.owner_id
     WHERE t.secret_hash = $1";

fn token_from_row(row: &Row) -> Result<Token> {
    Ok(Token {
        id: row.try_get(0)?,
        number: row.try_get(1)?,
        name: row.try_get(2)?,
        hint: row.try_get(3)?,
        scopes: scopes::decode(row.try_get::<_, &str>(4)?),
        workspace_id: row.try_get(5)?,
        created_by: AccountRef {
            id: row.try_get(6)?,
            email: row.try_get(7)?,
        },
        created_at: row.try_get(8)?,
        expires_at: row.try_get(9)?,
        last_used_at: row.try_get(10)?,
        last_used_ip: row.try_get(11)?,
        revoked_at: row.try_get(12)?,
        replaced_by: row.try_get(13)?,
    })
}

/// Rows of the states a listing can ask for, as SQL over `t`, `$3` (the
/// state) and `$4` (now).
const STATE_FILTER: &str = "($3::text = 'all'
    OR ($3::text = 'active' AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $4::bigint))
    OR ($3::text = 'expired' AND t.revoked_at IS NULL AND t.expires_at <= $4::bigint)
    OR ($3::text = 'revoked' AND t.revoked_at IS NOT NULL))";

pub fn create(tx: &mut impl GenericClient, new: &NewToken) -> Result<Token> {
    ensure_known(tx, new.workspace_id, &new.scopes)?;
    let given = match &new.name {
        TokenName::Given(name) => name.as_str(),
        TokenName::Numbered(_) => "",
    };
    let number: i64 = tx
        .query_one(
            "INSERT INTO tokens (id, workspace_id, owner_id, name, secret_hash, hint, scopes,
                                 created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING number",
            &[
                &new.id,
                &new.workspace_id,
                &new.owner.id,
                &given,
                &new.hash.0.as_slice(),
                &new.hint,
                &scopes::encode(&new.scopes),
                &new.created_at,
                &new.expires_at,
            ],
        )?
        .try_get(0)?;
    let name = match &new.name {
        TokenName::Given(name) => name.clone(),
        TokenName::Numbered(base) => {
            let name = numbered_name(base, number);
            tx.execute(
                "UPDATE tokens SET name = $2 WHERE number = $1",
                &[&number, &name],
            )?;
            name
        }
    };
    Ok(Token {
        id: new.id,
        number,
        name,
        hint: new.hint.clone(),
        scopes: new.scopes.clone(),
        workspace_id: new.workspace_id,
        created_by: new.owner.clone(),
        created_at: new.created_at,
        expires_at: new.expires_at,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        replaced_by: None,
    })
}

/// `create`, as its own change.
pub fn create_audited(tx: &mut impl GenericClient, new: &NewToken, by: &Actor) -> Result<Token> {
    let token = create(tx, new)?;
    audit::record(tx, by, &created(&token))?;
    Ok(token)
}

fn token_target(token: &Token) -> Target {
    Target::new("token", token.id, token.name.clone())
}

/// The audit entry of a new token: its hint (shown in every list), never
/// its secret.
fn created(token: &Token) -> Change {
    Change::new(
        "token.create",
        Some(token.workspace_id),
        token_target(token),
    )
    .with("hint", token.hint.clone())
    .with("scopes", scopes::encode(&token.scopes))
    .with(
        "expires_at",
        token
            .expires_at
            .map_or(serde_json::Value::Null, |at| at.to_rfc3339().into()),
    )
    .with("owner_id", token.created_by.id.to_string())
}

pub fn by_id(
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    id: Id<Token>,
) -> Result<Option<Token>> {
    let sql = format!("{TOKEN_SELECT} WHERE t.id = $1 AND t.workspace_id = $2");
    db.query_opt(&sql, &[&id, &workspace])?
        .map(|row| token_from_row(&row))
        .transpose()
}

fn existing(db: &mut impl GenericClient, workspace: Id<Workspace>, id: Id<Token>) -> Result<Token> {
    by_id(db, workspace, id)?.ok_or(StoreError::NotFound)
}

fn state_name(state: Option<TokenState>) -> &'static str {
    match state {
        None => "all",
        Some(TokenState::Active) => "active",
        Some(TokenState::Expired) => "expired",
        Some(TokenState::Revoked) => "revoked",
    }
}

pub fn list(db: &mut impl GenericClient, query: &TokenQuery) -> Result<Page<Token>> {
    let filter = format!(
        "t.workspace_id = $1 AND ($2::text IS NULL OR t.owner_id = $2::text) AND {STATE_FILTER}"
    );
    let owner = query.owner.map(|id| id.to_string());
    let state = state_name(query.state);
    let total: i64 = db
        .query_one(
            &format!("SELECT COUNT(*) FROM tokens t WHERE {filter}"),
            &[&query.workspace_id, &owner, &state, &query.now],
        )?
        .try_get(0)?;
    let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
    let limit = i64::from(query.page.per_page);
    let sql = format!("{TOKEN_SELECT} WHERE {filter} ORDER BY t.number DESC LIMIT $5 OFFSET $6");
    let rows = db.query(
        &sql,
        &[
            &query.workspace_id,
            &owner,
            &state,
            &query.now,
            &limit,
            &offset,
        ],
    )?;
    Ok(Page {
        items: rows.iter().map(token_from_row).collect::<Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

fn refused(refusal: Refusal) -> StoreError {
    StoreError::Refused(refusal.0)
}

fn ensure_active(token: &Token, now: Timestamp) -> Result<()> {
    match token.state(now) {
        TokenState::Active => Ok(()),
        state => Err(StoreError::TokenInactive(state)),
    }
}

fn full_domains(scopes: &[Scope]) -> impl Iterator<Item = &str> {
    scopes
        .iter()
        .filter(|s| s.access == Access::Full)
        .filter_map(Scope::domain)
}

/// The last token that would verify `VALID` for full `domain:<name>` keeps
/// its domain usable, so it may not lose that scope (§4 "Domains", §9).
/// The write is serializable: two nodes revoking the workspace's last two
/// such tokens at once cannot both see the other one still standing.
fn ensure_not_last_domain_token<'a>(
    db: &mut impl GenericClient,
    token: &Token,
    losing: impl Iterator<Item = &'a str>,
    now: Timestamp,
) -> Result<()> {
    for domain in losing {
        let needle = format!(" domain:{domain} ");
        let row = db.query_one(
            "SELECT COUNT(*) FILTER (WHERE t.id = $2), COUNT(*) FILTER (WHERE t.id <> $2)
             FROM tokens t
             JOIN accounts a ON a.id = t.owner_id AND a.disabled_at IS NULL
             JOIN members m ON m.workspace_id = t.workspace_id AND m.account_id = t.owner_id
             WHERE t.workspace_id = $1 AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > $3)
               AND strpos(' ' || t.scopes || ' ', $4) > 0
               AND (m.role = 'admin'
                    OR strpos(' ' || m.scopes || ' ', $4) > 0
                    OR strpos(' ' || m.scopes || ' ', ' domains ') > 0)",
            &[&token.workspace_id, &token.id, &now, &needle],
        )?;
        let this_one: i64 = row.try_get(0)?;
        let others: i64 = row.try_get(1)?;
        if this_one > 0 && others == 0 {
            return Err(StoreError::LastDomainToken(domain.to_owned()));
        }
    }
    Ok(())
}

pub fn update(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    id: Id<Token>,
    edit: &TokenEdit,
    now: Timestamp,
    acting: &ActingOn,
    by: &Actor,
) -> Result<Token> {
    let token = existing(tx, workspace, id)?;
    ensure_active(&token, now)?;
    if let Some(new_scopes) = &edit.scopes {
        acting.may_change(&token).map_err(refused)?;
        acting.may_hand_out(new_scopes).map_err(refused)?;
        ensure_known(tx, workspace, new_scopes)?;
        let keeps = |domain: &str| full_domains(new_scopes).any(|d| d == domain);
        let losing: Vec<&str> = full_domains(&token.scopes).filter(|d| !keeps(d)).collect();
        ensure_not_last_domain_token(tx, &token, losing.into_iter(), now)?;
        tx.execute(
            "UPDATE tokens SET scopes = $2 WHERE id = $1",
            &[&id, &scopes::encode(new_scopes)],
        )?;
    }
    if let Some(name) = &edit.name {
        tx.execute("UPDATE tokens SET name = $2 WHERE id = $1", &[&id, name])?;
    }
    let updated = existing(tx, workspace, id)?;
    let mut change = Change::new("token.update", Some(workspace), token_target(&updated))
        .with("hint", updated.hint.clone());
    if edit.name.is_some() {
        change = change.with("old_name", token.name.clone());
    }
    if edit.scopes.is_some() {
        change = change
            .with("old_scopes", scopes::encode(&token.scopes))
            .with("scopes", scopes::encode(&updated.scopes));
    }
    audit::record(tx, by, &change)?;
    Ok(updated)
}

pub fn revoke(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    id: Id<Token>,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let token = existing(tx, workspace, id)?;
    match token.state(now) {
        TokenState::Revoked => return Ok(()),
        TokenState::Active => {
            ensure_not_last_domain_token(tx, &token, full_domains(&token.scopes), now)?
        }
        TokenState::Expired => {}
    }
    tx.execute(
        "UPDATE tokens SET revoked_at = $2 WHERE id = $1",
        &[&id, &now],
    )?;
    let change = Change::new("token.revoke", Some(workspace), token_target(&token))
        .with("hint", token.hint.clone());
    audit::record(tx, by, &change)
}

pub fn rotate(
    tx: &mut impl GenericClient,
    old: Id<Token>,
    new: &NewToken,
    old_expires_at: Timestamp,
    acting: &ActingOn,
    by: &Actor,
) -> Result<Token> {
    let mut new = new.clone();
    let now = new.created_at;
    let current = existing(tx, new.workspace_id, old)?;
    ensure_active(&current, now)?;
    if current.replaced_by.is_some() {
        return Err(StoreError::TokenReplaced);
    }
    acting.may_change(&current).map_err(refused)?;
    // The scopes as they are now, not as the caller read them before.
    acting.may_hand_out(&current.scopes).map_err(refused)?;
    new.scopes = current.scopes.clone();
    let created = create(tx, &new)?;
    tx.execute(
        "UPDATE tokens SET expires_at = $2, replaced_by = $3 WHERE id = $1",
        &[&old, &old_expires_at, &created.id],
    )?;
    let change = Change::new(
        "token.reset",
        Some(current.workspace_id),
        token_target(&current),
    )
    .with("hint", current.hint.clone())
    .with("replaced_by", created.id.to_string())
    .with("new_hint", created.hint.clone())
    .with("old_expires_at", old_expires_at.to_rfc3339());
    audit::record(tx, by, &change)?;
    Ok(created)
}

pub fn grant_by_hash(db: &mut impl GenericClient, hash: &TokenHash) -> Result<Option<TokenGrant>> {
    // Typed: parsed and run in one round trip, where a plain query first
    // asks the server for the statement's parameter types. This is every
    // verification the cache does not answer.
    let Some(row) = db.query_typed_opt(GRANT_SELECT, &[(&hash.0.as_slice(), Type::BYTEA)])? else {
        return Ok(None);
    };
    let role: Option<Role> = row.try_get(15)?;
    let owner_membership = match role {
        Some(role) => Some(Membership {
            role,
            scopes: scopes::decode(row.try_get::<_, &str>(16)?),
        }),
        None => None,
    };
    Ok(Some(TokenGrant::new(
        token_from_row(&row)?,
        row.try_get(14)?,
        owner_membership,
    )))
}

/// Every node flushes its own uses: the latest use wins, whichever node
/// saw it and whenever it is flushed.
pub fn record_uses(tx: &mut impl GenericClient, uses: &[TokenUse]) -> Result<()> {
    let statement = tx.prepare(
        "UPDATE tokens SET last_used_at = $2, last_used_ip = $3
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2)",
    )?;
    for usage in uses {
        tx.execute(&statement, &[&usage.token_id, &usage.at, &usage.ip])?;
    }
    Ok(())
}

/// Deletes up to `batch` tokens expired or revoked more than
/// `purge_after_seconds` ago; small batches keep each transaction short.
pub fn purge_tokens(tx: &mut impl GenericClient, now: Timestamp, batch: i64) -> Result<u64> {
    let cutoff = now.plus(-settings::get(tx)?.purge_after_seconds);
    Ok(tx.execute(
        "DELETE FROM tokens WHERE number IN (
             SELECT number FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= $1
             UNION
             SELECT number FROM tokens WHERE revoked_at IS NOT NULL AND revoked_at <= $1
             LIMIT $2)",
        &[&cutoff, &batch],
    )?)
}

/// Deletes sessions that have expired or were revoked.
pub fn purge_sessions(tx: &mut impl GenericClient, now: Timestamp) -> Result<u64> {
    Ok(tx.execute(
        "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at IS NOT NULL",
        &[&now],
    )?)
}
