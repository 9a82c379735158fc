-- autodurable schema 5 (PostgreSQL): queues. A workflow enqueued on a queue waits
-- with status 'enqueued' (or 'delayed' until available_at) until a worker
-- dequeues it within the queue's limits: it then becomes 'pending', owned by that
-- worker, and dequeued_at records when (the rate limit counts those times).

ALTER TABLE workflows ADD COLUMN queue_name TEXT COLLATE "C";
ALTER TABLE workflows ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;  -- lower first
ALTER TABLE workflows ADD COLUMN dedup_id TEXT COLLATE "C";  -- one waiting or running per queue
ALTER TABLE workflows ADD COLUMN partition_key TEXT COLLATE "C";  -- limits apply per key
ALTER TABLE workflows ADD COLUMN available_at DOUBLE PRECISION;  -- not dequeued before
ALTER TABLE workflows ADD COLUMN dequeued_at DOUBLE PRECISION;

CREATE INDEX workflows_waiting_in_queue ON workflows (queue_name, status, priority, created_at)
    WHERE queue_name IS NOT NULL;
CREATE INDEX workflows_dequeued ON workflows (queue_name, dequeued_at)
    WHERE queue_name IS NOT NULL;

-- A queue's limits, as the last process that declared it wrote them: every worker
-- of any process applies the same ones.
CREATE TABLE queues (
    name               TEXT COLLATE "C" PRIMARY KEY,
    concurrency        INTEGER,
    worker_concurrency INTEGER,
    rate_limit         INTEGER,
    rate_period        DOUBLE PRECISION,
    partitioned        BOOLEAN NOT NULL,
    updated_at         DOUBLE PRECISION NOT NULL
);
