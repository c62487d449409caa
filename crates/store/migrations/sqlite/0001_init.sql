-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    -- Credits (issue: credits ledger) are carried from the start so the accept path can hold
    -- them in the same transaction as the task insert.
    credits_available    INTEGER NOT NULL DEFAULT 0,
    credits_held         INTEGER NOT NULL DEFAULT 0,
    price_multiplier     REAL    NOT NULL DEFAULT 1.0,
    created_at           INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    last_used_at  INTEGER
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,             -- UUIDv7
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    key_id            TEXT,
    dialect           TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    spec              TEXT NOT NULL,                -- TaskSpec as JSON
    state             TEXT NOT NULL,
    progress          REAL NOT NULL DEFAULT 0,
    channel           TEXT,
    upstream_id       TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- When the engine should look at the task next; NULL once nothing is left to do.
    -- Claiming sets it to the lease expiry, so a crashed worker's task comes due again.
    next_attempt_at   INTEGER,
    lease_owner       TEXT,
    lease_until       INTEGER,
    cancel_upstream   INTEGER NOT NULL DEFAULT 0,   -- an upstream cancel is still owed
    credits_held      INTEGER NOT NULL DEFAULT 0,
    credits_captured  INTEGER NOT NULL DEFAULT 0,
    credits_refunded  INTEGER NOT NULL DEFAULT 0,
    failure_code      TEXT,
    failure_message   TEXT,
    outputs           TEXT NOT NULL DEFAULT '[]',   -- JSON array of URLs we serve
    upstream_outputs  TEXT NOT NULL DEFAULT '[]',   -- JSON array of upstream URLs
    deleted           INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    expires_at        INTEGER
);
CREATE INDEX tasks_due ON tasks(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX tasks_account ON tasks(account_id, id);
CREATE INDEX tasks_channel_active ON tasks(channel, state) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE task_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,               -- stable id receivers de-duplicate on
    task_id     TEXT NOT NULL REFERENCES tasks(id),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
);
CREATE INDEX task_events_task ON task_events(task_id, seq);
