//! The SQLite implementation of the storage door: one file, WAL mode,
//! `synchronous=FULL`, an r2d2 pool, and every call off the async runtime.

mod accounts;
mod admin;
mod audit;
pub mod backup;
mod domains;
mod file;
pub mod migrations;
mod routes;
mod settings;
mod tokens;
mod workspaces;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql, Transaction, TransactionBehavior};

use super::{
    AccountQuery, AccountSummary, AuditQuery, DomainUsage, IfMatch, NewAccount, NewToken, Page,
    PurgeReport, Result, Store, StoreError, StoredRoutes, TokenCounts, TokenEdit, TokenQuery,
    TokenUse,
};
use crate::core::acting::ActingOn;
use crate::core::audit::{Actor, Change, Entry, Target};
use crate::core::forward_auth::RuleDocument;
use crate::core::ids::Id;
use crate::core::model::{
    Account, CatalogEntry, Domain, Member, Membership, Role, Session, Token, TokenGrant, Workspace,
};
use crate::core::scopes::Scope;
use crate::core::settings::{Settings, SettingsPatch};
use crate::core::time::Timestamp;
use crate::core::token_format::TokenHash;
pub use file::FileError;
use file::{Found, Opened};
pub use migrations::MigrationError;

/// How long a statement waits for another writer before giving up.
const BUSY_TIMEOUT_MS: u32 = 5000;
/// Tokens deleted per purge transaction.
const PURGE_BATCH: u32 = 1000;

type Pool = r2d2::Pool<SqliteConnectionManager>;

pub struct SqliteStore {
    pool: Pool,
    /// The file opened, for the health check.
    opened: Opened,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "the database {path} could not be switched to WAL mode (it answered {mode:?}); is it on a network file system?"
    )]
    NoWal { path: String, mode: String },
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("cannot open a connection pool on {path}: {source}")]
    Pool { path: String, source: r2d2::Error },
}

/// Settings every pooled connection needs: these PRAGMAs are per
/// connection, so they are applied each time the pool opens one.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its folder,
    /// switches it to WAL and runs pending migrations. The file is
    /// identified before anything in it changes: another application's
    /// file is refused untouched, and one written by a newer tokenward
    /// before it is switched to WAL.
    pub fn open(path: &Path) -> std::result::Result<SqliteStore, OpenError> {
        let shown = path.display().to_string();
        file::create(path)?;
        file::check_writable(path)?;
        let found = file::identify(path)?;
        if let Found::Ours { user_version } = found
            && user_version > migrations::latest_version()
        {
            return Err(MigrationError::NewerSchema {
                found: user_version,
                known: migrations::latest_version(),
            }
            .into());
        }
        file::make_private(path)?;

        let open_err = |source| OpenError::Open {
            path: shown.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // SQLite falls back to read-only without a word when it may not
        // write the file.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(open_err)? {
            return Err(FileError::ReadOnly { path: shown }.into());
        }
        let opened = Opened::record(path).map_err(|error| FileError::Unreadable {
            path: shown.clone(),
            error,
        })?;
        configure(&mut conn).map_err(open_err)?;
        // WAL is a property of the file: set once, it persists.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NoWal { path: shown, mode });
        }
        if !matches!(found, Found::Ours { .. }) {
            if found == Found::Unmarked {
                tracing::info!(db = %shown, "marking a tokenward database made before databases were marked");
            }
            conn.pragma_update(None, "application_id", file::APPLICATION_ID)
                .map_err(open_err)?;
        }
        migrations::apply(&mut conn)?;
        drop(conn);

        // Pooled connections never create the file: one deleted while the
        // server runs must not come back empty.
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .build(manager)
            .map_err(|source| OpenError::Pool {
                path: shown.clone(),
                source,
            })?;
        Ok(SqliteStore { pool, opened })
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a write transaction and commits it before returning, so
    /// an acknowledged write is durable. `BEGIN IMMEDIATE` takes the write
    /// lock up front: a deferred transaction that later upgrades can fail
    /// with `SQLITE_BUSY` no matter the busy timeout. The write runs to its
    /// end on the blocking pool even when the awaiting future is dropped.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            // Busy, or the file cannot be written now: worth a retry, and
            // `/healthz` says why.
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure,
            ) => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Internal(err.to_string()),
        }
    }
}

