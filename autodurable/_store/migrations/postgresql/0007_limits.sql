-- autodurable schema 7 (PostgreSQL): limits declared on the APIs steps call
-- ([tool.autodurable.limits]). Each row is one permit: one step attempt under one
-- limit, held from acquired_at until released_at (NULL while held). Concurrency
-- counts the rows held; a rate counts the units of the rows acquired in its window.
-- waited is how long the attempt waited for its permits (shown by workflows show).

CREATE TABLE limit_permits (
    permit_id   TEXT COLLATE "C" NOT NULL,
    limit_key   TEXT COLLATE "C" NOT NULL,
    executor_id TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    step        TEXT NOT NULL,
    step_name   TEXT NOT NULL,
    units       DOUBLE PRECISION NOT NULL,
    waited      DOUBLE PRECISION NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    released_at DOUBLE PRECISION,
    PRIMARY KEY (permit_id, limit_key)
);
CREATE INDEX limit_permits_window ON limit_permits (limit_key, acquired_at);
CREATE INDEX limit_permits_held ON limit_permits (limit_key) WHERE released_at IS NULL;
CREATE INDEX limit_permits_by_workflow ON limit_permits (workflow_id);
