-- autodurable schema 3 (SQLite): operating workflows, messages and events.
-- workflows.status may now also be 'cancelled'; steps.status also 'waiting'
-- (a recv step waiting for a message, its deadline in output) and 'timed_out'.

ALTER TABLE workflows ADD COLUMN app_version TEXT;       -- version of the code that started it
ALTER TABLE workflows ADD COLUMN deadline REAL;          -- cancelled if not ended by then
ALTER TABLE workflows ADD COLUMN forked_from TEXT;       -- the workflow it was forked from
ALTER TABLE workflows ADD COLUMN forked_at_step INTEGER; -- the first step it ran anew
CREATE INDEX workflows_by_created ON workflows (created_at);
CREATE INDEX workflows_by_name ON workflows (name, created_at);
CREATE INDEX workflows_by_update ON workflows (status, updated_at);

CREATE TABLE messages (
    message_id       INTEGER PRIMARY KEY,  -- increasing: the order messages were stored
    workflow_id      TEXT NOT NULL,        -- the receiver (it need not exist yet)
    topic            TEXT NOT NULL,        -- '' for messages sent without a topic
    payload          TEXT NOT NULL,        -- JSON of the message
    idempotency_key  TEXT,                 -- a second message with the same key is not stored
    sent_at          REAL NOT NULL,
    consumed_at      REAL,                 -- NULL until a recv step consumes it
    consumed_at_step INTEGER               -- the position of that recv step
);
CREATE UNIQUE INDEX messages_by_key ON messages (workflow_id, idempotency_key);
CREATE INDEX messages_waiting ON messages (workflow_id, topic, message_id)
    WHERE consumed_at IS NULL;

CREATE TABLE events (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,             -- JSON of the value
    updated_at  REAL NOT NULL,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;
