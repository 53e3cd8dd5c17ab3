//! The audit log's rows: written inside each change's transaction, read
//! page by page, purged after the retention setting.

use rusqlite::{Connection, Row, Transaction, named_params, params};
use serde_json::Value;

use crate::core::audit::{Actor, ActorKind, ActorView, Change, Entry, TargetView};
use crate::core::ids::Id;
use crate::core::time::Timestamp;
use crate::store::{AuditQuery, AuditScope, Page, Result};

/// Writes `change`, made by `actor`, into the transaction that makes it.
pub fn record(tx: &Transaction, actor: &Actor, change: &Change) -> Result<()> {
    let details = Value::Object(change.details.clone()).to_string();
    tx.prepare_cached(
        "INSERT INTO audit (id, at, action, actor_kind, actor_account, actor_token, ip,
                            workspace_id, target_kind, target_id, target_name, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        Id::<Entry>::new(),
        Timestamp::now(),
        change.action,
        actor.kind.as_str(),
        actor.account_id,
        actor.token_id,
        actor.ip.map(|ip| ip.to_string()),
        change.workspace_id,
        change.target.kind,
        change.target.id,
        change.target.name,
        details,
    ])?;
    Ok(())
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = row.get(3)?;
    let details: String = row.get(11)?;
    Ok(Entry {
        id: row.get(0)?,
        at: row.get(1)?,
        action: row.get(2)?,
        actor: ActorView {
            kind: ActorKind::parse(&kind).unwrap_or(ActorKind::System),
            account_id: row.get(4)?,
            email: row.get(13)?,
            token_id: row.get(5)?,
        },
        ip: row.get(6)?,
        workspace_id: row.get(7)?,
        target: TargetView {
            kind: row.get(8)?,
            id: row.get(9)?,
            name: row.get(10)?,
        },
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
    })
}

const FILTER: &str =
    "((:instance AND e.workspace_id IS NULL) OR (NOT :instance AND e.workspace_id = :ws))
    AND (:action IS NULL OR e.action = :action)
    AND (:actor IS NULL OR e.actor_account = :actor OR e.actor_token = :actor)
    AND (:target IS NULL OR e.target_id = :target)
    AND (:since IS NULL OR e.at >= :since)
    AND (:until IS NULL OR e.at <= :until)";

pub fn list(conn: &Connection, query: &AuditQuery) -> Result<Page<Entry>> {
    let (instance, workspace) = match query.scope {
        AuditScope::Instance => (true, None),
        AuditScope::Workspace(id) => (false, Some(id)),
    };
    let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM audit e WHERE {FILTER}"))?
        .query_row(
            named_params! {
                ":instance": instance, ":ws": workspace, ":action": query.action,
                ":actor": query.actor, ":target": query.target,
                ":since": query.since, ":until": query.until,
            },
            |row| row.get(0),
        )?;
    let sql = format!(
        "SELECT e.id, e.at, e.action, e.actor_kind, e.actor_account, e.actor_token, e.ip,
                e.workspace_id, e.target_kind, e.target_id, e.target_name, e.details, e.number,
                (SELECT email FROM accounts a WHERE a.id = e.actor_account)
         FROM audit e WHERE {FILTER}
         ORDER BY e.number DESC LIMIT :limit OFFSET :offset"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":instance": instance, ":ws": workspace, ":action": query.action,
            ":actor": query.actor, ":target": query.target,
            ":since": query.since, ":until": query.until,
            ":limit": query.page.per_page, ":offset": offset,
        },
        entry_from_row,
    )?;
    Ok(Page {
        items: rows.collect::<rusqlite::Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// Deletes up to `batch` entries older than the retention setting.
pub fn purge(tx: &Transaction, now: Timestamp, batch: u32) -> Result<u64> {
    let days: i64 = tx.query_row(
        "SELECT audit_retention_days FROM settings WHERE id = 1",
        [],
        |row| row.get(0),
    )?;
    let cutoff = now.plus(-days.saturating_mul(86_400));
    let deleted = tx
        .prepare_cached(
            "DELETE FROM audit WHERE number IN (
                 SELECT number FROM audit WHERE at < ?1 ORDER BY number LIMIT ?2)",
        )?
        .execute(params![cutoff, batch])?;
    Ok(deleted as u64)
}
