-- The audit log (§11): one row per change, written in the change's own
-- transaction. No foreign keys: an entry outlives the account, token or
-- workspace it names. `number` orders entries; `at` is Unix seconds.
CREATE TABLE audit (
    number        INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    at            INTEGER NOT NULL,
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
) STRICT;

CREATE INDEX audit_by_workspace ON audit (workspace_id, number);
CREATE INDEX audit_by_time ON audit (at);

ALTER TABLE settings ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 365;
