//! The PostgreSQL implementation of the storage door, for several nodes
//! sharing one database (§12).
//!
//! The sync `postgres` client with an r2d2 pool, every call on the blocking
//! pool, as the SQLite store does: the statements and their modules are the
//! SQLite ones with PostgreSQL's syntax, and a write keeps running to its
//! commit when the request that asked for it goes away, which the verify
//! cache's guarantee relies on. An async client would save a thread per
//! query in flight, which a token server's write rate does not need.
//!
//! Every write runs `SERIALIZABLE` and is retried on a serialization
//! failure: where SQLite's `BEGIN IMMEDIATE` makes the rules decided inside
//! a write (the first account, the last admin, the last domain token) hold
//! against concurrent writers, PostgreSQL's serializable isolation makes
//! them hold against writers on other nodes. Writes that can change a
//! verification answer send `NOTIFY tokenward_grants` in their transaction,
//! delivered on commit; every node listens ([`PostgresStore::follow_grants`]).
//!
//! Connections are plain TCP (or a Unix socket): TLS to the database is for
//! a later change; keep the database on a private network until then.

mod accounts;
mod admin;
pub mod attempts;
mod audit;
mod domains;
pub mod migrations;
mod routes;
mod settings;
mod tokens;
mod workspaces;

use std::error::Error as _;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, IsolationLevel, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use super::RulesWatch;
use super::cache::GrantCache;
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

/// The oldest PostgreSQL tokenward runs on.
const MIN_VERSION: i32 = 130_000;
/// The channel writes that change verification answers notify.
const CHANNEL: &str = "tokenward_grants";
/// The channel a forward-auth rules write notifies, with the payload
/// `"<workspace id> <version>"`.
const ROUTES_CHANNEL: &str = "tokenward_routes";
/// Rows deleted per purge transaction.
const PURGE_BATCH: i64 = 1000;
/// The advisory lock the sweeper holds while it purges ("twsweepr").
const SWEEP_LOCK: i64 = 0x7477_7377_6565_7072;
/// Attempts at a write that keeps meeting concurrent writers.
const WRITE_ATTEMPTS: u32 = 10;
/// What a write that lost to concurrent writers on every attempt says.
const CONFLICT: &str = "the write kept conflicting with concurrent writes; try again";
/// How long the listener waits for a notification before it checks its
/// connection.
const LISTEN_POLL: Duration = Duration::from_millis(500);
/// The listening connection's `application_name`.
pub const LISTENER_NAME: &str = "tokenward listener";
/// How often the listener asks the database whether its connection is
/// still alive when nothing arrives: a connection lost without a word (a
/// network cut) is noticed within this and [`PROBE_TIMEOUT`].
const LISTEN_PROBE: Duration = Duration::from_secs(1);
/// How long the listener's probe may take before the connection counts as
/// lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PostgresStore {
    /// `None` only once the store is dropped (see its `Drop`).
    pool: Option<Pool>,
    config: Config,
}

/// Why the database was not opened: one sentence, never the password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("--db is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL at {at}: {reason}")]
    Unreachable { at: String, reason: String },
    #[error("PostgreSQL at {at} is version {version}; tokenward needs 13 or newer")]
    TooOld { at: String, version: String },
    #[error("PostgreSQL failed while {step}: {reason}")]
    Query { step: &'static str, reason: String },
    #[error("migration {number} failed: {reason}")]
    Migration { number: i64, reason: String },
    #[error(
        "the database has schema version {found}, but this tokenward knows only up to {known}: \
         it was written by a newer tokenward. Run that version on every node."
    )]
    NewerSchema { found: i64, known: i64 },
}

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// An error's text with its cause, as `postgres::Error`'s own display
/// leaves the cause out for some kinds.
fn reason(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.message().to_owned();
    }
    match err.source() {
        Some(source) if !err.to_string().contains(&source.to_string()) => {
            format!("{err}: {source}")
        }
        _ => err.to_string(),
    }
}

/// Where the database at `url` is, for logs and messages: never its
/// password.
pub fn shown_url(url: &str) -> String {
    match Config::from_str(url) {
        Ok(config) => format!("postgres://{}", shown(&config)),
        Err(_) => "an unreadable PostgreSQL URL".to_owned(),
    }
}

