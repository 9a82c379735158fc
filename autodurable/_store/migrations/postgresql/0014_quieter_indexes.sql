-- autodurable schema 14 (PostgreSQL): two indexes that every dequeue and every finish
-- rewrote now hold only the rows their queries read.
-- * Workflows by last update served only the search for ended workflows to delete
--   (`workflows gc`): it now holds ended workflows only, so a dequeue no longer
--   moves a row in it and a finish adds one instead of moving it; in the order
--   that search reads them, which stops after each batch instead of sorting every
--   ended workflow older than the cut-off for each batch. Its WHERE is
--   written out, word for word, by the query (`_rules.ENDED`): the planner uses a
--   partial index only for a query whose WHERE implies its own.
-- * Queued workflows by dequeue time served only the rate limits' counts, which
--   read dequeued ones: it no longer holds those still waiting, so a dequeue adds
--   one entry instead of moving one.

DROP INDEX workflows_by_update;
CREATE INDEX workflows_ended ON workflows (updated_at, workflow_id, status)
    WHERE status IN ('succeeded', 'failed', 'cancelled');

DROP INDEX workflows_dequeued;
CREATE INDEX workflows_dequeued ON workflows (queue_name, dequeued_at)
    WHERE dequeued_at IS NOT NULL;
