-- autodurable schema 10 (PostgreSQL): durable streams (autodurable.write_stream).
-- One row per value a workflow wrote to one of its streams, numbered 0, 1, 2 ...
-- in the order they were written. A row whose value is NULL closes the stream
-- (autodurable.close_stream); a stream also ends when its workflow ends.
-- Read one with: SELECT stream_offset, value FROM streams
--   WHERE workflow_id = 'ID' AND key = 'KEY' ORDER BY stream_offset;

CREATE TABLE streams (
    workflow_id     TEXT COLLATE "C" NOT NULL,
    key             TEXT NOT NULL,
    stream_offset   INTEGER NOT NULL,            -- 0, 1, 2 ... within (workflow_id, key)
    value           TEXT,                        -- JSON of the value; NULL: closed here
    written_at_step INTEGER NOT NULL,            -- the position of the step that wrote it
    branch          TEXT NOT NULL DEFAULT '',    -- that step's branch ('': the workflow's own code)
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, key, stream_offset)
);
