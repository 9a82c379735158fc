"""The tables, with their columns, that the SQLite migrations create: written out.

Opening a state database compares its tables with those its schema version
should have (`_sqlite_file`). Working them out runs every migration in a database
in memory, 3 to 4 ms of every start-up; for the latest version, the usual case,
they are read from here.

Invariant: `TABLES` is what `_sqlite_file.schema_at(VERSION)` computes
(tests/store/test_store_files.py checks it and prints the new value after a
migration is added).
"""

VERSION = 15
TABLES: dict[str, tuple[str, ...]] = {
    "executors": (
        "executor_id",
        "heartbeat_at",
        "hostname",
        "pid",
        "process_started",
        "started_at",
    ),
    "workflows": (
        "app_version",
        "available_at",
        "created_at",
        "deadline",
        "dedup_id",
        "dequeued_at",
        "error",
        "executor_id",
        "forked_at_step",
        "forked_from",
        "inputs",
        "name",
        "output",
        "partition_key",
        "priority",
        "queue_name",
        "status",
        "trace_context",
        "updated_at",
        "workflow_id",
    ),
    "messages": (
        "consumed_at",
        "consumed_at_step",
        "idempotency_key",
        "message_id",
        "payload",
        "sent_at",
        "topic",
        "workflow_id",
    ),
    "events": ("key", "updated_at", "value", "workflow_id"),
    "steps": (
        "arguments",
        "attempts",
        "branch",
        "error",
        "executor_id",
        "finished_at",
        "name",
        "output",
        "position",
        "started_at",
        "status",
        "workflow_id",
    ),
    "queues": (
        "concurrency",
        "name",
        "partitioned",
        "rate_limit",
        "rate_period",
        "updated_at",
        "worker_concurrency",
    ),
    "schedules": (
        "catch_up",
        "created_at",
        "cron",
        "last_tick",
        "name",
        "paused",
        "timezone",
        "updated_at",
        "workflow_name",
    ),
    "limit_permits": (
        "acquired_at",
        "executor_id",
        "limit_key",
        "permit_id",
        "released_at",
        "step",
        "step_name",
        "units",
        "waited",
        "workflow_id",
    ),
    "streams": (
        "branch",
        "created_at",
        "key",
        "stream_offset",
        "value",
        "workflow_id",
        "written_at_step",
    ),
}
