-- tokenward's PostgreSQL schema 1: the SQLite schema after its migration 4,
-- in one piece. Times are Unix seconds (UTC); ids are hyphenated UUIDs.
-- Names and emails are ordered by code point (COLLATE "C"), as SQLite
-- orders them, whatever the database's locale.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE settings (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    default_ttl_seconds  BIGINT NOT NULL,
    max_ttl_seconds      BIGINT NOT NULL,
    allow_no_expiry      BOOLEAN NOT NULL,
    reset_grace_seconds  BIGINT NOT NULL,
    purge_after_seconds  BIGINT NOT NULL,
    allow_signup         BOOLEAN NOT NULL,
    token_prefix         TEXT NOT NULL,
    audit_retention_days BIGINT NOT NULL DEFAULT 365
);

INSERT INTO settings VALUES (1, 14400, 2592000, FALSE, 43200, 86400, FALSE, 'tw_', 365);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    email          TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    instance_admin BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE workspaces (
    id           TEXT PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL,
    token_prefix TEXT,
    created_at   BIGINT NOT NULL
);

-- `seq` orders members who joined in the same second, as SQLite's rowid does.
CREATE TABLE members (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    scopes       TEXT NOT NULL DEFAULT '',
    joined_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
);

CREATE INDEX members_by_account ON members (account_id);

CREATE TABLE scope_catalog (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE domains (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- `number` is the instance-wide sequence used in generated names: never
-- handed out twice, though a retried or rolled-back write leaves a gap.
CREATE TABLE tokens (
    number       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    last_used_ip TEXT,
    revoked_at   BIGINT,
    replaced_by  TEXT
);

CREATE INDEX tokens_by_workspace ON tokens (workspace_id, number);
CREATE INDEX tokens_by_owner ON tokens (owner_id, workspace_id, number);
CREATE INDEX tokens_by_expiry ON tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tokens_by_revocation ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE route_documents (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL CHECK (version > 0),
    document     TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- No foreign keys: an entry outlives what it names.
CREATE TABLE audit (
    number        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    at            BIGINT NOT NULL,
    action        TEXT NOT NULL,
    actor_kind    TEXT NOT NULL CHECK (actor_kind IN ('session', 'token', 'cli', 'system')),
    actor_account TEXT,
    actor_token   TEXT,
    ip            TEXT,
    workspace_id  TEXT,
    target_kind   TEXT NOT NULL,
    target_id     TEXT,
    target_name   TEXT,
    details       TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_by_workspace ON audit (workspace_id, number);
CREATE INDEX audit_by_time ON audit (at);
