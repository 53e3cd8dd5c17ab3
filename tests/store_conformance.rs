//! The storage door's contract, the same for every store: each rule decided
//! inside a write and the error it answers with, through the library's
//! `Store` trait. Runs on SQLite always, and on PostgreSQL too when
//! `TOKENWARD_TEST_POSTGRES` is set.

mod common;

use std::sync::Arc;

use common::{PgDatabase, TempDir, postgres_url};
use tokenward::core::acting::ActingOn;
use tokenward::core::audit::Actor;
use tokenward::core::forward_auth::RuleDocument;
use tokenward::core::ids::Id;
use tokenward::core::model::{
    Account, AccountRef, Domain, Membership, Role, TokenState, Workspace,
};
use tokenward::core::scopes::Scope;
use tokenward::core::settings::SettingsPatch;
use tokenward::core::time::Timestamp;
use tokenward::core::token_format::TokenHash;
use tokenward::store::{
    Backend, IfMatch, NewAccount, NewToken, SignUpRules, Store, StoreError, TokenName, TokenUse,
};

/// A store under test, with what keeps its database alive.
struct Opened {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: TempDir,
    _pg: Option<PgDatabase>,
}

/// A fresh database in every store there is to test.
async fn each_store() -> Vec<Opened> {
    let dir = TempDir::new();
    let path = dir.path().join("data").join("tokenward.db");
    let sqlite = tokio::task::spawn_blocking(move || Backend::open(&path))
        .await
        .unwrap()
        .unwrap();
    let mut stores = vec![Opened {
        name: "sqlite",
        store: sqlite.store(),
        _dir: dir,
        _pg: None,
    }];
    if let Some(url) = postgres_url() {
        let pg = PgDatabase::create(&url);
        let db = pg.url.clone();
        let backend = tokio::task::spawn_blocking(move || Backend::open(std::path::Path::new(&db)))
            .await
            .unwrap()
            .unwrap();
        stores.push(Opened {
            name: "postgres",
            store: backend.store(),
            _dir: TempDir::new(),
            _pg: Some(pg),
        });
    }
    stores
}

const NOW: Timestamp = Timestamp(1_800_000_000);

fn rules(by: Option<Id<Account>>, setup_code_matched: Option<bool>) -> SignUpRules {
    SignUpRules {
        by,
        setup_code_matched,
        from_cli: false,
    }
}

async fn account(
    store: &dyn Store,
    email: &str,
    allowed: SignUpRules,
) -> Result<(Account, Workspace), StoreError> {
    store
        .create_account(
            NewAccount {
                id: Id::new(),
                email: email.to_owned(),
                password_hash: "hash".into(),
                workspace_name: format!("{email}'s workspace"),
                now: NOW,
                allowed,
            },
            Actor::cli(),
        )
        .await
}

fn scopes(text: &[&str]) -> Vec<Scope> {
    text.iter().map(|s| s.parse().unwrap()).collect()
}

