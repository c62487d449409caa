-- Credits: an append-only ledger per account. The account's `credits_available` and
-- `credits_held` are maintained in the same transaction as each entry, so they never drift;
-- `reelay ledger verify` recomputes them from the entries.

CREATE TABLE ledger_entries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('topup', 'hold', 'capture', 'refund', 'adjust')),
    -- Always positive except for `adjust`, which may be either sign.
    amount      INTEGER NOT NULL,
    task_id     TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX ledger_account ON ledger_entries(account_id, seq);
-- One hold, at most one capture and at most one refund per task: a retried transition can
-- never charge or refund twice.
CREATE UNIQUE INDEX ledger_one_per_task ON ledger_entries(task_id, kind) WHERE task_id IS NOT NULL;

-- The first response to a create with an Idempotency-Key, replayed for the same key and body.
CREATE TABLE idempotency_keys (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_expiry ON idempotency_keys(expires_at);

ALTER TABLE accounts ADD COLUMN max_active_tasks INTEGER;
CREATE INDEX tasks_account_active ON tasks(account_id) WHERE next_attempt_at IS NOT NULL;