/// Where the database is, for messages: host, port and database name, no
/// user or password.
fn shown(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// The pool's connections: no statement, and no transaction left idle, may
/// hold a connection (and the blocking thread waiting on it) for long,
/// whatever a client does. A URL that sets `options` itself keeps them.
fn pooled(config: &Config) -> Config {
    let mut pooled = config.clone();
    if pooled.get_options().is_none() {
        pooled.options(&format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            STATEMENT_TIMEOUT.as_millis(),
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
        ));
    }
    pooled
}

/// Longer than any query of a request or a batch of the sweeper takes.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

impl PostgresStore {
    /// Connects, checks the server's version, applies pending migrations
    /// (one node at a time) and opens the pool. Blocking: call it off the
    /// async runtime.
    pub fn open(url: &str) -> std::result::Result<PostgresStore, OpenError> {
        let mut config = Config::from_str(url).map_err(|err| OpenError::BadUrl(err.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("tokenward");
        }
        let at = shown(&config);
        let mut client = config
            .connect(NoTls)
            .map_err(|err| OpenError::Unreachable {
                at: at.clone(),
                reason: reason(&err),
            })?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::integer", &[])
            .and_then(|row| row.try_get(0))
            .map_err(|err| OpenError::Query {
                step: "reading its version",
                reason: reason(&err),
            })?;
        if version < MIN_VERSION {
            let shown_version = client
                .query_one("SELECT current_setting('server_version')", &[])
                .and_then(|row| row.try_get::<_, String>(0))
                .unwrap_or_else(|_| version.to_string());
            return Err(OpenError::TooOld {
                at,
                version: shown_version,
            });
        }
        let applied = migrations::apply(&mut client)?;
        if applied > 0 {
            tracing::info!(db = %at, applied, "applied PostgreSQL migrations");
        }
        drop(client);

        let manager = PostgresConnectionManager::new(pooled(&config), NoTls);
        // A broken connection is noticed by the query that uses it (one
        // answer of 503) and not returned to the pool; testing every
        // check-out would cost a round trip per request.
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .build(manager)
            .map_err(|err| OpenError::Unreachable {
                at,
                reason: err.to_string(),
            })?;
        Ok(PostgresStore {
            pool: Some(pool),
            config,
        })
    }

    /// The pool, for a task of the blocking pool.
    fn pool(&self) -> Result<Pool> {
        self.pool
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the database pool is closed".into()))
    }

    /// A connection of the pool, for the command line's copy into this
    /// database (`store::copy`).
    pub(crate) fn client(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool()?.get().map_err(unavailable)
    }

    /// Runs `f` on a pooled connection on the blocking thread pool, outside
    /// any transaction (each statement sees what is committed).
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T> + Send + 'static,
    {
        let pool = self.pool()?;
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(unavailable)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a serializable transaction and commits it before
    /// returning, retrying when it conflicts with a concurrent write.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.write_with(false, f).await
    }

    /// A write after which cached verification answers may be wrong: it
    /// notifies every node in its transaction, so the notification goes
    /// out exactly when the change is committed.
    async fn write_grants<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.write_with(true, f).await
    }

    async fn write_with<T, F>(&self, notify: bool, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let pool = self.pool()?;
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(unavailable)?;
            run_write(&mut conn, notify, &mut f)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
    }

    /// Empties `grants` whenever another node (or the command line)
    /// changes what a verification may answer, and bypasses it while that
    /// cannot be heard; tells `rules` of rules written by other nodes. On a
    /// dedicated connection that `LISTEN`s, made again whenever it breaks.
    /// Runs until dropped.
    ///
    /// The connection lives on a thread of its own: the sync client blocks,
    /// and may not even be dropped on an async worker.
    pub fn follow_grants(
        &self,
        grants: Arc<GrantCache>,
        rules: Arc<dyn RulesWatch>,
    ) -> impl Future<Output = ()> + Send + use<> {
        let mut config = self.config.clone();
        // Named apart from the pool's connections, for `pg_stat_activity`.
        config.application_name(LISTENER_NAME);
        async move {
            let stop = Arc::new(AtomicBool::new(false));
            let _stop = StopOnDrop(Arc::clone(&stop));
            let cache = Arc::clone(&grants);
            let spawned = std::thread::Builder::new()
                .name("tokenward-listen".into())
                .spawn(move || listen(&config, &cache, rules.as_ref(), &stop));
            if let Err(err) = spawned {
                grants.bypass();
                tracing::error!(%err, "cannot start the thread that listens for other nodes' writes: every verification reads the database");
            }
            std::future::pending::<()>().await
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a sync client blocks on its own runtime, which panics on
        // an async worker: the pool handle goes to a plain thread, where the
        // connections close once no task of the blocking pool holds one.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::Builder::new()
                .name("tokenward-pool-close".into())
                .spawn(move || drop(pool));
        }
    }
}

