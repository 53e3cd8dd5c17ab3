//! Workspaces, their members and grants, and their scope catalogs.

use postgres::{GenericClient, Row};

use super::audit;
use crate::core::audit::{Actor, Change, Target};
use crate::core::ids::Id;
use crate::core::model::{Account, AccountRef, CatalogEntry, Member, Membership, Role, Workspace};
use crate::core::scopes::{self, Resource, Scope};
use crate::core::time::Timestamp;
use crate::store::{Result, StoreError};

fn workspace_from_row(row: &Row) -> Result<Workspace> {
    Ok(Workspace {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        token_prefix: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

pub fn of_account(
    db: &mut impl GenericClient,
    account: Id<Account>,
) -> Result<Vec<(Workspace, Role)>> {
    db.query(
        "SELECT w.id, w.name, w.token_prefix, w.created_at, m.role
         FROM members m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.account_id = $1
         ORDER BY m.joined_at, m.seq",
        &[&account],
    )?
    .iter()
    .map(|row| Ok((workspace_from_row(row)?, row.try_get(4)?)))
    .collect()
}

pub fn by_id(db: &mut impl GenericClient, id: Id<Workspace>) -> Result<Option<Workspace>> {
    db.query_opt(
        "SELECT id, name, token_prefix, created_at FROM workspaces WHERE id = $1",
        &[&id],
    )?
    .map(|row| workspace_from_row(&row))
    .transpose()
}

pub fn membership(
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    account: Id<Account>,
) -> Result<Option<Membership>> {
    match db.query_opt(
        "SELECT role, scopes FROM members WHERE workspace_id = $1 AND account_id = $2",
        &[&workspace, &account],
    )? {
        Some(row) => Ok(Some(Membership {
            role: row.try_get(0)?,
            scopes: scopes::decode(row.try_get::<_, &str>(1)?),
        })),
        None => Ok(None),
    }
}

pub fn create(
    tx: &mut impl GenericClient,
    owner: Id<Account>,
    name: &str,
    token_prefix: Option<&str>,
    now: Timestamp,
) -> Result<Workspace> {
    let workspace = Workspace {
        id: Id::new(),
        name: name.to_owned(),
        token_prefix: token_prefix.map(str::to_owned),
        created_at: now,
    };
    tx.execute(
        "INSERT INTO workspaces (id, name, token_prefix, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &workspace.id,
            &workspace.name,
            &workspace.token_prefix,
            &now,
        ],
    )?;
    tx.execute(
        "INSERT INTO members (workspace_id, account_id, role, scopes, joined_at)
         VALUES ($1, $2, 'admin', '', $3)",
        &[&workspace.id, &owner, &now],
    )?;
    Ok(workspace)
}

/// `create`, as its own change (a personal workspace is part of its
/// account's creation instead).
pub fn create_audited(
    tx: &mut impl GenericClient,
    owner: Id<Account>,
    name: &str,
    token_prefix: Option<&str>,
    now: Timestamp,
    by: &Actor,
) -> Result<Workspace> {
    let workspace = create(tx, owner, name, token_prefix, now)?;
    let change = Change::new(
        "workspace.create",
        Some(workspace.id),
        Target::new("workspace", workspace.id, workspace.name.clone()),
    );
    audit::record(tx, by, &change)?;
    Ok(workspace)
}

pub fn update(
    tx: &mut impl GenericClient,
    id: Id<Workspace>,
    name: Option<&str>,
    token_prefix: &Option<Option<String>>,
    by: &Actor,
) -> Result<Workspace> {
    if let Some(name) = name {
        tx.execute(
            "UPDATE workspaces SET name = $2 WHERE id = $1",
            &[&id, &name],
        )?;
    }
    if let Some(prefix) = token_prefix {
        tx.execute(
            "UPDATE workspaces SET token_prefix = $2 WHERE id = $1",
            &[&id, prefix],
        )?;
    }
    let workspace = by_id(tx, id)?.ok_or(StoreError::NotFound)?;
    let mut change = Change::new(
        "workspace.update",
        Some(id),
        Target::new("workspace", id, workspace.name.clone()),
    );
    if name.is_some() {
        change = change.with("name", workspace.name.clone());
    }
    if let Some(prefix) = &workspace.token_prefix {
        change = change.with("token_prefix", prefix.clone());
    }
    audit::record(tx, by, &change)?;
    Ok(workspace)
}

fn member_target(member: &Member) -> Target {
    Target::new("member", member.account.id, member.account.email.clone())
}

fn member_from_row(row: &Row) -> Result<Member> {
    Ok(Member {
        account: AccountRef {
            id: row.try_get(0)?,
            email: row.try_get(1)?,
        },
        role: row.try_get(2)?,
        scopes: scopes::decode(row.try_get::<_, &str>(3)?),
    })
}

const MEMBER_SELECT: &str = "SELECT a.id, a.email, m.role, m.scopes
     FROM members m JOIN accounts a ON a.id = m.account_id";

pub fn members(db: &mut impl GenericClient, workspace: Id<Workspace>) -> Result<Vec<Member>> {
    let sql = format!("{MEMBER_SELECT} WHERE m.workspace_id = $1 ORDER BY m.joined_at, m.seq");
    db.query(&sql, &[&workspace])?
        .iter()
        .map(member_from_row)
        .collect()
}

fn member(
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    account: Id<Account>,
) -> Result<Member> {
    let sql = format!("{MEMBER_SELECT} WHERE m.workspace_id = $1 AND m.account_id = $2");
    match db.query_opt(&sql, &[&workspace, &account])? {
        Some(row) => member_from_row(&row),
        None => Err(StoreError::NotFound),
    }
}

/// Every scope must name something that exists in this workspace: a catalog
/// entry, a domain, or a built-in.
pub(super) fn ensure_known(
    db: &mut impl GenericClient,
    workspace: Id<Workspace>,
    wanted: &[Scope],
) -> Result<()> {
    for scope in wanted {
        let known: bool = match &scope.resource {
            Resource::Tokens
            | Resource::Domains
            | Resource::Verify
            | Resource::Routes
            | Resource::Audit => true,
            Resource::Catalog(name) => db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM scope_catalog WHERE workspace_id = $1 AND name = $2)",
                    &[&workspace, name],
                )?
                .try_get(0)?,
            Resource::Domain(name) => db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM domains WHERE workspace_id = $1 AND name = $2)",
                    &[&workspace, name],
                )?
                .try_get(0)?,
        };
        if !known {
            return Err(StoreError::UnknownScope(scope.to_string()));
        }
    }
    Ok(())
}

