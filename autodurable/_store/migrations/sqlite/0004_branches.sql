-- autodurable schema 4 (SQLite): steps of work that workflow code runs concurrently
-- (threads, pools, asyncio tasks). Such work is a branch: a step is identified by
-- its branch and its position in it. The branch is '' for the workflow's own
-- steps, '3' for the work it started at its position 3, '3.2' for the work that
-- branch started at its position 2. The table is rebuilt, since SQLite cannot
-- change a primary key; the rows keep their values (branch '').

CREATE TABLE steps_by_branch (
    workflow_id TEXT NOT NULL,
    branch      TEXT NOT NULL DEFAULT '',  -- '' | '3' | '3.2' ... (see above)
    position    INTEGER NOT NULL,   -- 1, 2, 3 ... in the order its branch calls them
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,      -- succeeded | failed | retrying | unrecorded | ...
    output      TEXT,               -- JSON of the return value
    error       TEXT,               -- JSON of the (last) exception
    attempts    INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    executor_id TEXT,               -- the executor that recorded this outcome
    PRIMARY KEY (workflow_id, branch, position)
) WITHOUT ROWID;

INSERT INTO steps_by_branch (workflow_id, position, name, status, output, error, attempts,
                             started_at, finished_at, executor_id)
    SELECT workflow_id, position, name, status, output, error, attempts,
           started_at, finished_at, executor_id
    FROM steps;

DROP TABLE steps;

ALTER TABLE steps_by_branch RENAME TO steps;
