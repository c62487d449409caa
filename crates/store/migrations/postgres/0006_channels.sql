-- The channel registry: upstreams every instance sees. `config` is the channel's configuration
-- as JSON, without its key; a key given through the admin API is in `sealed_key`, sealed with
-- the secret key like the webhook secrets (keys from the file or the environment are never
-- stored). `enabled` is operational state (an operator's switch, or an out-of-credit answer);
-- a removed channel stays as a row with `removed_at` so tasks still running on it finish.
-- `revision` grows with every write: the sum over all rows tells an instance that its copy
-- is stale.
CREATE TABLE channels (
    name            TEXT PRIMARY KEY,
    config          TEXT NOT NULL,
    sealed_key      TEXT,
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT,
    source          TEXT NOT NULL CHECK (source IN ('file', 'admin')),
    removed_at      BIGINT,
    revision        BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Submits per channel per window, for `max_submits_per_second` across instances.
CREATE TABLE channel_submits (
    channel TEXT NOT NULL,
    slot    BIGINT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (channel, slot)
);

-- Tasks waiting for channel capacity, oldest due first: a task freeing a slot wakes one.
CREATE INDEX tasks_waiting ON tasks(next_attempt_at)
    WHERE state = 'throttled' AND upstream_id IS NULL AND next_attempt_at IS NOT NULL;
