-- autodurable schema 6 (PostgreSQL): schedules. Each tick of a schedule starts one
-- workflow whose id is the schedule's name and the tick's time, so that any number
-- of executors firing the same tick start it once. last_tick is the latest tick
-- handled (run, or skipped by the catch-up policy); paused schedules fire nothing.

CREATE TABLE schedules (
    name          TEXT COLLATE "C" PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    catch_up      TEXT NOT NULL,
    paused        BOOLEAN NOT NULL DEFAULT FALSE,
    last_tick     DOUBLE PRECISION,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