/// Tells the listening thread to end when the future that started it is
/// dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The listening thread: connects, `LISTEN`s, and empties the cache on
/// every notification, until `stop`. While it has no connection, the
/// cache is bypassed; once it listens again, the cache is emptied and used.
/// Rules writes go to `rules`; rules held while writes went unheard are
/// forgotten.
fn listen(config: &Config, grants: &GrantCache, rules: &dyn RulesWatch, stop: &AtomicBool) {
    let mut warned = false;
    while !stop.load(Ordering::Acquire) {
        let connected = config.connect(NoTls).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {ROUTES_CHANNEL}"))?;
            Ok(client)
        });
        let mut client = match connected {
            Ok(client) => client,
            Err(err) => {
                grants.bypass();
                if !warned {
                    tracing::warn!(
                        reason = %reason(&err),
                        "cannot listen for other nodes' writes: every verification reads the database until this is back"
                    );
                    warned = true;
                }
                pause(Duration::from_secs(1), stop);
                continue;
            }
        };
        // Heard from now on; anything cached before is dropped.
        grants.resume();
        rules.forget_all();
        if warned {
            tracing::info!(
                "listening for other nodes' writes again; the verify cache is back in use"
            );
            warned = false;
        }
        while !stop.load(Ordering::Acquire) {
            match wait_for_notifications(&mut client, stop) {
                Ok(heard) => {
                    if heard.iter().any(|n| n.channel() == CHANNEL) {
                        grants.invalidate();
                    }
                    for written in heard.iter().filter(|n| n.channel() == ROUTES_CHANNEL) {
                        let mut parts = written.payload().split(' ');
                        let workspace = parts.next().and_then(|id| Id::from_str(id).ok());
                        let version = parts.next().and_then(|v| v.parse().ok());
                        match (workspace, version) {
                            (Some(workspace), Some(version)) => {
                                rules.rules_written(workspace, version)
                            }
                            _ => rules.forget_all(),
                        }
                    }
                }
                Err(err) => {
                    // Writes may go unheard from here on.
                    grants.bypass();
                    rules.forget_all();
                    tracing::warn!(
                        reason = %reason(&err),
                        "lost the connection that listens for other nodes' writes: every verification reads the database until it is back"
                    );
                    warned = true;
                    break;
                }
            }
        }
    }
}

/// Sleeps `total`, waking early when `stop` is set.
fn pause(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Acquire) {
        std::thread::sleep(step);
        slept += step;
    }
}

/// Waits up to [`LISTEN_PROBE`] for notifications, returning as soon as
/// some come. An error means the connection is gone.
fn wait_for_notifications(
    client: &mut Client,
    stop: &AtomicBool,
) -> std::result::Result<Vec<postgres::Notification>, postgres::Error> {
    let started = std::time::Instant::now();
    while started.elapsed() < LISTEN_PROBE && !client.is_closed() && !stop.load(Ordering::Acquire) {
        let mut notifications = client.notifications();
        let first = notifications.timeout_iter(LISTEN_POLL).next()?;
        if let Some(first) = first {
            let mut heard = vec![first];
            let mut pending = notifications.iter();
            while let Some(more) = pending.next()? {
                heard.push(more);
            }
            return Ok(heard);
        }
    }
    // `timeout_iter` ends the same way on a timeout and on a closed
    // connection: a round trip tells them apart.
    client.is_valid(PROBE_TIMEOUT)?;
    Ok(Vec::new())
}

