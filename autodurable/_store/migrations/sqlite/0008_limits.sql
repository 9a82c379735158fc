-- autodurable schema 8 (SQLite): limits declared on the APIs steps call
-- ([tool.autodurable.limits]). Each row is one permit: one step attempt under one
-- limit, held from acquired_at until released_at (NULL while held). Concurrency
-- counts the rows held; a rate counts the units of the rows acquired in its window.
-- waited is how long the attempt waited for its permits (shown by workflows show).

CREATE TABLE limit_permits (
    permit_id   TEXT NOT NULL,      -- one per step attempt, shared by its limits
    limit_key   TEXT NOT NULL,      -- as configured: "openai.*", "stripe.Charge.create"
    executor_id TEXT NOT NULL,      -- the process that holds it
    workflow_id TEXT NOT NULL,
    step        TEXT NOT NULL,      -- the step's position, or its path ("3.1")
    step_name   TEXT NOT NULL,
    units       REAL NOT NULL,      -- what it counts for in the rate (1, or tokens ...)
    waited      REAL NOT NULL,      -- seconds
    acquired_at REAL NOT NULL,
    released_at REAL,
    PRIMARY KEY (permit_id, limit_key)
) WITHOUT ROWID;
CREATE INDEX limit_permits_window ON limit_permits (limit_key, acquired_at);
CREATE INDEX limit_permits_held ON limit_permits (limit_key) WHERE released_at IS NULL;
CREATE INDEX limit_permits_by_workflow ON limit_permits (workflow_id);
