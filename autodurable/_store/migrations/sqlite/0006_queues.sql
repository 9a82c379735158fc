-- autodurable schema 6 (SQLite): queues. A workflow enqueued on a queue waits with
-- status 'enqueued' (or 'delayed' until available_at) until a worker dequeues it
-- within the queue's limits: it then becomes 'pending', owned by that worker, and
-- dequeued_at records when (the rate limit counts those times).

ALTER TABLE workflows ADD COLUMN queue_name TEXT;
ALTER TABLE workflows ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;  -- lower first
ALTER TABLE workflows ADD COLUMN dedup_id TEXT;       -- one waiting or running per queue
ALTER TABLE workflows ADD COLUMN partition_key TEXT;  -- limits apply per key
ALTER TABLE workflows ADD COLUMN available_at REAL;   -- not dequeued before (a delay)
ALTER TABLE workflows ADD COLUMN dequeued_at REAL;

CREATE INDEX workflows_waiting_in_queue ON workflows (queue_name, status, priority, created_at)
    WHERE queue_name IS NOT NULL;
CREATE INDEX workflows_dequeued ON workflows (queue_name, dequeued_at)
    WHERE queue_name IS NOT NULL;

-- A queue's limits, as the last process that declared it wrote them: every worker
-- of any process applies the same ones.
CREATE TABLE queues (
    name               TEXT PRIMARY KEY,
    concurrency        INTEGER,           -- at most this many running, all workers
    worker_concurrency INTEGER,           -- at most this many on one worker
    rate_limit         INTEGER,           -- at most this many started per period
    rate_period        REAL,              -- seconds
    partitioned        INTEGER NOT NULL,  -- 1: the limits apply per partition key
    updated_at         REAL NOT NULL
);
