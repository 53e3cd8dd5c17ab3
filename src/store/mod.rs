//! The storage door: every operation the product performs on its data, as
//! one trait, implemented by SQLite (one node) and PostgreSQL (several
//! nodes), with the verify cache in front of either ([`cached`]).

pub mod attempts;
pub mod cache;
pub mod cached;
pub mod copy;
pub mod postgres;
pub mod sqlite;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::acting::ActingOn;
use crate::core::audit::{Actor, Entry};
use crate::core::forward_auth::{Access, RuleDocument};
use crate::core::ids::Id;
use crate::core::model::{
    Account, AccountRef, CatalogEntry, Domain, Member, Membership, Role, Session, Token,
    TokenGrant, TokenState, Workspace,
};
use crate::core::scopes::Scope;
use crate::core::settings::{Problems, Settings, SettingsPatch};
use crate::core::time::Timestamp;
use crate::core::token_format::TokenHash;

pub use cached::CachedStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The database `--db` names: a SQLite file, or a PostgreSQL URL
/// (`postgres://…`) that makes this server one node of several.
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

/// How soon an account disabled from the command line, next to a running
/// SQLite server, stops its tokens verifying from the server's cache.
const ACCOUNT_CHANGES_EVERY: Duration = Duration::from_secs(1);

impl Backend {
    /// Opens the database, creating and migrating it as needed. Blocking:
    /// call it off the async runtime.
    pub fn open(db: &Path) -> anyhow::Result<Backend> {
        match db.to_str() {
            Some(url) if postgres::is_url(url) => {
                Ok(Backend::Postgres(Arc::new(PostgresStore::open(url)?)))
            }
            _ => Ok(Backend::Sqlite(Arc::new(SqliteStore::open(db)?))),
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(store) => Arc::clone(store) as Arc<dyn Store>,
            Backend::Postgres(store) => Arc::clone(store) as Arc<dyn Store>,
        }
    }

    /// Where password attempts are counted: in memory for SQLite, in the
    /// database for PostgreSQL, where every node must count them.
    pub fn attempts(&self, limit: usize, window: Duration) -> Arc<dyn attempts::PasswordAttempts> {
        match self {
            Backend::Sqlite(_) => Arc::new(attempts::MemoryAttempts::new(limit, window)),
            Backend::Postgres(store) => Arc::new(postgres::attempts::SharedAttempts::new(
                Arc::clone(store),
                limit,
                window,
            )),
        }
    }

    /// Empties `grants` when a write made elsewhere (the command line, or
    /// another node) may change a verification answer, and tells `rules`
    /// of other nodes' rules writes. Runs until dropped.
    pub fn follow_writes_elsewhere(
        &self,
        grants: Arc<cache::GrantCache>,
        rules: Arc<dyn RulesWatch>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        match self {
            // One node: only the command line writes beside it, and it
            // never writes rules.
            Backend::Sqlite(store) => {
                Box::pin(store.follow_account_changes(ACCOUNT_CHANGES_EVERY, grants))
            }
            Backend::Postgres(store) => Box::pin(store.follow_grants(grants, rules)),
        }
    }
}

/// Where a node keeps forward-auth rules compiled, told of rules written
/// by other nodes.
pub trait RulesWatch: Send + Sync + 'static {
    /// The workspace's rules were written, up to `version`: older ones
    /// held or read since are stale.
    fn rules_written(&self, workspace: Id<Workspace>, version: i64);
    /// Writes may have gone unheard: forget every workspace's rules.
    fn forget_all(&self);
}

/// `--db` as logs and messages show it: a PostgreSQL URL without its
/// password.
pub fn shown_db(db: &Path) -> String {
    match db.to_str() {
        Some(url) if postgres::is_url(url) => postgres::shown_url(url),
        _ => db.display().to_string(),
    }
}

/// Verified tokens kept in memory by default (about 1 KiB each).
pub const DEFAULT_VERIFY_CACHE: usize = 50_000;

