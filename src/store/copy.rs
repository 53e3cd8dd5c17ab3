//! `tokenward migrate-to-postgres`: copies a SQLite instance into an empty
//! PostgreSQL database, row by row in one transaction, keeping every id and
//! number, the password hashes, the token hashes and the session signing
//! key, so that tokens and sessions keep working on the new database.

use std::path::Path;

use postgres::types::ToSql;
use rusqlite::types::Value;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    /// PostgreSQL `INTEGER` (the settings row's id).
    Int4,
    Bool,
    Blob,
}

use Kind::{Blob, Bool, Int, Int4, Text};

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// SQLite order of the rows, where PostgreSQL numbers them anew.
    order: &'static str,
    /// The first column is an identity PostgreSQL must take as given.
    keeps_identity: bool,
}

/// Every table, parents before children.
const TABLES: &[Table] = &[
    Table {
        name: "meta",
        columns: &[("key", Text), ("value", Blob)],
        order: "key",
        keeps_identity: false,
    },
    Table {
        name: "settings",
        columns: &[
            ("id", Int4),
            ("default_ttl_seconds", Int),
            ("max_ttl_seconds", Int),
            ("allow_no_expiry", Bool),
            ("reset_grace_seconds", Int),
            ("purge_after_seconds", Int),
            ("allow_signup", Bool),
            ("token_prefix", Text),
            ("audit_retention_days", Int),
        ],
        order: "id",
        keeps_identity: false,
    },
    Table {
        name: "accounts",
        columns: &[
            ("id", Text),
            ("email", Text),
            ("password_hash", Text),
            ("instance_admin", Bool),
            ("disabled_at", Int),
            ("created_at", Int),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "workspaces",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("token_prefix", Text),
            ("created_at", Int),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "members",
        columns: &[
            ("workspace_id", Text),
            ("account_id", Text),
            ("role", Text),
            ("scopes", Text),
            ("joined_at", Int),
        ],
        // Members who joined in the same second stay in this order.
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "scope_catalog",
        columns: &[
            ("workspace_id", Text),
            ("name", Text),
            ("description", Text),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "domains",
        columns: &[
            ("id", Text),
            ("workspace_id", Text),
            ("name", Text),
            ("created_at", Int),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "tokens",
        columns: &[
            ("number", Int),
            ("id", Text),
            ("workspace_id", Text),
            ("owner_id", Text),
            ("name", Text),
            ("secret_hash", Blob),
            ("hint", Text),
            ("scopes", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_used_at", Int),
            ("last_used_ip", Text),
            ("revoked_at", Int),
            ("replaced_by", Text),
        ],
        order: "number",
        keeps_identity: true,
    },
    Table {
        name: "route_documents",
        columns: &[
            ("workspace_id", Text),
            ("version", Int),
            ("document", Text),
            ("updated_at", Int),
        ],
        order: "rowid",
        keeps_identity: false,
    },
    Table {
        name: "audit",
        columns: &[
            ("number", Int),
            ("id", Text),
            ("at", Int),
            ("action", Text),
            ("actor_kind", Text),
            ("actor_account", Text),
            ("actor_token", Text),
            ("ip", Text),
            ("workspace_id", Text),
            ("target_kind", Text),
            ("target_id", Text),
            ("target_name", Text),
            ("details", Text),
        ],
        order: "number",
        keeps_identity: true,
    },
];

/// What was copied, table by table.
pub struct Copied {
    pub rows: Vec<(&'static str, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the SQLite database {0} does not exist")]
    NoSource(String),
    #[error(transparent)]
    Sqlite(#[from] super::sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] super::postgres::OpenError),
    #[error("the PostgreSQL database already holds accounts or tokens; migrate into an empty one")]
    NotEmpty,
    #[error("cannot read {table} from the SQLite database: {reason}")]
    Read { table: &'static str, reason: String },
    #[error("cannot write {table} to PostgreSQL: {reason}")]
    Write { table: &'static str, reason: String },
    #[error("{table}.{column} holds a value of the wrong type")]
    BadValue {
        table: &'static str,
        column: &'static str,
    },
}

/// Copies the SQLite database at `from` into the PostgreSQL database at
/// `to`, which must hold no account or token yet. Both schemas are brought
/// up to date first. Blocking: run it off the async runtime, with no server
/// writing to either.
pub fn sqlite_to_postgres(from: &Path, to: &str) -> Result<Copied, CopyError> {
    if !from.is_file() {
        return Err(CopyError::NoSource(from.display().to_string()));
    }
    // Opening brings each schema to its latest version (and identifies the
    // SQLite file as tokenward's), then the copy reads and writes directly.
    drop(SqliteStore::open(from)?);
    let target = PostgresStore::open(to)?;
    let source = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| CopyError::Read {
        table: "the file",
        reason: err.to_string(),
    })?;
    let mut client = target.client().map_err(|err| CopyError::Write {
        table: "anything",
        reason: err.to_string(),
    })?;
    let write = |table: &'static str| {
        move |err: postgres::Error| CopyError::Write {
            table,
            reason: err
                .as_db_error()
                .map_or_else(|| err.to_string(), |db| db.message().to_owned()),
        }
    };
    let mut tx = client.transaction().map_err(write("anything"))?;
    let used: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM accounts) OR EXISTS (SELECT 1 FROM tokens)",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(write("anything"))?;
    if used {
        return Err(CopyError::NotEmpty);
    }
    // What PostgreSQL made on its own: the default settings, perhaps a
    // signing key, and the attempts of the lockouts.
    tx.batch_execute("DELETE FROM meta; DELETE FROM settings; DELETE FROM attempts;")
        .map_err(write("settings"))?;

    let mut copied = Copied { rows: Vec::new() };
    for table in TABLES {
        let count = copy_table(&source, &mut tx, table)?;
        copied.rows.push((table.name, count));
    }
    // Numbers go on from the highest ever handed out, purged ones included
    // (SQLite's AUTOINCREMENT remembers them in sqlite_sequence).
    for table in ["tokens", "audit"] {
        let highest: i64 = source
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                [table],
                |row| row.get(0),
            )
            .map_err(|err| CopyError::Read {
                table,
                reason: err.to_string(),
            })?;
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'number'),
                               GREATEST($1, (SELECT COALESCE(MAX(number), 0) FROM {table})) + 1,
                               false)"
            ),
            &[&highest],
        )
        .map_err(write(table))?;
    }
    tx.commit().map_err(write("anything"))?;
    Ok(copied)
}

