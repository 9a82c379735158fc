-- autodurable schema 14 (SQLite): a queue's waiting workflows in the order a dequeue
-- takes them (priority, then age, then id). A dequeue walks this index and stops
-- after as many as it takes, instead of sorting every waiting workflow of the queue:
-- its cost no longer grows with the queue's depth.

CREATE INDEX workflows_ready_in_queue ON workflows (queue_name, priority, created_at, workflow_id)
    WHERE status IN ('enqueued', 'delayed');
