-- Media archive: every archived object (outputs and the images derived from them), the
-- derived images a task shows, the start of archiving (for its deadline), and retention.

-- One row per object in the media store, written as soon as the object is complete, so that
-- nothing stored is ever forgotten: the sweeper deletes exactly these.
CREATE TABLE media_objects (
    task_id       TEXT NOT NULL REFERENCES tasks(id),
    name          TEXT NOT NULL,               -- `0.mp4`, `0.poster.jpg`: the key is <task_id>/<name>
    kind          TEXT NOT NULL CHECK (kind IN ('output', 'poster', 'last_frame')),
    output_index  INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,               -- lowercase hex; the ETag
    source_url    TEXT,                        -- the upstream URL an output was copied from
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (task_id, name)
);

-- Names (in media_objects) of the poster and last frame of the task's first video output.
ALTER TABLE tasks ADD COLUMN poster TEXT;
ALTER TABLE tasks ADD COLUMN last_frame TEXT;
-- When the upstream first reported success and archiving began (its deadline runs from here).
ALTER TABLE tasks ADD COLUMN archive_started_at INTEGER;
-- When the sweeper deleted the task's media (after `expires_at`).
ALTER TABLE tasks ADD COLUMN media_purged_at INTEGER;
-- The sweeper's work list: tasks whose media have not been deleted yet, by expiry.
CREATE INDEX tasks_media_expiry ON tasks(expires_at)
    WHERE expires_at IS NOT NULL AND media_purged_at IS NULL;

-- Per-account media retention; NULL = the configured default.
ALTER TABLE accounts ADD COLUMN retention_seconds INTEGER;