fn copy_table(
    source: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
) -> Result<u64, CopyError> {
    let read = |err: rusqlite::Error| CopyError::Read {
        table: table.name,
        reason: err.to_string(),
    };
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let mut select = source
        .prepare(&format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            table.name,
            table.order
        ))
        .map_err(read)?;
    let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let overriding = if table.keeps_identity {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {} ({}){overriding} VALUES ({})",
            table.name,
            names.join(", "),
            placeholders.join(", ")
        ))
        .map_err(|err| CopyError::Write {
            table: table.name,
            reason: err.to_string(),
        })?;
    let mut rows = select.query([]).map_err(read)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(read)? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(names.len());
        for (index, (column, kind)) in table.columns.iter().enumerate() {
            let value: Value = row.get(index).map_err(read)?;
            values.push(convert(value, *kind).ok_or(CopyError::BadValue {
                table: table.name,
                column,
            })?);
        }
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&insert, &params)
            .map_err(|err| CopyError::Write {
                table: table.name,
                reason: err
                    .as_db_error()
                    .map_or_else(|| err.to_string(), |db| db.message().to_owned()),
            })?;
        count += 1;
    }
    Ok(count)
}

/// A SQLite value as the PostgreSQL column wants it; `None` when it is of
/// the wrong type.
fn convert(value: Value, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (value, kind) {
        (Value::Null, Text) => Box::new(None::<String>),
        (Value::Null, Int) => Box::new(None::<i64>),
        (Value::Null, Int4) => Box::new(None::<i32>),
        (Value::Null, Bool) => Box::new(None::<bool>),
        (Value::Null, Blob) => Box::new(None::<Vec<u8>>),
        (Value::Text(text), Text) => Box::new(text),
        (Value::Integer(n), Int) => Box::new(n),
        (Value::Integer(n), Int4) => Box::new(i32::try_from(n).ok()?),
        (Value::Integer(n), Bool) => Box::new(n != 0),
        (Value::Blob(bytes), Blob) => Box::new(bytes),
        _ => return None,
    })
}
