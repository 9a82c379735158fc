-- autodurable schema 12 (PostgreSQL): a child workflow's parent, found from the step
-- that recorded the child's id (autodurable.start:<name>, one id) or its batch
-- (autodurable.enqueue_many:<name>, a list of ids): the dashboard's link to it reads
-- these partial indexes instead of every step.

CREATE INDEX steps_started_children ON steps (output)
    WHERE name LIKE 'autodurable.start:%';
CREATE INDEX steps_started_batches ON steps (workflow_id)
    WHERE name LIKE 'autodurable.enqueue_many:%';
