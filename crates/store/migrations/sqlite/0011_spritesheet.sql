-- A third derived image: the spritesheet (a grid of frames across a video), made on its first
-- request like the last frame. SQLite cannot alter a CHECK, so the table is rebuilt.
CREATE TABLE media_objects_new (
    task_id       TEXT NOT NULL REFERENCES tasks(id),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('output', 'poster', 'last_frame', 'spritesheet')),
    output_index  INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    source_url    TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (task_id, name)
);
INSERT INTO media_objects_new SELECT task_id, name, kind, output_index, content_type, size,
    sha256, source_url, created_at FROM media_objects;
DROP TABLE media_objects;
ALTER TABLE media_objects_new RENAME TO media_objects;
