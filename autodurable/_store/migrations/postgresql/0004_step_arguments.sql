-- autodurable schema 4 (PostgreSQL): the digest of a step's arguments, taken when
-- it was called, so that a replay never hands a recorded result to a call made
-- with other arguments. Rows recorded before it have NULL: they replay without
-- the check.

ALTER TABLE steps ADD COLUMN arguments TEXT;