fn new_token(owner: &Account, workspace: Id<Workspace>, secret: &str, held: &[&str]) -> NewToken {
    NewToken {
        id: Id::new(),
        workspace_id: workspace,
        owner: AccountRef {
            id: owner.id,
            email: owner.email.clone(),
        },
        name: TokenName::Numbered("t".into()),
        hash: TokenHash::of(secret),
        hint: "hint".into(),
        scopes: scopes(held),
        created_at: NOW,
        expires_at: Some(NOW.plus(3600)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_rules_are_decided_in_the_write() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let refused = account(store, "first@example.com", rules(None, Some(false))).await;
        assert!(
            matches!(refused, Err(StoreError::SetupCodeNeeded)),
            "{name}: {refused:?}"
        );
        let (admin, _) = account(store, "first@example.com", rules(None, Some(true)))
            .await
            .unwrap();
        assert!(admin.instance_admin, "{name}");
        let closed = account(store, "second@example.com", rules(None, None)).await;
        assert!(
            matches!(closed, Err(StoreError::SignUpClosed)),
            "{name}: {closed:?}"
        );
        let (second, _) = account(store, "second@example.com", rules(Some(admin.id), None))
            .await
            .unwrap();
        assert!(!second.instance_admin, "{name}");
        let taken = account(store, "second@example.com", rules(Some(admin.id), None)).await;
        assert!(
            matches!(taken, Err(StoreError::EmailTaken)),
            "{name}: {taken:?}"
        );
        assert!(store.has_accounts().await.unwrap(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn member_rules_and_their_errors() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let (admin, ws) = account(store, "admin@example.com", rules(None, None))
            .await
            .unwrap();
        let (bob, _) = account(store, "bob@example.com", rules(Some(admin.id), None))
            .await
            .unwrap();
        let member = Membership {
            role: Role::Member,
            scopes: scopes(&["tokens"]),
        };
        let nobody = store
            .add_member(
                ws.id,
                "nobody@example.com".into(),
                member.clone(),
                NOW,
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(nobody, Err(StoreError::NoSuchAccount)),
            "{name}: {nobody:?}"
        );
        let unknown = store
            .add_member(
                ws.id,
                "bob@example.com".into(),
                Membership {
                    role: Role::Member,
                    scopes: scopes(&["billing"]),
                },
                NOW,
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(unknown, Err(StoreError::UnknownScope(_))),
            "{name}: {unknown:?}"
        );
        store
            .add_member(
                ws.id,
                "bob@example.com".into(),
                member.clone(),
                NOW,
                Actor::cli(),
            )
            .await
            .unwrap();
        let again = store
            .add_member(ws.id, "bob@example.com".into(), member, NOW, Actor::cli())
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyMember)),
            "{name}: {again:?}"
        );
        let demoted = store
            .update_member(ws.id, admin.id, Some(Role::Member), None, Actor::cli())
            .await;
        assert!(
            matches!(demoted, Err(StoreError::LastAdmin)),
            "{name}: {demoted:?}"
        );
        let removed = store.remove_member(ws.id, admin.id, Actor::cli()).await;
        assert!(
            matches!(removed, Err(StoreError::LastAdmin)),
            "{name}: {removed:?}"
        );
        let members = store.members(ws.id).await.unwrap();
        let emails: Vec<&str> = members.iter().map(|m| m.account.email.as_str()).collect();
        assert_eq!(emails, ["admin@example.com", "bob@example.com"], "{name}");
        store
            .remove_member(ws.id, bob.id, Actor::cli())
            .await
            .unwrap();
        assert!(
            store.membership(ws.id, bob.id).await.unwrap().is_none(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_admin_rules_and_their_errors() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let (admin, _) = account(store, "admin@example.com", rules(None, None))
            .await
            .unwrap();
        let (bob, bobs) = account(store, "bob@example.com", rules(Some(admin.id), None))
            .await
            .unwrap();
        let disabled = store
            .set_account_disabled(admin.id, true, NOW, Actor::cli())
            .await;
        assert!(
            matches!(disabled, Err(StoreError::LastInstanceAdmin)),
            "{name}: {disabled:?}"
        );
        let deleted = store.delete_account(admin.id, Actor::cli()).await;
        assert!(
            matches!(deleted, Err(StoreError::LastInstanceAdmin)),
            "{name}: {deleted:?}"
        );
        // Bob is the only admin of his workspace, which has another member.
        store
            .add_member(
                bobs.id,
                "admin@example.com".into(),
                Membership {
                    role: Role::Member,
                    scopes: Vec::new(),
                },
                NOW,
                Actor::cli(),
            )
            .await
            .unwrap();
        let stranded = store.delete_account(bob.id, Actor::cli()).await;
        assert!(
            matches!(&stranded, Err(StoreError::OnlyWorkspaceAdmin(ws)) if *ws == bobs.name),
            "{name}: {stranded:?}"
        );
        let summary = store
            .set_account_disabled(bob.id, true, NOW, Actor::cli())
            .await
            .unwrap();
        assert!(summary.account.disabled, "{name}");
        assert_eq!(summary.disabled_at, Some(NOW), "{name}");
        let missing = store.delete_account(Id::new(), Actor::cli()).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound)),
            "{name}: {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_and_domain_rules_and_their_errors() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let (admin, ws) = account(store, "admin@example.com", rules(None, None))
            .await
            .unwrap();
        let unknown = store
            .create_token(new_token(&admin, ws.id, "s0", &["billing"]), Actor::cli())
            .await;
        assert!(
            matches!(unknown, Err(StoreError::UnknownScope(_))),
            "{name}: {unknown:?}"
        );
        let domain = Domain {
            id: Id::new(),
            name: "example.com".into(),
            created_at: NOW,
        };
        let domain_token = store
            .create_domain(
                ws.id,
                domain.clone(),
                new_token(&admin, ws.id, "s1", &["domain:example.com"]),
                Actor::cli(),
            )
            .await
            .unwrap();
        assert_eq!(
            domain_token.name,
            format!("t token {}", domain_token.number)
        );
        let exists = store
            .create_domain(
                ws.id,
                Domain {
                    id: Id::new(),
                    ..domain
                },
                new_token(&admin, ws.id, "s2", &["domain:example.com"]),
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(exists, Err(StoreError::DomainExists)),
            "{name}: {exists:?}"
        );
        let last = store
            .revoke_token(ws.id, domain_token.id, NOW, Actor::cli())
            .await;
        assert!(
            matches!(&last, Err(StoreError::LastDomainToken(d)) if d == "example.com"),
            "{name}: {last:?}"
        );

        let plain = store
            .create_token(new_token(&admin, ws.id, "s3", &["tokens"]), Actor::cli())
            .await
            .unwrap();
        assert!(plain.number > domain_token.number, "{name}");
        let grant = store
            .token_grant(TokenHash::of("s3"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(grant.token.id, plain.id, "{name}");
        assert!(
            store
                .token_grant(TokenHash::of("nope"))
                .await
                .unwrap()
                .is_none()
        );

        let replacement = store
            .rotate_token(
                plain.id,
                new_token(&admin, ws.id, "s4", &[]),
                NOW.plus(60),
                ActingOn::unbounded(),
                Actor::cli(),
            )
            .await
            .unwrap();
        assert_eq!(replacement.scopes, plain.scopes, "{name}");
        let twice = store
            .rotate_token(
                plain.id,
                new_token(&admin, ws.id, "s5", &[]),
                NOW.plus(60),
                ActingOn::unbounded(),
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(twice, Err(StoreError::TokenReplaced)),
            "{name}: {twice:?}"
        );

        store
            .revoke_token(ws.id, replacement.id, NOW, Actor::cli())
            .await
            .unwrap();
        // Revoking a revoked token changes nothing.
        store
            .revoke_token(ws.id, replacement.id, NOW, Actor::cli())
            .await
            .unwrap();
        let edited = store
            .update_token(
                ws.id,
                replacement.id,
                Default::default(),
                NOW,
                ActingOn::unbounded(),
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(edited, Err(StoreError::TokenInactive(TokenState::Revoked))),
            "{name}: {edited:?}"
        );
        let missing = store
            .revoke_token(ws.id, Id::new(), NOW, Actor::cli())
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound)),
            "{name}: {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn last_uses_merge_latest_wins() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let (admin, ws) = account(store, "admin@example.com", rules(None, None))
            .await
            .unwrap();
        let token = store
            .create_token(new_token(&admin, ws.id, "s", &["tokens"]), Actor::cli())
            .await
            .unwrap();
        let used = |at: i64, ip: &str| TokenUse {
            token_id: token.id,
            at: Timestamp(at),
            ip: Some(ip.to_owned()),
        };
        store
            .record_token_uses(vec![used(NOW.0 + 20, "10.0.0.2")])
            .await
            .unwrap();
        // A node flushing an older use later does not go back in time.
        store
            .record_token_uses(vec![used(NOW.0 + 10, "10.0.0.1")])
            .await
            .unwrap();
        let stored = store.token(ws.id, token.id).await.unwrap().unwrap();
        assert_eq!(stored.last_used_at, Some(Timestamp(NOW.0 + 20)), "{name}");
        assert_eq!(stored.last_used_ip.as_deref(), Some("10.0.0.2"), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_and_settings_rules_and_their_errors() {
    for opened in each_store().await {
        let (store, name) = (opened.store.as_ref(), opened.name);
        let (_, ws) = account(store, "admin@example.com", rules(None, None))
            .await
            .unwrap();
        let current = store.routes(ws.id).await.unwrap().unwrap();
        assert_eq!(current.version, 0, "{name}");
        let stale = store
            .put_routes(
                ws.id,
                RuleDocument::default(),
                Some(IfMatch::Versions(vec![5])),
                NOW,
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed)),
            "{name}: {stale:?}"
        );
        let stored = store
            .put_routes(
                ws.id,
                RuleDocument::default(),
                Some(IfMatch::Versions(vec![0])),
                NOW,
                Actor::cli(),
            )
            .await
            .unwrap();
        assert_eq!(stored.version, 1, "{name}");
        let nowhere = store
            .put_routes(Id::new(), RuleDocument::default(), None, NOW, Actor::cli())
            .await;
        assert!(
            matches!(nowhere, Err(StoreError::NotFound)),
            "{name}: {nowhere:?}"
        );
        let invalid = store
            .update_settings(
                SettingsPatch {
                    default_ttl_seconds: Some(-5),
                    ..Default::default()
                },
                Actor::cli(),
            )
            .await;
        assert!(
            matches!(invalid, Err(StoreError::InvalidSettings(_))),
            "{name}: {invalid:?}"
        );
        let open = store
            .update_settings(
                SettingsPatch {
                    allow_signup: Some(true),
                    ..Default::default()
                },
                Actor::cli(),
            )
            .await
            .unwrap();
        assert!(open.allow_signup, "{name}");
        assert!(store.settings().await.unwrap().allow_signup, "{name}");
    }
}