fn admin_count(db: &mut impl GenericClient, workspace: Id<Workspace>) -> Result<i64> {
    Ok(db
        .query_one(
            "SELECT COUNT(*) FROM members WHERE workspace_id = $1 AND role = 'admin'",
            &[&workspace],
        )?
        .try_get(0)?)
}

pub fn add_member(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    email: &str,
    membership: &Membership,
    now: Timestamp,
    by: &Actor,
) -> Result<Member> {
    let account: Id<Account> = tx
        .query_opt("SELECT id FROM accounts WHERE email = $1", &[&email])?
        .ok_or(StoreError::NoSuchAccount)?
        .try_get(0)?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM members WHERE workspace_id = $1 AND account_id = $2)",
            &[&workspace, &account],
        )?
        .try_get(0)?;
    if exists {
        return Err(StoreError::AlreadyMember);
    }
    ensure_known(tx, workspace, &membership.scopes)?;
    tx.execute(
        "INSERT INTO members (workspace_id, account_id, role, scopes, joined_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &workspace,
            &account,
            &membership.role,
            &scopes::encode(&membership.scopes),
            &now,
        ],
    )?;
    let added = member(tx, workspace, account)?;
    let change = Change::new("member.add", Some(workspace), member_target(&added))
        .with("role", added.role.as_str())
        .with("scopes", scopes::encode(&added.scopes));
    audit::record(tx, by, &change)?;
    Ok(added)
}

/// Serializable: two nodes demoting a workspace's last two admins at once
/// cannot both count the other.
pub fn update_member(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    account: Id<Account>,
    role: Option<Role>,
    new_scopes: &Option<Vec<Scope>>,
    by: &Actor,
) -> Result<Member> {
    let current = member(tx, workspace, account)?;
    if let Some(role) = role {
        if current.role == Role::Admin && role != Role::Admin && admin_count(tx, workspace)? <= 1 {
            return Err(StoreError::LastAdmin);
        }
        tx.execute(
            "UPDATE members SET role = $3 WHERE workspace_id = $1 AND account_id = $2",
            &[&workspace, &account, &role],
        )?;
    }
    if let Some(new_scopes) = new_scopes {
        ensure_known(tx, workspace, new_scopes)?;
        tx.execute(
            "UPDATE members SET scopes = $3 WHERE workspace_id = $1 AND account_id = $2",
            &[&workspace, &account, &scopes::encode(new_scopes)],
        )?;
    }
    let updated = member(tx, workspace, account)?;
    let mut change = Change::new("member.update", Some(workspace), member_target(&updated));
    if role.is_some() {
        change = change.with("role", updated.role.as_str());
    }
    if new_scopes.is_some() {
        change = change.with("scopes", scopes::encode(&updated.scopes));
    }
    audit::record(tx, by, &change)?;
    Ok(updated)
}

