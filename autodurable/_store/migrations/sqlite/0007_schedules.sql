-- autodurable schema 7 (SQLite): schedules. Each tick of a schedule starts one
-- workflow whose id is the schedule's name and the tick's time, so that any number
-- of executors firing the same tick start it once. last_tick is the latest tick
-- handled (run, or skipped by the catch-up policy); paused schedules fire nothing.

CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,     -- "module:qualname" of the workflow it starts
    cron          TEXT NOT NULL,     -- five fields, or six with seconds last
    timezone      TEXT NOT NULL,     -- an IANA zone name: "UTC", "Europe/Paris"
    catch_up      TEXT NOT NULL,     -- after downtime: latest | all | skip
    paused        INTEGER NOT NULL DEFAULT 0,
    last_tick     REAL,              -- seconds since the epoch
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
