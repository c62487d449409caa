-- Ephemeral uploads (Runway's `POST /v1/uploads`): a file an account put into the media store
-- to name in tasks as `runway://...`, until it expires and the sweeper deletes it.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX uploads_expiry ON uploads(expires_at);
