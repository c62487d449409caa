-- A third derived image: the spritesheet (a grid of frames across a video).
ALTER TABLE media_objects DROP CONSTRAINT media_objects_kind_check;
ALTER TABLE media_objects ADD CONSTRAINT media_objects_kind_check
    CHECK (kind IN ('output', 'poster', 'last_frame', 'spritesheet'));