pub fn remove_member(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    account: Id<Account>,
    by: &Actor,
) -> Result<()> {
    let current = member(tx, workspace, account)?;
    if current.role == Role::Admin && admin_count(tx, workspace)? <= 1 {
        return Err(StoreError::LastAdmin);
    }
    tx.execute(
        "DELETE FROM members WHERE workspace_id = $1 AND account_id = $2",
        &[&workspace, &account],
    )?;
    let change = Change::new("member.remove", Some(workspace), member_target(&current));
    audit::record(tx, by, &change)
}

pub fn catalog(db: &mut impl GenericClient, workspace: Id<Workspace>) -> Result<Vec<CatalogEntry>> {
    db.query(
        "SELECT name, description FROM scope_catalog WHERE workspace_id = $1 ORDER BY name",
        &[&workspace],
    )?
    .iter()
    .map(|row| {
        Ok(CatalogEntry {
            name: row.try_get(0)?,
            description: row.try_get(1)?,
        })
    })
    .collect()
}

pub fn put_catalog_entry(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    entry: &CatalogEntry,
    by: &Actor,
) -> Result<CatalogEntry> {
    tx.execute(
        "INSERT INTO scope_catalog (workspace_id, name, description) VALUES ($1, $2, $3)
         ON CONFLICT (workspace_id, name) DO UPDATE SET description = excluded.description",
        &[&workspace, &entry.name, &entry.description],
    )?;
    let change = Change::new(
        "scope.put",
        Some(workspace),
        Target::new("scope", &entry.name, entry.name.clone()),
    )
    .with("description", entry.description.clone());
    audit::record(tx, by, &change)?;
    Ok(entry.clone())
}

pub fn delete_catalog_entry(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    name: &str,
    now: Timestamp,
    by: &Actor,
) -> Result<()> {
    let deleted = tx.execute(
        "DELETE FROM scope_catalog WHERE workspace_id = $1 AND name = $2",
        &[&workspace, &name],
    )?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    strip_resource(tx, workspace, &Resource::Catalog(name.to_owned()), now)?;
    let change = Change::new(
        "scope.delete",
        Some(workspace),
        Target::new("scope", name, name),
    );
    audit::record(tx, by, &change)
}

/// Removes every scope on `resource` from the workspace's tokens and grants.
/// A token left with no scope can do nothing, so it is revoked.
pub(super) fn strip_resource(
    tx: &mut impl GenericClient,
    workspace: Id<Workspace>,
    resource: &Resource,
    now: Timestamp,
) -> Result<()> {
    let keep = |text: &str| -> Option<Vec<Scope>> {
        let held = scopes::decode(text);
        let kept: Vec<Scope> = held
            .iter()
            .filter(|s| &s.resource != resource)
            .cloned()
            .collect();
        (kept.len() != held.len()).then_some(kept)
    };

    let mut tokens = Vec::new();
    for row in tx.query(
        "SELECT number, scopes FROM tokens WHERE workspace_id = $1",
        &[&workspace],
    )? {
        if let Some(kept) = keep(row.try_get::<_, &str>(1)?) {
            tokens.push((row.try_get::<_, i64>(0)?, kept));
        }
    }
    for (number, kept) in tokens {
        tx.execute(
            "UPDATE tokens SET scopes = $2,
                 revoked_at = CASE WHEN $2 = '' THEN COALESCE(revoked_at, $3) ELSE revoked_at END
             WHERE number = $1",
            &[&number, &scopes::encode(&kept), &now],
        )?;
    }

    let mut grants = Vec::new();
    for row in tx.query(
        "SELECT account_id, scopes FROM members WHERE workspace_id = $1",
        &[&workspace],
    )? {
        if let Some(kept) = keep(row.try_get::<_, &str>(1)?) {
            grants.push((row.try_get::<_, Id<Account>>(0)?, kept));
        }
    }
    for (account, kept) in grants {
        tx.execute(
            "UPDATE members SET scopes = $3 WHERE workspace_id = $1 AND account_id = $2",
            &[&workspace, &account, &scopes::encode(&kept)],
        )?;
    }
    Ok(())
}