fn unavailable(err: r2d2::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot reach the database: {err}"))
}

/// One write, retried while it conflicts with concurrent writes (up to
/// [`WRITE_ATTEMPTS`], backing off a little more each time).
fn run_write<T>(
    conn: &mut Client,
    notify: bool,
    f: &mut impl FnMut(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        let outcome = (|| {
            let mut tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()?;
            let out = f(&mut tx)?;
            if notify {
                tx.batch_execute(&format!("NOTIFY {CHANNEL}"))?;
            }
            tx.commit()?;
            Ok(out)
        })();
        match outcome {
            Err(StoreError::Unavailable(reason)) if reason == CONFLICT => {
                attempt += 1;
                if attempt >= WRITE_ATTEMPTS {
                    return Err(StoreError::Unavailable(reason));
                }
                std::thread::sleep(Duration::from_millis(2 << attempt.min(6)));
            }
            other => return other,
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(err: postgres::Error) -> Self {
        match err.code() {
            // Lost to a concurrent writer: the whole write is tried again.
            // A unique key taken by a write that committed meanwhile is the
            // same race, and the retry sees the row and answers as SQLite
            // would (`EmailTaken`, `DomainExists`…).
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::UNIQUE_VIOLATION =>
            {
                StoreError::Unavailable(CONFLICT.to_owned())
            }
            // Connection trouble, too many connections, shutting down,
            // read-only standby: worth a retry, and `/healthz` says why.
            Some(code)
                if code.code().starts_with("08")
                    || code.code().starts_with("53")
                    || code.code().starts_with("57")
                    || *code == SqlState::READ_ONLY_SQL_TRANSACTION =>
            {
                StoreError::Unavailable(reason(&err))
            }
            Some(_) => StoreError::Internal(reason(&err)),
            None if err.is_closed()
                || err
                    .source()
                    .is_some_and(|source| source.is::<std::io::Error>()) =>
            {
                StoreError::Unavailable(reason(&err))
            }
            None => StoreError::Internal(reason(&err)),
        }
    }
}

impl<T> ToSql for Id<T> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_string().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a, T> FromSql<'a> for Id<T> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        Ok(Id::from_str(text).map_err(|_| format!("not an id: {text:?}"))?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

impl ToSql for Timestamp {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Timestamp {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        i64::from_sql(ty, raw).map(Timestamp)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as FromSql>::accepts(ty)
    }
}

impl ToSql for Role {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Role {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        Ok(Role::parse(text).ok_or_else(|| format!("not a role: {text:?}"))?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        self.read(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }

    async fn health(&self) -> Result<()> {
        const STANDBY: &str = "the database is a read-only standby";
        let checked = self
            .read(|conn| {
                let standby: bool = conn
                    .query_one("SELECT pg_is_in_recovery()", &[])?
                    .try_get(0)?;
                if standby {
                    return Err(StoreError::Unavailable(STANDBY.into()));
                }
                Ok(())
            })
            .await;
        match checked {
            Ok(()) => Ok(()),
            Err(StoreError::Unavailable(reason)) if reason == STANDBY => {
                Err(StoreError::Unavailable(reason))
            }
            // The reason is shown without a login: PostgreSQL's own words
            // (user and database names) stay in the log.
            Err(err) => {
                tracing::warn!(%err, "PostgreSQL health check failed");
                Err(StoreError::Unavailable("cannot reach the database".into()))
            }
        }
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        self.write(|tx| settings::signing_key(tx)).await
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
        self.write(move |tx| workspaces::update(tx, id, name.as_deref(), &token_prefix, &by))
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
        self.write_grants(move |tx| {
            workspaces::add_member(tx, workspace, &email, &membership, now, &by)
        })
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
        self.write_grants(move |tx| {
            workspaces::update_member(tx, workspace, account, role, &scopes, &by)
        })
        .await
    }

    async fn remove_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        by: Actor,
    ) -> Result<()> {
        self.write_grants(move |tx| workspaces::remove_member(tx, workspace, account, &by))
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
        self.write(move |tx| workspaces::put_catalog_entry(tx, workspace, &entry, &by))
            .await
    }

    async fn delete_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        name: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write_grants(move |tx| {
            workspaces::delete_catalog_entry(tx, workspace, &name, now, &by)
        })
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
        self.write_grants(move |tx| tokens::update(tx, workspace, id, &edit, now, &acting, &by))
            .await
    }

    async fn revoke_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.write_grants(move |tx| tokens::revoke(tx, workspace, id, now, &by))
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
        self.write_grants(move |tx| tokens::rotate(tx, old, &new, old_expires_at, &acting, &by))
            .await
    }

    async fn token_grant(&self, hash: TokenHash) -> Result<Option<Arc<TokenGrant>>> {
        let found = self
            .read(move |conn| tokens::grant_by_hash(conn, &hash))
            .await?;
        Ok(found.map(Arc::new))
    }

    async fn record_token_uses(&self, uses: Vec<TokenUse>) -> Result<()> {
        // Not notified: a last-used time never changes an answer, and every
        // node flushing would empty every node's cache each minute.
        self.write(move |tx| tokens::record_uses(tx, &uses)).await
    }

    async fn purge(&self, now: Timestamp) -> Result<PurgeReport> {
        // One node sweeps at a time: the others find the lock taken and
        // leave it to that one. The lock is held on one connection for the
        // whole sweep, and goes with it if the node dies.
        let pool = self.pool()?;
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(unavailable)?;
            let locked: bool = conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])?
                .try_get(0)?;
            if !locked {
                return Ok(PurgeReport::default());
            }
            let report = purge_locked(&mut conn, now);
            let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK]);
            let report = report?;
            unlocked?;
            Ok(report)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("database task failed: {e}")))?
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
        self.write_grants(move |tx| domains::delete(tx, workspace, id, now, &by))
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
        self.write_grants(move |tx| admin::set_disabled(tx, id, disabled, now, &by))
            .await
    }

    async fn delete_account(&self, id: Id<Account>, by: Actor) -> Result<()> {
        self.write_grants(move |tx| admin::delete(tx, id, &by))
            .await
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
        self.write(move |tx| routes::put(tx, workspace, &document, expected.as_ref(), now, &by))
            .await
    }
}