impl<T> ToSql for Id<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl<T> FromSql for Id<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Id::from_str(value.as_str()?).map_err(|_| FromSqlError::InvalidType)
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_i64().map(Timestamp)
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Role::parse(value.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn health(&self) -> Result<()> {
        let opened = self.opened.clone();
        self.read(move |conn| {
            if let Some(reason) = opened.problem() {
                return Err(StoreError::Unavailable(reason.into()));
            }
            if conn.is_readonly(rusqlite::MAIN_DB)? {
                return Err(StoreError::Unavailable(
                    "the database connection is read-only".into(),
                ));
            }
            // A read of the file's header, through the WAL.
            let mark: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
            if mark != file::APPLICATION_ID {
                return Err(StoreError::Unavailable(
                    "the database file is not the one opened".into(),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        self.write(settings::signing_key).await
    }

    async fn has_accounts(&self) -> Result<bool> {
        self.read(accounts::has_accounts).await
    }

    async fn create_account(&self, new: NewAccount, by: Actor) -> Result<(Account, Workspace)> {
        self.write(move |tx| accounts::create(tx, &new, &by)).await
    }

    async fn account(&self, id: Id<Account>) -> Result<Option<Account>> {
        self.read(move |conn| accounts::by_id(conn, id)).await
    }

    async fn credentials(&self, email: String) -> Result<Option<(Account, String)>> {
        self.read(move |conn| accounts::credentials(conn, &email))
            .await
    }

    async fn change_password(
        &self,
        id: Id<Account>,
        hash: String,
        keep: Id<Session>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write(move |tx| accounts::change_password(tx, id, &hash, keep, now, &by))
            .await
    }

    async fn create_session(&self, session: Session, by: Actor) -> Result<()> {
        self.write(move |tx| accounts::create_session(tx, &session, &by))
            .await
    }

    async fn live_session(
        &self,
        id: Id<Session>,
        now: Timestamp,
    ) -> Result<Option<(Session, Account)>> {
        self.read(move |conn| accounts::live_session(conn, id, now))
            .await
    }

    async fn revoke_session(&self, id: Id<Session>, now: Timestamp, by: Actor) -> Result<()> {
        self.write(move |tx| accounts::revoke_session(tx, id, now, &by))
            .await
    }

    async fn workspaces_of(&self, account: Id<Account>) -> Result<Vec<(Workspace, Role)>> {
        self.read(move |conn| workspaces::of_account(conn, account))
            .await
    }

    async fn workspace(&self, id: Id<Workspace>) -> Result<Option<Workspace>> {
        self.read(move |conn| workspaces::by_id(conn, id)).await
    }

    async fn membership(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
    ) -> Result<Option<Membership>> {
        self.read(move |conn| workspaces::membership(conn, workspace, account))
            .await
    }

    async fn create_workspace(
        &self,
        owner: Id<Account>,
        name: String,
        token_prefix: Option<String>,
        now: Timestamp,
        by: Actor,
    ) -> Result<Workspace> {
        self.write(move |tx| {
            workspaces::create_audited(tx, owner, &name, token_prefix.as_deref(), now, &by)
        })
        .await
    }

    async fn update_workspace(
        &self,
        id: Id<Workspace>,
        name: Option<String>,
        token_prefix: Option<Option<String>>,
        by: Actor,
    ) -> Result<Workspace> {
        self.write(move |tx| workspaces::update(tx, id, name.as_deref(), token_prefix, &by))
            .await
    }

    async fn members(&self, workspace: Id<Workspace>) -> Result<Vec<Member>> {
        self.read(move |conn| workspaces::members(conn, workspace))
            .await
    }

    async fn add_member(
        &self,
        workspace: Id<Workspace>,
        email: String,
        membership: Membership,
        now: Timestamp,
        by: Actor,
    ) -> Result<Member> {
        self.write(move |tx| workspaces::add_member(tx, workspace, &email, &membership, now, &by))
            .await
    }

    async fn update_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        role: Option<Role>,
        scopes: Option<Vec<Scope>>,
        by: Actor,
    ) -> Result<Member> {
        self.write(move |tx| workspaces::update_member(tx, workspace, account, role, scopes, &by))
            .await
    }

    async fn remove_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        by: Actor,
    ) -> Result<()> {
        self.write(move |tx| workspaces::remove_member(tx, workspace, account, &by))
            .await
    }

    async fn catalog(&self, workspace: Id<Workspace>) -> Result<Vec<CatalogEntry>> {
        self.read(move |conn| workspaces::catalog(conn, workspace))
            .await
    }

    async fn put_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        entry: CatalogEntry,
        by: Actor,
    ) -> Result<CatalogEntry> {
        self.write(move |tx| workspaces::put_catalog_entry(tx, workspace, entry, &by))
            .await
    }

    async fn delete_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        name: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write(move |tx| workspaces::delete_catalog_entry(tx, workspace, &name, now, &by))
            .await
    }

    async fn settings(&self) -> Result<Settings> {
        self.read(settings::get).await
    }

    async fn update_settings(&self, patch: SettingsPatch, by: Actor) -> Result<Settings> {
        self.write(move |tx| settings::update(tx, &patch, &by))
            .await
    }

    async fn create_token(&self, new: NewToken, by: Actor) -> Result<Token> {
        self.write(move |tx| tokens::create_audited(tx, &new, &by))
            .await
    }

    async fn token(&self, workspace: Id<Workspace>, id: Id<Token>) -> Result<Option<Token>> {
        self.read(move |conn| tokens::by_id(conn, workspace, id))
            .await
    }

    async fn list_tokens(&self, query: TokenQuery) -> Result<Page<Token>> {
        self.read(move |conn| tokens::list(conn, &query)).await
    }

    async fn update_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        edit: TokenEdit,
        now: Timestamp,
        acting: ActingOn,
        by: Actor,
    ) -> Result<Token> {
        self.write(move |tx| tokens::update(tx, workspace, id, edit, now, &acting, &by))
            .await
    }

    async fn revoke_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write(move |tx| tokens::revoke(tx, workspace, id, now, &by))
            .await
    }

    async fn rotate_token(
        &self,
        old: Id<Token>,
        new: NewToken,
        old_expires_at: Timestamp,
        acting: ActingOn,
        by: Actor,
    ) -> Result<Token> {
        self.write(move |tx| tokens::rotate(tx, old, new, old_expires_at, &acting, &by))
            .await
    }

    async fn token_grant(&self, hash: TokenHash) -> Result<Option<Arc<TokenGrant>>> {
        let found = self
            .read(move |conn| tokens::grant_by_hash(conn, &hash))
            .await?;
        Ok(found.map(Arc::new))
    }

    async fn record_token_uses(&self, uses: Vec<TokenUse>) -> Result<()> {
        // One transaction, holding the write lock while it runs: the usage
        // log sends a bounded batch at a time (`usage::FLUSH_BATCH`).
        self.write(move |tx| tokens::record_uses(tx, &uses)).await
    }

    async fn purge(&self, now: Timestamp) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        loop {
            let deleted = self
                .write(move |tx| tokens::purge_tokens(tx, now, PURGE_BATCH))
                .await?;
            report.tokens += deleted;
            if deleted < u64::from(PURGE_BATCH) {
                break;
            }
        }
        report.sessions = self
            .write(move |tx| tokens::purge_sessions(tx, now))
            .await?;
        loop {
            let deleted = self
                .write(move |tx| audit::purge(tx, now, PURGE_BATCH))
                .await?;
            report.audit_entries += deleted;
            if deleted < u64::from(PURGE_BATCH) {
                break;
            }
        }
        if report.tokens + report.sessions > 0 {
            self.write(move |tx| {
                let change = Change::new(
                    "sweeper.purge",
                    None,
                    Target::named("tokens", "expired and revoked"),
                )
                .with("tokens", report.tokens)
                .with("sessions", report.sessions);
                audit::record(tx, &Actor::system(), &change)
            })
            .await?;
        }
        Ok(report)
    }

    async fn create_domain(
        &self,
        workspace: Id<Workspace>,
        domain: Domain,
        token: NewToken,
        by: Actor,
    ) -> Result<Token> {
        self.write(move |tx| domains::create(tx, workspace, &domain, &token, &by))
            .await
    }

    async fn domains(&self, workspace: Id<Workspace>, now: Timestamp) -> Result<Vec<DomainUsage>> {
        self.read(move |conn| domains::list(conn, workspace, now))
            .await
    }

    async fn domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
    ) -> Result<Option<DomainUsage>> {
        self.read(move |conn| domains::by_id(conn, workspace, id, now))
            .await
    }

    async fn delete_domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write(move |tx| domains::delete(tx, workspace, id, now, &by))
            .await
    }

    async fn record_sign_in_failure(&self, email: String, by: Actor) -> Result<()> {
        self.write(move |tx| accounts::record_sign_in_failure(tx, &email, &by))
            .await
    }

    async fn audit_entries(&self, query: AuditQuery) -> Result<Page<Entry>> {
        self.read(move |conn| audit::list(conn, &query)).await
    }

    async fn list_accounts(&self, query: AccountQuery) -> Result<Page<AccountSummary>> {
        self.read(move |conn| admin::list(conn, &query)).await
    }

    async fn set_account_disabled(
        &self,
        id: Id<Account>,
        disabled: bool,
        now: Timestamp,
        by: Actor,
    ) -> Result<AccountSummary> {
        self.write(move |tx| admin::set_disabled(tx, id, disabled, now, &by))
            .await
    }

    async fn delete_account(&self, id: Id<Account>, by: Actor) -> Result<()> {
        self.write(move |tx| admin::delete(tx, id, &by)).await
    }

    async fn reset_password(
        &self,
        email: String,
        hash: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<Account> {
        self.write(move |tx| admin::reset_password(tx, &email, &hash, now, &by))
            .await
    }

    async fn token_counts(&self, now: Timestamp) -> Result<TokenCounts> {
        self.read(move |conn| admin::token_counts(conn, now)).await
    }
    async fn routes(&self, workspace: Id<Workspace>) -> Result<Option<StoredRoutes>> {
        self.read(move |conn| routes::get(conn, workspace)).await
    }

    async fn put_routes(
        &self,
        workspace: Id<Workspace>,
        document: RuleDocument,
        expected: Option<IfMatch>,
        now: Timestamp,
        by: Actor,
    ) -> Result<StoredRoutes> {
        self.write(move |tx| routes::put(tx, workspace, document, expected.as_ref(), now, &by))
            .await
    }
}