/// What can go wrong at the door. Product rules that need the data to decide
/// (the last admin, the last domain token) are enforced inside the write's
/// transaction and reported here.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    #[error("sign-up is closed")]
    SignUpClosed,
    #[error("the first account needs the setup code")]
    SetupCodeNeeded,
    #[error("no account has this email")]
    NoSuchAccount,
    #[error("already a member")]
    AlreadyMember,
    #[error("last admin of the workspace")]
    LastAdmin,
    /// The write would leave the instance without an enabled instance
    /// admin.
    #[error("last enabled instance admin")]
    LastInstanceAdmin,
    /// Deleting the account would leave this workspace, which has other
    /// members, without an admin.
    #[error("only admin of the workspace {0}")]
    OnlyWorkspaceAdmin(String),
    #[error("token is {0:?}")]
    TokenInactive(TokenState),
    #[error("token was already reset")]
    TokenReplaced,
    #[error("last active token of domain {0}")]
    LastDomainToken(String),
    #[error("domain already exists")]
    DomainExists,
    /// A rule about who may do what, decided inside the write: a `403`
    /// with this sentence.
    #[error("{0}")]
    Refused(String),
    #[error("unknown scope {0}")]
    UnknownScope(String),
    #[error("invalid settings")]
    InvalidSettings(Problems),
    /// A rules document naming scopes the workspace does not have.
    #[error("invalid rules")]
    InvalidRoutes(Problems),
    /// An `If-Match` that no longer holds, checked inside the write.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct NewAccount {
    pub id: Id<Account>,
    pub email: String,
    pub password_hash: String,
    pub workspace_name: String,
    pub now: Timestamp,
    pub allowed: SignUpRules,
}

/// What a sign-up brought to be allowed in. Whether the account is the
/// first, whether sign-up is open and whether the setup code is needed are
/// decided inside the write that creates it, so concurrent sign-ups cannot
/// all see an empty or open instance (§9 "Decided inside the write").
#[derive(Clone, Copy, Debug)]
pub struct SignUpRules {
    /// The signed-in account asking, if any: an enabled instance admin may
    /// create accounts while sign-up is closed.
    pub by: Option<Id<Account>>,
    /// For the first account: the server needs a setup code, and whether
    /// the one given matched. `None`: no code is needed.
    pub setup_code_matched: Option<bool>,
    /// Whether the command line creates it (no sign-up rule applies).
    pub from_cli: bool,
}

/// How a new token is named: as given, or `"<base> token <number>"` with the
/// number the store assigns.
#[derive(Clone, Debug)]
pub enum TokenName {
    Given(String),
    Numbered(String),
}

#[derive(Clone, Debug)]
pub struct NewToken {
    pub id: Id<Token>,
    pub workspace_id: Id<Workspace>,
    pub owner: AccountRef,
    pub name: TokenName,
    pub hash: TokenHash,
    pub hint: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// A `PATCH /tokens/{id}`.
#[derive(Clone, Debug, Default)]
pub struct TokenEdit {
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
}

#[derive(Clone, Copy, Debug)]
pub struct TokenQuery {
    pub workspace_id: Id<Workspace>,
    /// Only this owner's tokens (a member sees their own).
    pub owner: Option<Id<Account>>,
    /// `None` for every state.
    pub state: Option<TokenState>,
    pub now: Timestamp,
    pub page: Paging,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub per_page: u32,
}

impl Paging {
    pub fn offset(self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)
    }
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// One use of a token, for the batched `last_used` flush.
#[derive(Clone, Debug)]
pub struct TokenUse {
    pub token_id: Id<Token>,
    pub at: Timestamp,
    pub ip: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub tokens: u64,
    pub sessions: u64,
    /// Audit entries older than `audit_retention_days`.
    pub audit_entries: u64,
}

/// A workspace's forward-auth rules and their version, which is the
/// `ETag`: 0 for the default document of a workspace that never stored one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRoutes {
    pub document: RuleDocument,
    pub version: i64,
}

/// An `If-Match` for a rules write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: whatever is current.
    Any,
    /// One of these versions must still be current (an empty list never
    /// matches: only weak or foreign validators were sent).
    Versions(Vec<i64>),
}

/// A rules document may name only scopes its workspace knows: each rule
/// naming another is a problem of its own, reported with the others.
/// `ensure_known` is the store's check of one rule's scopes.
pub(crate) fn check_rule_scopes(
    document: &RuleDocument,
    mut ensure_known: impl FnMut(&[Scope]) -> Result<()>,
) -> Result<()> {
    let mut problems = Problems::new();
    for (index, rule) in document.rules.iter().enumerate() {
        if let Access::Scopes(scopes) = &rule.access {
            match ensure_known(scopes) {
                Ok(()) => {}
                Err(StoreError::UnknownScope(scope)) => {
                    problems.insert(
                        format!("rules[{index}].scopes"),
                        format!(
                            "{scope} is not a scope of this workspace: add it to the scope catalog, or add the domain, first"
                        ),
                    );
                }
                Err(other) => return Err(other),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::InvalidRoutes(problems))
    }
}

impl IfMatch {
    pub fn allows(&self, current: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&current),
        }
    }
}

