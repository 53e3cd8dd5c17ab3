//! The storage door: every operation the product performs on its data, as
//! one trait. SQLite implements it today; a PostgreSQL deployment of several
//! nodes would be a second implementation, not a rewrite of the callers.

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::ids::Id;
use crate::core::model::{
    Account, AccountRef, CatalogEntry, Domain, Member, Membership, Role, Session, Token,
    TokenGrant, TokenState, Workspace,
};
use crate::core::scopes::Scope;
use crate::core::settings::{Problems, Settings, SettingsPatch};
use crate::core::time::Timestamp;
use crate::core::token_format::TokenHash;

pub use sqlite::{DEFAULT_VERIFY_CACHE, SqliteStore};

/// What can go wrong at the door. Product rules that need the data to decide
/// (the last admin, the last domain token) are enforced inside the write's
/// transaction and reported here.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("email already registered")]
    EmailTaken,
    #[error("no account has this email")]
    NoSuchAccount,
    #[error("already a member")]
    AlreadyMember,
    #[error("last admin of the workspace")]
    LastAdmin,
    #[error("token is {0:?}")]
    TokenInactive(TokenState),
    #[error("token was already reset")]
    TokenReplaced,
    #[error("last active token of domain {0}")]
    LastDomainToken(String),
    #[error("domain already exists")]
    DomainExists,
    #[error("unknown scope {0}")]
    UnknownScope(String),
    #[error("invalid settings")]
    InvalidSettings(Problems),
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
}

/// A domain and how many active tokens hold one of its scopes.
pub struct DomainUsage {
    pub domain: Domain,
    pub active_tokens: u64,
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
    async fn create_account(&self, new: NewAccount) -> Result<(Account, Workspace)>;
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
    ) -> Result<()>;
    async fn create_session(&self, session: Session) -> Result<()>;
    /// The session and its account, if neither revoked nor expired.
    async fn live_session(
        &self,
        id: Id<Session>,
        now: Timestamp,
    ) -> Result<Option<(Session, Account)>>;
    async fn revoke_session(&self, id: Id<Session>, now: Timestamp) -> Result<()>;

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
    ) -> Result<Workspace>;
    async fn update_workspace(
        &self,
        id: Id<Workspace>,
        name: Option<String>,
        token_prefix: Option<Option<String>>,
    ) -> Result<Workspace>;
    async fn members(&self, workspace: Id<Workspace>) -> Result<Vec<Member>>;
    async fn add_member(
        &self,
        workspace: Id<Workspace>,
        email: String,
        membership: Membership,
        now: Timestamp,
    ) -> Result<Member>;
    async fn update_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        role: Option<Role>,
        scopes: Option<Vec<Scope>>,
    ) -> Result<Member>;
    async fn remove_member(&self, workspace: Id<Workspace>, account: Id<Account>) -> Result<()>;
    async fn catalog(&self, workspace: Id<Workspace>) -> Result<Vec<CatalogEntry>>;
    async fn put_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        entry: CatalogEntry,
    ) -> Result<CatalogEntry>;
    /// Removes the scope from the catalog, every token and every grant;
    /// tokens left with no scope are revoked.
    async fn delete_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        name: String,
        now: Timestamp,
    ) -> Result<()>;

    // Instance settings.
    async fn settings(&self) -> Result<Settings>;
    /// Applies the patch atomically, or changes nothing.
    async fn update_settings(&self, patch: SettingsPatch) -> Result<Settings>;

    // API tokens.
    async fn create_token(&self, new: NewToken) -> Result<Token>;
    async fn token(&self, workspace: Id<Workspace>, id: Id<Token>) -> Result<Option<Token>>;
    async fn list_tokens(&self, query: TokenQuery) -> Result<Page<Token>>;
    async fn update_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        edit: TokenEdit,
        now: Timestamp,
    ) -> Result<Token>;
    /// Revokes at once; revoking a revoked token is a no-op.
    async fn revoke_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        now: Timestamp,
    ) -> Result<()>;
    /// Creates `new` in place of `old`, which lives on until
    /// `old_expires_at` and points at its replacement.
    async fn rotate_token(
        &self,
        old: Id<Token>,
        new: NewToken,
        old_expires_at: Timestamp,
    ) -> Result<Token>;
    /// The verify path: one indexed read (or a cache hit), never a write.
    async fn token_grant(&self, hash: TokenHash) -> Result<Option<Arc<TokenGrant>>>;
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
    ) -> Result<()>;
}
