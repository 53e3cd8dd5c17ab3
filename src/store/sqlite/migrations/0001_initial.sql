-- tokenward schema 1. Times are Unix seconds (UTC); ids are hyphenated UUIDs.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE settings (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    default_ttl_seconds INTEGER NOT NULL,
    max_ttl_seconds     INTEGER NOT NULL,
    allow_no_expiry     INTEGER NOT NULL,
    reset_grace_seconds INTEGER NOT NULL,
    purge_after_seconds INTEGER NOT NULL,
    allow_signup        INTEGER NOT NULL,
    token_prefix        TEXT NOT NULL
) STRICT;

INSERT INTO settings VALUES (1, 14400, 2592000, 0, 43200, 86400, 0, 'tw_');

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    instance_admin INTEGER NOT NULL DEFAULT 0,
    disabled_at    INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE workspaces (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_prefix TEXT,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    scopes       TEXT NOT NULL DEFAULT '',
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
) STRICT;

CREATE INDEX members_by_account ON members (account_id);

CREATE TABLE scope_catalog (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, name)
) STRICT;

CREATE TABLE domains (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
) STRICT;

-- `number` is the instance-wide sequence used in generated names;
-- AUTOINCREMENT guarantees a purged token's number is never handed out again.
CREATE TABLE tokens (
    number       INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    last_used_ip TEXT,
    revoked_at   INTEGER,
    replaced_by  TEXT
) STRICT;

CREATE INDEX tokens_by_workspace ON tokens (workspace_id, number);
CREATE INDEX tokens_by_owner ON tokens (owner_id, workspace_id, number);
CREATE INDEX tokens_by_expiry ON tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tokens_by_revocation ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
