//! The verify cache in front of any store. `token_grant` answers from
//! memory when it can; every write that can change a cached answer empties
//! the cache before it is acknowledged.
//!
//! Such a write runs on a task of its own, and the cache is emptied on that
//! task once the write is done: a request dropped mid-write (its client went
//! away) does not cancel it, so a committed revocation always empties the
//! cache, whether or not anyone still waits for the answer.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::cache::GrantCache;
use super::{
    AccountQuery, AccountSummary, AuditQuery, DomainUsage, IfMatch, NewAccount, NewToken, Page,
    PurgeReport, Result, Store, StoreError, StoredRoutes, TokenCounts, TokenEdit, TokenQuery,
    TokenUse,
};
use crate::core::acting::ActingOn;
use crate::core::audit::{Actor, Entry};
use crate::core::forward_auth::RuleDocument;
use crate::core::ids::Id;
use crate::core::model::{
    Account, CatalogEntry, Domain, Member, Membership, Role, Session, Token, TokenGrant, Workspace,
};
use crate::core::scopes::Scope;
use crate::core::settings::{Settings, SettingsPatch};
use crate::core::time::Timestamp;
use crate::core::token_format::TokenHash;

pub struct CachedStore {
    inner: Arc<dyn Store>,
    grants: Arc<GrantCache>,
}

impl CachedStore {
    /// Keeps at most `capacity` verified tokens in memory; 0 makes every
    /// verification read the database.
    pub fn new(inner: Arc<dyn Store>, capacity: usize) -> Self {
        CachedStore {
            inner,
            grants: Arc::new(GrantCache::new(capacity)),
        }
    }

    /// The cache, for whatever else learns of writes (another process, or
    /// another node).
    pub fn grants(&self) -> Arc<GrantCache> {
        Arc::clone(&self.grants)
    }

    /// Runs `write` on its own task and empties the cache there when it is
    /// done, when `changed` says the outcome may have changed an answer.
    /// A failed write empties it too: whether it committed is not always
    /// known.
    async fn invalidating<T, F, Fut>(&self, write: F, changed: fn(&T) -> bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let grants = Arc::clone(&self.grants);
        let write = write(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let out = write.await;
            if out.as_ref().is_err() || out.as_ref().is_ok_and(changed) {
                grants.invalidate();
            }
            out
        })
        .await
        .map_err(|e| {
            // The task failed before it could empty the cache.
            self.grants.invalidate();
            StoreError::Internal(format!("database task failed: {e}"))
        })?
    }
}

fn always<T>(_: &T) -> bool {
    true
}

