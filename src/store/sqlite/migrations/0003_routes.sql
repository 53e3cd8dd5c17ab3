-- tokenward schema 3 (API v1.1 §10): each workspace's forward-auth rules, one
-- JSON document replaced whole by every write. `version` is the document's
-- ETag; a workspace with no row has the default document at version 0.

CREATE TABLE route_documents (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL CHECK (version > 0),
    document     TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