/// The sweep itself, under the sweep lock: purged tokens are notified, as
/// a cached answer for one would now be wrong.
fn purge_locked(conn: &mut Client, now: Timestamp) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    loop {
        let deleted = run_write(conn, false, &mut |tx| {
            let deleted = tokens::purge_tokens(tx, now, PURGE_BATCH)?;
            if deleted > 0 {
                tx.batch_execute(&format!("NOTIFY {CHANNEL}"))?;
            }
            Ok(deleted)
        })?;
        report.tokens += deleted;
        if deleted < PURGE_BATCH as u64 {
            break;
        }
    }
    report.sessions = run_write(conn, false, &mut |tx| tokens::purge_sessions(tx, now))?;
    run_write(conn, false, &mut |tx| attempts::purge(tx))?;
    loop {
        let deleted = run_write(conn, false, &mut |tx| audit::purge(tx, now, PURGE_BATCH))?;
        report.audit_entries += deleted;
        if deleted < PURGE_BATCH as u64 {
            break;
        }
    }
    if report.tokens + report.sessions > 0 {
        run_write(conn, false, &mut |tx| {
            let change = Change::new(
                "sweeper.purge",
                None,
                Target::named("tokens", "expired and revoked"),
            )
            .with("tokens", report.tokens)
            .with("sessions", report.sessions);
            audit::record(tx, &Actor::system(), &change)
        })?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_connections_bound_statements_and_idle_transactions() {
        let config = Config::from_str("postgres://tokenward@127.0.0.1/tokenward").unwrap();
        let options = pooled(&config).get_options().unwrap().to_owned();
        assert!(options.contains("statement_timeout=30000"), "{options}");
        assert!(
            options.contains("idle_in_transaction_session_timeout=60000"),
            "{options}"
        );
        // An operator's own options are kept as they are.
        let own = Config::from_str(
            "postgres://tokenward@127.0.0.1/tokenward?options=-c%20work_mem%3D8MB",
        )
        .unwrap();
        assert_eq!(pooled(&own).get_options(), own.get_options());
    }
}
