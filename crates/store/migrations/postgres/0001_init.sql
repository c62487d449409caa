-- The PostgreSQL schema: what the SQLite migrations 0001-0007 end up with, in one file.
-- Times are milliseconds since the Unix epoch (UTC). Every integer and 0/1 flag is BIGINT,
-- every real DOUBLE PRECISION and every string or JSON document TEXT, so the row mappers in
-- `crate::rows` decode the same Rust types from both backends.
--
-- SQLite's credit triggers (0007) become CHECK constraints: a write that breaks a bound fails
-- its statement, and so rolls back its transaction. The ceiling itself (rules::MAX_BALANCE) is
-- enforced by the guarded updates; the bounds here keep every sum far from overflowing.

CREATE TABLE accounts (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    credits_available         BIGINT NOT NULL DEFAULT 0,
    credits_held              BIGINT NOT NULL DEFAULT 0,
    price_multiplier          DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    created_at                BIGINT NOT NULL,
    -- Live tasks this account may have at once; NULL = the configured default.
    max_active_tasks          BIGINT,
    -- Signing secrets, sealed with the instance's secret key (never plaintext at rest).
    webhook_secret            TEXT,
    webhook_secret_prev       TEXT,
    webhook_secret_prev_until BIGINT,
    -- Media retention in seconds; NULL = the configured default.
    retention_seconds         BIGINT,
    -- kie.ai-style callback HMAC key, sealed like the webhook secret.
    webhook_hmac_key          TEXT,
    CONSTRAINT accounts_credits_in_range CHECK (
        credits_available >= 0 AND credits_held >= 0
        AND credits_available <= 4000000000000000000 AND credits_held <= 4000000000000000000)
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    -- SHA-256 of the key; the key itself is shown once and never stored.
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE tasks (
    id                 TEXT PRIMARY KEY,             -- UUIDv7
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    key_id             TEXT,
    dialect            TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    model              TEXT NOT NULL,
    spec               TEXT NOT NULL,                -- TaskSpec as JSON
    state              TEXT NOT NULL,
    progress           DOUBLE PRECISION NOT NULL DEFAULT 0,
    channel            TEXT,
    upstream_id        TEXT,
    attempts           BIGINT NOT NULL DEFAULT 0,
    -- When the engine should look at the task next; NULL once nothing is left to do.
    -- Claiming sets it to the lease expiry, so a crashed worker's task comes due again.
    next_attempt_at    BIGINT,
    lease_owner        TEXT,
    lease_until        BIGINT,
    cancel_upstream    BIGINT NOT NULL DEFAULT 0,   -- an upstream cancel is still owed
    credits_held       BIGINT NOT NULL DEFAULT 0,
    credits_captured   BIGINT NOT NULL DEFAULT 0,
    credits_refunded   BIGINT NOT NULL DEFAULT 0,
    failure_code       TEXT,
    failure_message    TEXT,
    outputs            TEXT NOT NULL DEFAULT '[]',   -- JSON array of URLs we serve
    upstream_outputs   TEXT NOT NULL DEFAULT '[]',   -- JSON array of upstream URLs
    deleted            BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    started_at         BIGINT,
    finished_at        BIGINT,
    expires_at         BIGINT,
    -- Names (in media_objects) of the poster and last frame of the first video output.
    poster             TEXT,
    last_frame         TEXT,
    -- When the upstream first reported success and archiving began (its deadline runs from here).
    archive_started_at BIGINT,
    -- When the sweeper deleted the task's media (after `expires_at`).
    media_purged_at    BIGINT,
    CONSTRAINT task_credits_in_range CHECK (
        credits_held >= 0 AND credits_captured >= 0 AND credits_refunded >= 0)
);
CREATE INDEX tasks_due ON tasks(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX tasks_account ON tasks(account_id, id);
CREATE INDEX tasks_channel_active ON tasks(channel, state) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX tasks_account_active ON tasks(account_id) WHERE next_attempt_at IS NOT NULL;
-- The sweeper's work list: tasks whose media have not been deleted yet, by expiry.
CREATE INDEX tasks_media_expiry ON tasks(expires_at)
    WHERE expires_at IS NOT NULL AND media_purged_at IS NULL;

CREATE TABLE task_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,               -- stable id receivers de-duplicate on
    task_id     TEXT NOT NULL REFERENCES tasks(id),
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);
CREATE INDEX task_events_task ON task_events(task_id, seq);

-- Credits: an append-only ledger per account. The account's balances are maintained in the
-- same transaction as each entry, so they never drift; `reelay ledger verify` recomputes them.
CREATE TABLE ledger_entries (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('topup', 'hold', 'capture', 'refund', 'adjust')),
    -- Always positive except for `adjust`, which may be either sign.
    amount      BIGINT NOT NULL
                CHECK (amount BETWEEN -4000000000000000000 AND 4000000000000000000),
    task_id     TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX ledger_account ON ledger_entries(account_id, seq);
-- Credit usage reports read an account's ledger by time range.
CREATE INDEX ledger_account_time ON ledger_entries(account_id, created_at);
-- One hold, at most one capture and at most one refund per task: a retried transition can
-- never charge or refund twice.
CREATE UNIQUE INDEX ledger_one_per_task ON ledger_entries(task_id, kind) WHERE task_id IS NOT NULL;

-- The first response to a create with an Idempotency-Key, replayed for the same key and body.
CREATE TABLE idempotency_keys (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    response_status BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_expiry ON idempotency_keys(expires_at);

-- Webhook outbox. A message is written in the transaction of the task transition it reports;
-- delivery workers claim due messages with a lease, as the engine claims tasks.
CREATE TABLE webhook_messages (
    id               TEXT PRIMARY KEY,          -- evt_<uuidv7 hex>: the `webhook-id` header
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    task_id          TEXT NOT NULL REFERENCES tasks(id),
    seq              BIGINT NOT NULL,           -- order of the task's messages
    event_type       TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,             -- the exact body bytes that are signed and sent
    schedule         TEXT,                      -- retry delays in seconds (comma-separated); NULL = the configured default
    state            TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- Due time. NULL while an earlier message of the same task is still pending (order per
    -- task), and once delivered or failed.
    next_attempt_at  BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    -- The id a kie.ai-style signature covers, for dialects that send one.
    hmac_subject     TEXT,
    -- The backstop of per-task order: `MAX(seq) + 1` is computed under the task's row lock.
    UNIQUE (task_id, seq)
);
CREATE INDEX webhook_messages_due ON webhook_messages(next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE webhook_attempts (
    message_id       TEXT NOT NULL REFERENCES webhook_messages(id),
    n                BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    status           BIGINT,                    -- HTTP status; NULL when no response
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT,                      -- first bytes of the response body
    PRIMARY KEY (message_id, n)
);

-- Media archive: one row per object in the media store, written as soon as the object is
-- complete, so that nothing stored is ever forgotten: the sweeper deletes exactly these.
CREATE TABLE media_objects (
    task_id       TEXT NOT NULL REFERENCES tasks(id),
    name          TEXT NOT NULL,               -- `0.mp4`, `0.poster.jpg`: the key is <task_id>/<name>
    kind          TEXT NOT NULL CHECK (kind IN ('output', 'poster', 'last_frame')),
    output_index  BIGINT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,               -- lowercase hex; the ETag
    source_url    TEXT,                        -- the upstream URL an output was copied from
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (task_id, name)
);
