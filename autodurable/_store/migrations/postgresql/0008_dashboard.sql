-- autodurable schema 8 (PostgreSQL): indexes for the dashboard (autodurable ui), so that
-- its filters by version and by queue, and its links to forks, read an index
-- instead of the whole table.

CREATE INDEX workflows_by_version ON workflows (app_version, created_at);
CREATE INDEX workflows_by_queue ON workflows (queue_name, created_at)
    WHERE queue_name IS NOT NULL;
CREATE INDEX workflows_forked ON workflows (forked_from) WHERE forked_from IS NOT NULL;
