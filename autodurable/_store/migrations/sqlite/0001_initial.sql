-- autodurable schema 1 (SQLite). Times are seconds since the epoch:
-- SELECT datetime(created_at, 'unixepoch') shows them as dates.

CREATE TABLE executors (
    executor_id     TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    process_started TEXT,
    started_at      REAL NOT NULL,
    heartbeat_at    REAL NOT NULL
);

CREATE TABLE workflows (
    workflow_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,      -- "module:qualname" of the workflow function
    status      TEXT NOT NULL,      -- pending | succeeded | failed
    inputs      TEXT NOT NULL,      -- JSON: {"args": [...], "kwargs": {...}}
    output      TEXT,               -- JSON of the return value
    error       TEXT,               -- JSON of the exception (type, message, traceback)
    executor_id TEXT,               -- the executor running it; NULL when nobody does
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX workflows_by_status ON workflows (status, created_at);

CREATE TABLE steps (
    workflow_id TEXT NOT NULL,
    position    INTEGER NOT NULL,   -- 1, 2, 3 ... in the order the workflow calls them
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,      -- succeeded | failed | retrying | unrecorded
    output      TEXT,               -- JSON of the return value
    error       TEXT,               -- JSON of the (last) exception
    attempts    INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (workflow_id, position)
) WITHOUT ROWID;
