//! The audit log's rows: written inside each change's transaction, read
//! page by page, purged after the retention setting.

use postgres::{GenericClient, Row};
use serde_json::Value;

use crate::core::audit::{Actor, ActorKind, ActorView, Change, Entry, TargetView};
use crate::core::ids::Id;
use crate::core::time::Timestamp;
use crate::store::{AuditQuery, AuditScope, Page, Result};

/// Writes `change`, made by `actor`, into the transaction that makes it.
pub fn record(tx: &mut impl GenericClient, actor: &Actor, change: &Change) -> Result<()> {
    let details = Value::Object(change.details.clone()).to_string();
    let ip = actor.ip.map(|ip| ip.to_string());
    tx.execute(
        "INSERT INTO audit (id, at, action, actor_kind, actor_account, actor_token, ip,
                            workspace_id, target_kind, target_id, target_name, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &Id::<Entry>::new(),
            &Timestamp::now(),
            &change.action,
            &actor.kind.as_str(),
            &actor.account_id,
            &actor.token_id,
            &ip,
            &change.workspace_id,
            &change.target.kind,
            &change.target.id,
            &change.target.name,
            &details,
        ],
    )?;
    Ok(())
}

fn entry_from_row(row: &Row) -> Result<Entry> {
    let kind: String = row.try_get(3)?;
    let details: String = row.try_get(11)?;
    Ok(Entry {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        action: row.try_get(2)?,
        actor: ActorView {
            kind: ActorKind::parse(&kind).unwrap_or(ActorKind::System),
            account_id: row.try_get(4)?,
            email: row.try_get(13)?,
            token_id: row.try_get(5)?,
        },
        ip: row.try_get(6)?,
        workspace_id: row.try_get(7)?,
        target: TargetView {
            kind: row.try_get(8)?,
            id: row.try_get(9)?,
            name: row.try_get(10)?,
        },
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
    })
}

const FILTER: &str = "(($1::boolean AND e.workspace_id IS NULL)
        OR (NOT $1::boolean AND e.workspace_id = $2::text))
    AND ($3::text IS NULL OR e.action = $3::text)
    AND ($4::text IS NULL OR e.actor_account = $4::text OR e.actor_token = $4::text)
    AND ($5::text IS NULL OR e.target_id = $5::text)
    AND ($6::bigint IS NULL OR e.at >= $6::bigint)
    AND ($7::bigint IS NULL OR e.at <= $7::bigint)";

pub fn list(db: &mut impl GenericClient, query: &AuditQuery) -> Result<Page<Entry>> {
    let (instance, workspace) = match query.scope {
        AuditScope::Instance => (true, None),
        AuditScope::Workspace(id) => (false, Some(id.to_string())),
    };
    let offset = i64::try_from(query.page.offset()).unwrap_or(i64::MAX);
    let limit = i64::from(query.page.per_page);
    let total: i64 = db
        .query_one(
            &format!("SELECT COUNT(*) FROM audit e WHERE {FILTER}"),
            &[
                &instance,
                &workspace,
                &query.action,
                &query.actor,
                &query.target,
                &query.since,
                &query.until,
            ],
        )?
        .try_get(0)?;
    let sql = format!(
        "SELECT e.id, e.at, e.action, e.actor_kind, e.actor_account, e.actor_token, e.ip,
                e.workspace_id, e.target_kind, e.target_id, e.target_name, e.details, e.number,
                (SELECT email FROM accounts a WHERE a.id = e.actor_account)
         FROM audit e WHERE {FILTER}
         ORDER BY e.number DESC LIMIT $8 OFFSET $9"
    );
    let rows = db.query(
        &sql,
        &[
            &instance,
            &workspace,
            &query.action,
            &query.actor,
            &query.target,
            &query.since,
            &query.until,
            &limit,
            &offset,
        ],
    )?;
    Ok(Page {
        items: rows.iter().map(entry_from_row).collect::<Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// Deletes up to `batch` entries older than the retention setting.
pub fn purge(tx: &mut impl GenericClient, now: Timestamp, batch: i64) -> Result<u64> {
    let days: i64 = tx
        .query_one(
            "SELECT audit_retention_days FROM settings WHERE id = 1",
            &[],
        )?
        .try_get(0)?;
    let cutoff = now.plus(-days.saturating_mul(86_400));
    Ok(tx.execute(
        "DELETE FROM audit WHERE number IN (
             SELECT number FROM audit WHERE at < $1 ORDER BY number LIMIT $2)",
        &[&cutoff, &batch],
    )?)
}
