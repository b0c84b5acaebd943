-- Access to the gateway service: tokens (only their SHA-256 is kept, never the token) with a scope, and
-- the audit trail of every request that changes something. Each audit row carries the hash of the row
-- before it and its own, so an edited, inserted or deleted row breaks the chain (`audit verify`).
CREATE TABLE tokens (
    token_id   INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
    sha256     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;

CREATE TABLE audit (
    entry_id  INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    token     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    result    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;
