-- autodurable schema 3 (PostgreSQL): steps of work that workflow code runs
-- concurrently (threads, pools, asyncio tasks). Such work is a branch: a step is
-- identified by its branch and its position in it. The branch is '' for the
-- workflow's own steps, '3' for the work it started at its position 3, '3.2' for
-- the work that branch started at its position 2. Existing rows get ''.

ALTER TABLE steps ADD COLUMN branch TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE steps DROP CONSTRAINT steps_pkey;
ALTER TABLE steps ADD PRIMARY KEY (workflow_id, branch, position);