#[async_trait]
impl Store for CachedStore {
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        self.inner.signing_key().await
    }

    async fn has_accounts(&self) -> Result<bool> {
        self.inner.has_accounts().await
    }

    async fn create_account(&self, new: NewAccount, by: Actor) -> Result<(Account, Workspace)> {
        self.inner.create_account(new, by).await
    }

    async fn account(&self, id: Id<Account>) -> Result<Option<Account>> {
        self.inner.account(id).await
    }

    async fn credentials(&self, email: String) -> Result<Option<(Account, String)>> {
        self.inner.credentials(email).await
    }

    async fn change_password(
        &self,
        id: Id<Account>,
        hash: String,
        keep: Id<Session>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.inner.change_password(id, hash, keep, now, by).await
    }

    async fn create_session(&self, session: Session, by: Actor) -> Result<()> {
        self.inner.create_session(session, by).await
    }

    async fn live_session(
        &self,
        id: Id<Session>,
        now: Timestamp,
    ) -> Result<Option<(Session, Account)>> {
        self.inner.live_session(id, now).await
    }

    async fn revoke_session(&self, id: Id<Session>, now: Timestamp, by: Actor) -> Result<()> {
        self.inner.revoke_session(id, now, by).await
    }

    async fn workspaces_of(&self, account: Id<Account>) -> Result<Vec<(Workspace, Role)>> {
        self.inner.workspaces_of(account).await
    }

    async fn workspace(&self, id: Id<Workspace>) -> Result<Option<Workspace>> {
        self.inner.workspace(id).await
    }

    async fn membership(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
    ) -> Result<Option<Membership>> {
        self.inner.membership(workspace, account).await
    }

    async fn create_workspace(
        &self,
        owner: Id<Account>,
        name: String,
        token_prefix: Option<String>,
        now: Timestamp,
        by: Actor,
    ) -> Result<Workspace> {
        self.inner
            .create_workspace(owner, name, token_prefix, now, by)
            .await
    }

    async fn update_workspace(
        &self,
        id: Id<Workspace>,
        name: Option<String>,
        token_prefix: Option<Option<String>>,
        by: Actor,
    ) -> Result<Workspace> {
        self.inner
            .update_workspace(id, name, token_prefix, by)
            .await
    }

    async fn members(&self, workspace: Id<Workspace>) -> Result<Vec<Member>> {
        self.inner.members(workspace).await
    }

    async fn add_member(
        &self,
        workspace: Id<Workspace>,
        email: String,
        membership: Membership,
        now: Timestamp,
        by: Actor,
    ) -> Result<Member> {
        self.invalidating(
            move |s| async move { s.add_member(workspace, email, membership, now, by).await },
            always,
        )
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
        self.invalidating(
            move |s| async move { s.update_member(workspace, account, role, scopes, by).await },
            always,
        )
        .await
    }

    async fn remove_member(
        &self,
        workspace: Id<Workspace>,
        account: Id<Account>,
        by: Actor,
    ) -> Result<()> {
        self.invalidating(
            move |s| async move { s.remove_member(workspace, account, by).await },
            always,
        )
        .await
    }

    async fn catalog(&self, workspace: Id<Workspace>) -> Result<Vec<CatalogEntry>> {
        self.inner.catalog(workspace).await
    }

    async fn put_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        entry: CatalogEntry,
        by: Actor,
    ) -> Result<CatalogEntry> {
        self.inner.put_catalog_entry(workspace, entry, by).await
    }

    async fn delete_catalog_entry(
        &self,
        workspace: Id<Workspace>,
        name: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.invalidating(
            move |s| async move { s.delete_catalog_entry(workspace, name, now, by).await },
            always,
        )
        .await
    }

    async fn settings(&self) -> Result<Settings> {
        self.inner.settings().await
    }

    async fn update_settings(&self, patch: SettingsPatch, by: Actor) -> Result<Settings> {
        self.inner.update_settings(patch, by).await
    }

    async fn create_token(&self, new: NewToken, by: Actor) -> Result<Token> {
        self.inner.create_token(new, by).await
    }

    async fn token(&self, workspace: Id<Workspace>, id: Id<Token>) -> Result<Option<Token>> {
        self.inner.token(workspace, id).await
    }

    async fn list_tokens(&self, query: TokenQuery) -> Result<Page<Token>> {
        self.inner.list_tokens(query).await
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
        self.invalidating(
            move |s| async move { s.update_token(workspace, id, edit, now, acting, by).await },
            always,
        )
        .await
    }

    async fn revoke_token(
        &self,
        workspace: Id<Workspace>,
        id: Id<Token>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.invalidating(
            move |s| async move { s.revoke_token(workspace, id, now, by).await },
            always,
        )
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
        self.invalidating(
            move |s| async move { s.rotate_token(old, new, old_expires_at, acting, by).await },
            always,
        )
        .await
    }

    async fn token_grant(&self, hash: TokenHash) -> Result<Option<Arc<TokenGrant>>> {
        if let Some(hit) = self.grants.get(&hash) {
            return Ok(Some(hit));
        }
        let generation = self.grants.generation();
        let found = self.inner.token_grant(hash).await?;
        if let Some(grant) = &found {
            self.grants.insert(generation, hash, Arc::clone(grant));
        }
        Ok(found)
    }

    fn token_grant_in_memory(&self, hash: &TokenHash) -> Option<Arc<TokenGrant>> {
        self.grants.get(hash)
    }

    async fn record_token_uses(&self, uses: Vec<TokenUse>) -> Result<()> {
        // Cached grants keep the last use as it was when they were read; the
        // usage log remembers what it stored and answers take the later.
        self.inner.record_token_uses(uses).await
    }

    async fn purge(&self, now: Timestamp) -> Result<PurgeReport> {
        self.invalidating(
            move |s| async move { s.purge(now).await },
            |report: &PurgeReport| report.tokens > 0,
        )
        .await
    }

    async fn create_domain(
        &self,
        workspace: Id<Workspace>,
        domain: Domain,
        token: NewToken,
        by: Actor,
    ) -> Result<Token> {
        self.inner.create_domain(workspace, domain, token, by).await
    }

    async fn domains(&self, workspace: Id<Workspace>, now: Timestamp) -> Result<Vec<DomainUsage>> {
        self.inner.domains(workspace, now).await
    }

    async fn domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
    ) -> Result<Option<DomainUsage>> {
        self.inner.domain(workspace, id, now).await
    }

    async fn delete_domain(
        &self,
        workspace: Id<Workspace>,
        id: Id<Domain>,
        now: Timestamp,
        by: Actor,
    ) -> Result<()> {
        self.invalidating(
            move |s| async move { s.delete_domain(workspace, id, now, by).await },
            always,
        )
        .await
    }

    async fn record_sign_in_failure(&self, email: String, by: Actor) -> Result<()> {
        self.inner.record_sign_in_failure(email, by).await
    }

    async fn audit_entries(&self, query: AuditQuery) -> Result<Page<Entry>> {
        self.inner.audit_entries(query).await
    }

    async fn list_accounts(&self, query: AccountQuery) -> Result<Page<AccountSummary>> {
        self.inner.list_accounts(query).await
    }

    async fn set_account_disabled(
        &self,
        id: Id<Account>,
        disabled: bool,
        now: Timestamp,
        by: Actor,
    ) -> Result<AccountSummary> {
        self.invalidating(
            move |s| async move { s.set_account_disabled(id, disabled, now, by).await },
            always,
        )
        .await
    }

    async fn delete_account(&self, id: Id<Account>, by: Actor) -> Result<()> {
        self.invalidating(
            move |s| async move { s.delete_account(id, by).await },
            always,
        )
        .await
    }

    async fn reset_password(
        &self,
        email: String,
        hash: String,
        now: Timestamp,
        by: Actor,
    ) -> Result<Account> {
        self.inner.reset_password(email, hash, now, by).await
    }

    async fn token_counts(&self, now: Timestamp) -> Result<TokenCounts> {
        self.inner.token_counts(now).await
    }

    async fn routes(&self, workspace: Id<Workspace>) -> Result<Option<StoredRoutes>> {
        self.inner.routes(workspace).await
    }

    async fn put_routes(
        &self,
        workspace: Id<Workspace>,
        document: RuleDocument,
        expected: Option<IfMatch>,
        now: Timestamp,
        by: Actor,
    ) -> Result<StoredRoutes> {
        self.inner
            .put_routes(workspace, document, expected, now, by)
            .await
    }
}
