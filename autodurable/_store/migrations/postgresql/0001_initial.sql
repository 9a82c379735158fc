-- autodurable schema 1 (PostgreSQL). Applied inside the autodurable schema
-- (search_path is set to it), so the tables are <schema>.executors and so on.
-- Times are seconds since the epoch: SELECT to_timestamp(created_at) shows them
-- as dates. Heartbeats use the server's clock, so leases do not depend on the
-- clocks of the machines agreeing. Ids compare bytewise (COLLATE "C"): they are
-- opaque keys, and the lookup of every step write should not pay for a locale.

CREATE TABLE executors (
    executor_id     TEXT COLLATE "C" PRIMARY KEY,
    hostname        TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    process_started TEXT,
    started_at      DOUBLE PRECISION NOT NULL,
    heartbeat_at    DOUBLE PRECISION NOT NULL   -- server clock; the lease runs from here
);

CREATE TABLE workflows (
    workflow_id TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,      -- "module:qualname" of the workflow function
    status      TEXT NOT NULL,      -- pending | succeeded | failed
    inputs      TEXT NOT NULL,      -- JSON: {"args": [...], "kwargs": {...}}
    output      TEXT,               -- JSON of the return value
    error       TEXT,               -- JSON of the exception (type, message, traceback)
    executor_id TEXT COLLATE "C",   -- the executor running it; NULL when nobody does
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX workflows_by_status ON workflows (status, created_at);
CREATE INDEX pending_workflows_by_executor ON workflows (executor_id) WHERE status = 'pending';

CREATE TABLE steps (
    workflow_id TEXT COLLATE "C" NOT NULL,
    position    INTEGER NOT NULL,   -- 1, 2, 3 ... in the order the workflow calls them
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,      -- succeeded | failed | retrying | unrecorded
    output      TEXT,               -- JSON of the return value
    error       TEXT,               -- JSON of the (last) exception
    attempts    INTEGER NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    executor_id TEXT COLLATE "C",   -- the executor that recorded this outcome
    PRIMARY KEY (workflow_id, position)
);

CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