/// A domain and how many active tokens hold one of its scopes.
pub struct DomainUsage {
    pub domain: Domain,
    pub active_tokens: u64,
}

/// Whose entries an audit query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditScope {
    Workspace(Id<Workspace>),
    /// Instance-wide entries (sign-ins, settings, accounts).
    Instance,
}

/// A `GET /audit` query.
#[derive(Clone, Debug)]
pub struct AuditQuery {
    pub scope: AuditScope,
    pub action: Option<String>,
    /// An account or token id that acted.
    pub actor: Option<String>,
    /// The id of what was changed.
    pub target: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub page: Paging,
}

/// An account as the instance admin sees it (§11 "Accounts").
#[derive(Clone, Debug)]
pub struct AccountSummary {
    pub account: Account,
    pub disabled_at: Option<Timestamp>,
    /// Workspaces it is a member of.
    pub workspaces: u64,
    /// Its tokens that are active now (they verify only while it is
    /// enabled).
    pub active_tokens: u64,
}

#[derive(Clone, Debug)]
pub struct AccountQuery {
    /// Part of the email, in lower case; empty for every account.
    pub email_contains: String,
    pub now: Timestamp,
    pub page: Paging,
}

/// Tokens not yet purged, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub active: u64,
    pub expired: u64,
    pub revoked: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;
    /// Whether the database can be read and written and is still the file
    /// opened at start-up, by a cheap probe that never writes (§11). Why
    /// not comes as `Unavailable(reason)`, fit to show without a login.
    async fn health(&self) -> Result<()>;
    /// The key that signs session JWTs, made on first start.
    async fn signing_key(&self) -> Result<Vec<u8>>;

    // Accounts and sessions.
    async fn has_accounts(&self) -> Result<bool>;
    /// Creates the account with its personal workspace; the first account
    /// ever becomes the instance admin.
    async fn create_account(&self, new: NewAccount, by: Actor) -> Result<(Account, Workspace)>;
    async fn account(&self, id: Id<Account>) -> Result<Option<Account>>;
    /// An account and its password hash, for sign-in.
    async fn credentials(&self, email: String) -> Result<Option<(Account, String)>>;
    /// Sets a new password and revokes every session but `keep`.
    async fn change_password(
        &self,
        id: Id<Account>,
        hash: String,
        keep: Id<Session>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()>;
    async fn create_session(&self, session: Session, by: Actor) -> Result<()>;
    /// The session and its account, if neither revoked nor expired.
    async fn live_session(
        &self,
        id: Id<Session>,
        now: Timestamp,
    ) -> Result<Option<(Session, Account)>>;
    async fn revoke_session(&self, id: Id<Session>, now: Timestamp, by: Actor) -> Result<()>;

    // Workspaces, members, scope catalog.
    async fn workspaces_of(&self, account: Id<Account>) -> Result<Vec<(Workspace, Role)>>;
    async fn workspace(&self, id: Id<Workspace>) -> Result<Option<Workspace>>;
    async fn membership(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
    ) -> Result<Option<Membership>>;
    async fn create_workspace(
        &self,
        owner: Id<Account>,
        name: String,
        token_prefix: Option<String>,
        now: Timestamp,
        by: Actor,
    ) -> Result<Workspace>;
    async fn update_workspace(
        &self,
        id: Id<Workspace>,
        name: Option<String>,
        token_prefix: Option<Option<String>>,
        by: Actor,
    ) -> Result<Workspace>;
    async fn members(&self, workspace: Id<Workspace>) -> Result<Vec<Member>>;
    async fn add_member(
        &self,
        workspace: Id<Workspace>,
        email: String,
        membership: Membership,
        now: Timestamp,
        by: Actor,
    ) -> Result<Member>;
    async fn update_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        role: Option<Role>,
        scopes: Option<Vec<Scope>>,
        by: Actor,
    ) -> Result<Member>;
    async fn remove_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        by: Actor,
    ) -> Result<()>;
    async fn catalog(&self, workspace: Id<Workspace>) -> Result<Vec<CatalogEntry>>;
    async fn put_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        entry: CatalogEntry,
        by: Actor,
    ) -> Result<CatalogEntry>;
    /// Removes the scope from the catalog, every token and every grant;
    /// tokens left with no scope are revoked.
    async fn delete_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        name: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<()>;

    // Instance settings.
    async fn settings(&self) -> Result<Settings>;
    /// Applies the patch atomically, or changes nothing.
    async fn update_settings(&self, patch: SettingsPatch, by: Actor) -> Result<Settings>;

    // API tokens.
    async fn create_token(&self, new: NewToken, by: Actor) -> Result<Token>;
    async fn token(&self, workspace: Id<Workspace>, id: Id<Token>) -> Result<Option<Token>>;
    async fn list_tokens(&self, query: TokenQuery) -> Result<Page<Token>>;
    /// Edits a token; a scope change is checked against `acting` and the
    /// token as it is inside the write.
    async fn update_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        edit: TokenEdit,
        now: Timestamp,
        acting: ActingOn,
        by: Actor,
    ) -> Result<Token>;
    /// Revokes at once; revoking a revoked token is a no-op.
    async fn revoke_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()>;
    /// Creates `new` in place of `old`, which lives on until
    /// `old_expires_at` and points at its replacement. The new token gets
    /// the scopes `old` has inside the write (`new.scopes` is ignored),
    /// and `acting` must be allowed to hand them out and to reset `old`.
    async fn rotate_token(
        &self,
        old: Id<Token>,
        new: NewToken,
        old_expires_at: Timestamp,
        acting: ActingOn,
        by: Actor,
    ) -> Result<Token>;
    /// The verify path: one indexed read (or a cache hit), never a write.
    async fn token_grant(&self, hash: TokenHash) -> Result<Option<Arc<TokenGrant>>>;
    /// The grant of `hash` if it is held in memory: no IO, and `None` from
    /// a store that keeps nothing there.
    fn token_grant_in_memory(&self, _hash: &TokenHash) -> Option<Arc<TokenGrant>> {
        None
    }
    /// The batched `last_used` flush.
    async fn record_token_uses(&self, uses: Vec<TokenUse>) -> Result<()>;
    /// Deletes tokens expired or revoked longer than `purge_after_seconds`
    /// ago, and dead sessions.
    async fn purge(&self, now: Timestamp) -> Result<PurgeReport>;

    // Domains.
    async fn create_domain(
        &self,
        workspace: Id<Workspace>,
        domain: Domain,
        token: NewToken,
        by: Actor,
    ) -> Result<Token>;
    async fn domains(&self, workspace: Id<Workspace>, now: Timestamp) -> Result<Vec<DomainUsage>>;
    async fn domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
    ) -> Result<Option<DomainUsage>>;
    /// Removes the domain and its scopes from tokens and grants; tokens left
    /// with no scope are revoked.
    async fn delete_domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()>;

    // The audit log (§11).
    /// A failed sign-in: only an audit entry (the lockout is in memory).
    /// The email is recorded only when it names an account.
    async fn record_sign_in_failure(&self, email: String, by: Actor) -> Result<()>;
    async fn audit_entries(&self, query: AuditQuery) -> Result<Page<Entry>>;
    // Instance administration (§11 "Accounts"). Each is one write whose
    // rules are decided inside it.
    async fn list_accounts(&self, query: AccountQuery) -> Result<Page<AccountSummary>>;
    /// Disables an account, ending its sessions for good (its tokens answer
    /// `DISABLED` until it is enabled again), or enables it. Never leaves
    /// the instance without an enabled instance admin.
    async fn set_account_disabled(
        &self,
        id: Id<Account>,
        disabled: bool,
        now: Timestamp,
        by: Actor,
    ) -> Result<AccountSummary>;
    /// Deletes an account with its sessions, memberships and tokens, and the
    /// workspaces it leaves with no member. Never the last enabled instance
    /// admin, nor the only admin of a workspace that has other members.
    async fn delete_account(&self, id: Id<Account>, by: Actor) -> Result<()>;
    /// Sets a new password for the account with this email and ends every
    /// one of its sessions (the command line's reset).
    async fn reset_password(
        &self,
        email: String,
        hash: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<Account>;
    /// Tokens by state now: a count for the metrics.
    async fn token_counts(&self, now: Timestamp) -> Result<TokenCounts>;
    // Forward-auth rules (§10).
    /// The workspace's rules document (the default one, version 0, when it
    /// never stored one), or `None` when the workspace does not exist.
    async fn routes(&self, workspace: Id<Workspace>) -> Result<Option<StoredRoutes>>;
    /// Replaces the whole document as one write, if `expected` still holds
    /// (else `PreconditionFailed`) and every scope it names exists in the
    /// workspace (else `InvalidRoutes`); the version goes up by one.
    async fn put_routes(
        &self,
        workspace: Id<Workspace>,
        document: RuleDocument,
        expected: Option<IfMatch>,
        now: Timestamp,
        by: Actor,
    ) -> Result<StoredRoutes>;
}
