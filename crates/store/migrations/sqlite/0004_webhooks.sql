-- Webhook outbox. A message is written in the transaction of the task transition it reports;
-- delivery workers claim due messages with a lease, as the engine claims tasks.

-- Per-account signing secrets, sealed with the instance's secret key (never plaintext at rest).
-- During a rotation the previous secret keeps signing until `webhook_secret_prev_until`.
ALTER TABLE accounts ADD COLUMN webhook_secret TEXT;
ALTER TABLE accounts ADD COLUMN webhook_secret_prev TEXT;
ALTER TABLE accounts ADD COLUMN webhook_secret_prev_until INTEGER;

CREATE TABLE webhook_messages (
    id               TEXT PRIMARY KEY,          -- evt_<uuidv7 hex>: the `webhook-id` header
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    task_id          TEXT NOT NULL REFERENCES tasks(id),
    seq              INTEGER NOT NULL,          -- order of the task's messages
    event_type       TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,             -- the exact body bytes that are signed and sent
    schedule         TEXT,                      -- retry delays in seconds (comma-separated); NULL = the configured default
    state            TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Due time. NULL while an earlier message of the same task is still pending (order per
    -- task), and once delivered or failed.
    next_attempt_at  INTEGER,
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (task_id, seq)
);
CREATE INDEX webhook_messages_due ON webhook_messages(next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE webhook_attempts (
    message_id       TEXT NOT NULL REFERENCES webhook_messages(id),
    n                INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    status           INTEGER,                   -- HTTP status; NULL when no response
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    response_excerpt TEXT,                      -- first bytes of the response body
    PRIMARY KEY (message_id, n)
);
