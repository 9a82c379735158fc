-- autodurable schema 2 (SQLite): which executor recorded each step, so that
-- who ran what is visible after adoptions.

ALTER TABLE steps ADD COLUMN executor_id TEXT;
