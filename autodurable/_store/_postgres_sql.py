"""The SQL text of the PostgreSQL store, with the schema name in it.

Invariants:
- The schema name is validated as an identifier before it reaches these
  strings; every value is a parameter (``%s``), never formatted in.
- A statement about one workflow finds its row by the primary key whatever the
  table's statistics say: statuses are compared with ``IS NOT DISTINCT FROM``.
"""

from __future__ import annotations

from ._protocol import EXECUTOR_COLUMNS, MESSAGE_COLUMNS, PENDING, STEP_COLUMNS, WORKFLOW_COLUMNS
from ._rules import ENDED

_NOW = "extract(epoch FROM statement_timestamp())::double precision"
_W, _S, _E = WORKFLOW_COLUMNS, STEP_COLUMNS, EXECUTOR_COLUMNS
# The steps' columns that are not text, as arrays (a batch's rows, one array per column).
_ARRAY_TYPES = {
    "position": "int[]",
    "attempts": "int[]",
    "started_at": "float8[]",
    "finished_at": "float8[]",
}
NW = len(_W.split(", "))  # the workflow columns at the start of a joined row


class Statements:
    """The SQL of the store, with the schema name in it (validated as an identifier)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        s, now = schema, _NOW
        # A statement about one workflow must find its row by the primary key,
        # whatever the table's statistics say. Its status is therefore compared
        # with IS NOT DISTINCT FROM, which no index serves: with `=`, a planner
        # without statistics (a new schema, until autovacuum analyses it) takes an
        # index on status and reads the entry of every pending workflow, and of
        # every row version not yet vacuumed, on each step. (The owner's only
        # index is partial, for `status = 'pending'`, which such a comparison does
        # not prove, so it is not taken either.)
        is_pending = f"w.status IS NOT DISTINCT FROM '{PENDING}'"
        owner_age = f"{now} - e.heartbeat_at"
        with_owner = (
            f"SELECT {', '.join('w.' + c for c in _W.split(', '))}, "
            f"{', '.join('e.' + c for c in _E.split(', '))}, {owner_age} "
            f"FROM {s}.workflows w LEFT JOIN {s}.executors e ON e.executor_id = w.executor_id"
        )
        # An owner is dead to the claimer when its row is gone, when it is listed as
        # dead (same host, process gone), or, on another host, when its lease expired.
        owner_dead = (
            "(w.executor_id IS NULL OR e.executor_id IS NULL "
            "OR w.executor_id = ANY(%(dead)s::text[]) "
            f"OR (e.hostname <> %(host)s AND e.heartbeat_at < {now} - %(lease)s))"
        )
        self.register = (
            f"INSERT INTO {s}.executors ({_E}) VALUES (%s, %s, %s, %s, %s, {now}) "
            "ON CONFLICT (executor_id) DO UPDATE SET hostname = EXCLUDED.hostname, "
            "pid = EXCLUDED.pid, process_started = EXCLUDED.process_started, "
            "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at"
        )
        self.heartbeat = f"UPDATE {s}.executors SET heartbeat_at = {now} WHERE executor_id = %s"
        self.retire = (
            f"WITH released AS (UPDATE {s}.workflows SET executor_id = NULL, updated_at = %s "
            "WHERE executor_id = %s AND status = %s RETURNING workflow_id), "
            f"gone AS (DELETE FROM {s}.executors WHERE executor_id = %s) "
            "SELECT pg_notify(%s, 'released ' || workflow_id) FROM released"
        )
        insert = (
            f"INSERT INTO {s}.workflows ({_W}) VALUES ({', '.join(['%s'] * NW)}) "
            "ON CONFLICT (workflow_id) DO NOTHING"
        )
        self.create = insert
        self.create_unowned = (
            f"WITH created AS ({insert} RETURNING workflow_id) "
            "SELECT pg_notify(%s, 'released ' || workflow_id) FROM created"
        )
        self.read_with_owner = f"{with_owner} WHERE w.workflow_id = %s"
        # Compare-and-set on the owner seen in the statement's snapshot: when a
        # concurrent claim changed the owner first, the re-check of the locked row
        # fails and nothing is updated.
        self.claim = (
            f"WITH seen AS MATERIALIZED (SELECT w.workflow_id, w.executor_id AS owner "
            f"FROM {s}.workflows w LEFT JOIN {s}.executors e ON e.executor_id = w.executor_id "
            f"WHERE w.workflow_id = %(workflow_id)s AND {is_pending} "
            f"AND (w.executor_id = %(me)s OR {owner_dead})) "
            f"UPDATE {s}.workflows w SET executor_id = %(me)s, updated_at = %(now)s, "
            "app_version = coalesce(w.app_version, %(version)s) FROM seen "
            f"WHERE w.workflow_id = seen.workflow_id AND {is_pending} "
            "AND w.executor_id IS NOT DISTINCT FROM seen.owner RETURNING w.workflow_id"
        )
        # A workflow's steps in the order they were called: by the position in the
        # workflow's own code where each was called or its branch started.
        in_order = (
            "ORDER BY CASE WHEN branch = '' THEN position "
            "ELSE split_part(branch, '.', 1)::integer END, branch, position"
        )
        self.history = f"SELECT {_S} FROM {s}.steps WHERE workflow_id = %s {in_order}"
        self.history_if_mine = (
            f"SELECT {_S} FROM {s}.steps WHERE workflow_id = %(workflow_id)s AND EXISTS "
            f"(SELECT 1 FROM {s}.workflows WHERE workflow_id = %(workflow_id)s "
            f"AND executor_id = %(me)s AND status = %(pending)s) {in_order}"
        )
        self.neighbours = (
            f"SELECT {_E}, {now} - heartbeat_at FROM {s}.executors "
            "WHERE hostname = %s AND executor_id <> %s"
        )
        self.adoptable = (
            f"{with_owner} WHERE w.status = %(pending)s "
            f"AND w.executor_id IS DISTINCT FROM %(me)s AND {owner_dead} "
            "ORDER BY w.created_at, w.workflow_id LIMIT %(limit)s"
        )
        # The fence: the workflow row, locked FOR SHARE, while the writer owns it
        # (and, but for a cancelled workflow's last step, while it is pending).
        # FOR KEY SHARE would not conflict with a claim's update (the owner is not
        # a key column); an advisory lock is taken after the statement's snapshot,
        # so it needs a second statement or a PL/pgSQL function, which cost more
        # than the row lock's few microseconds.
        # Every variant takes the same parameters: the step's values in the order
        # of `_S` (`StepRecord.outcome`), its arguments' digest, then the workflow
        # id and the writer. The steps of the workflow's own code leave the branch
        # to its default (''); a step of a branch (work the workflow runs
        # concurrently) is written by the ``_in_branch`` variants, which take its
        # branch after its arguments' digest.
        outcome = _S.replace(", executor_id, branch, arguments", "")
        insert_owned_step, insert_owned_branch_step = (
            f"INSERT INTO {s}.steps (workflow_id, {outcome}, executor_id, arguments{column}) "
            f"SELECT w.workflow_id, %s, %s, %s, %s, %s, %s, %s, %s, w.executor_id, %s{value} "
            f"FROM {s}.workflows w WHERE w.workflow_id = %s AND w.executor_id = %s"
            for column, value in (("", ""), (", branch", ", %s"))
        )
        replace = (
            " ON CONFLICT (workflow_id, branch, position) DO UPDATE SET "
            "name = EXCLUDED.name, status = EXCLUDED.status, output = EXCLUDED.output, "
            "error = EXCLUDED.error, attempts = EXCLUDED.attempts, "
            "started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, "
            "executor_id = EXCLUDED.executor_id, arguments = EXCLUDED.arguments"
        )
        self.insert_step = f"{insert_owned_step} AND {is_pending} FOR SHARE"
        self.upsert_step = f"{self.insert_step}{replace}"
        self.upsert_owned_step = f"{insert_owned_step} FOR SHARE{replace}"
        self.insert_step_in_branch = f"{insert_owned_branch_step} AND {is_pending} FOR SHARE"
        self.upsert_step_in_branch = f"{self.insert_step_in_branch}{replace}"
        self.upsert_owned_step_in_branch = f"{insert_owned_branch_step} FOR SHARE{replace}"
        # In a batch of several writers' steps (one transaction): a row that meets a
        # row already there must not abort its neighbours' transaction, and says
        # whether it was written; any row not written is written again alone.
        arrays = ", ".join(
            f"%s::{_ARRAY_TYPES.get(column, 'text[]')}"
            for column in [*outcome.split(", "), "arguments", "branch", "wid", "eid"]
        )
        # One statement for the whole batch: its rows come as one array per column
        # (unnest), each joined to its workflow's row under the same fence as one
        # row's insert; it returns the keys of the rows it wrote. A single statement
        # is its own transaction: one round trip, one WAL flush, no BEGIN or COMMIT.
        self.insert_steps_batched = (
            f"INSERT INTO {s}.steps (workflow_id, {outcome}, executor_id, arguments, branch) "
            f"SELECT w.workflow_id, {', '.join('v.' + c for c in outcome.split(', '))}, "
            f"w.executor_id, v.arguments, v.branch FROM unnest({arrays}) "
            f"AS v({outcome}, arguments, branch, workflow_id, executor_id) "
            f"JOIN {s}.workflows w ON w.workflow_id = v.workflow_id "
            f"AND w.executor_id = v.executor_id AND {is_pending} FOR SHARE OF w "
            "ON CONFLICT DO NOTHING RETURNING workflow_id, branch, position"
        )
        self.owned_status = (
            f"SELECT status FROM {s}.workflows WHERE workflow_id = %s AND executor_id = %s "
            "FOR SHARE"
        )
        self.finish = (
            f"WITH done AS (UPDATE {s}.workflows w SET status = %s, output = %s, error = %s, "
            f"updated_at = %s WHERE w.workflow_id = %s AND w.executor_id = %s AND {is_pending} "
            "RETURNING w.workflow_id) "
            "SELECT pg_notify(%s, 'finished ' || workflow_id) FROM done"
        )
        self.release = (
            f"WITH released AS (UPDATE {s}.workflows SET executor_id = NULL, updated_at = %s "
            "WHERE workflow_id = %s AND executor_id = %s AND status = ANY(%s::text[]) "
            "RETURNING workflow_id) "
            "SELECT pg_notify(%s, 'released ' || workflow_id) FROM released"
        )
        self.get = f"SELECT {_W} FROM {s}.workflows WHERE workflow_id = %s"
        self.forget_failed_step = (
            f"DELETE FROM {s}.steps WHERE workflow_id = %s AND branch = '' AND status = %s "
            f"AND position = (SELECT max(position) FROM {s}.steps "
            "WHERE workflow_id = %s AND branch = '')"
        )
        self.reopen = (
            f"WITH reopened AS (UPDATE {s}.workflows SET status = %(pending)s, output = NULL, "
            "error = NULL, executor_id = NULL, deadline = NULL, updated_at = %(now)s, "
            "app_version = CASE WHEN %(keep)s THEN app_version ELSE %(version)s END "
            "WHERE workflow_id = %(workflow_id)s AND status = ANY(%(ended)s::text[]) "
            "RETURNING workflow_id) "
            "SELECT pg_notify(%(channel)s, 'released ' || workflow_id) FROM reopened"
        )
        self.count_steps = f"SELECT count(*) FROM {s}.steps WHERE workflow_id = %s"
        self.unfinished = f"{with_owner} WHERE w.status = %s ORDER BY w.created_at"


class OperationStatements:
    """The SQL of the operations, with the schema name in it."""

    def __init__(self, schema: str) -> None:
        s = schema
        # The status is compared with IS NOT DISTINCT FROM so that the primary key
        # finds the row whatever the statistics (see the store's statements).
        self.cancel = (
            f"WITH cancelled AS (UPDATE {s}.workflows SET status = %s, error = %s, "
            "updated_at = %s WHERE workflow_id = %s AND status IN (%s, %s, %s) "
            "RETURNING workflow_id) "
            "SELECT pg_notify(%s, 'cancelled ' || workflow_id) FROM cancelled"
        )
        self.status = f"SELECT status FROM {s}.workflows WHERE workflow_id = %s"
        self.copy_steps = (
            f"INSERT INTO {s}.steps (workflow_id, {STEP_COLUMNS}) "
            f"SELECT %s, {STEP_COLUMNS} FROM {s}.steps WHERE workflow_id = %s AND "
            "(CASE WHEN branch = '' THEN position "
            "ELSE split_part(branch, '.', 1)::integer END) < %s"
        )
        self.notify = "SELECT pg_notify(%s, %s)"
        self.delete = [
            f"DELETE FROM {s}.{table} WHERE workflow_id = ANY(%s::text[])"
            for table in ("steps", "messages", "events", "limit_permits")
        ]
        self.delete_workflows = f"DELETE FROM {s}.workflows WHERE workflow_id = ANY(%s::text[])"
        self.ended = (
            f"SELECT workflow_id FROM {s}.workflows WHERE {ENDED} AND "
            "status = ANY(%s::text[]) AND updated_at < %s ORDER BY updated_at, workflow_id "
            "LIMIT %s"
        )
        self.orphan_messages = (
            f"DELETE FROM {s}.messages m WHERE m.sent_at < %s AND NOT EXISTS "
            f"(SELECT 1 FROM {s}.workflows w WHERE w.workflow_id = m.workflow_id)"
        )
        self.executor = (
            "SELECT executor_id, hostname, pid, process_started, started_at, heartbeat_at, "
            f"{_NOW} - heartbeat_at FROM {s}.executors WHERE executor_id = %s"
        )
        self.send = (
            f"WITH sent AS (INSERT INTO {s}.messages "
            "(workflow_id, topic, payload, idempotency_key, sent_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workflow_id, idempotency_key) DO NOTHING "
            "RETURNING workflow_id) SELECT pg_notify(%s, 'message ' || workflow_id) FROM sent"
        )
        self.owned_status = (
            f"SELECT status FROM {s}.workflows WHERE workflow_id = %s AND executor_id = %s "
            "FOR SHARE"
        )
        self.oldest_message = (
            f"SELECT message_id, payload FROM {s}.messages WHERE workflow_id = %s AND topic = %s "
            "AND consumed_at IS NULL ORDER BY message_id LIMIT 1 FOR UPDATE"
        )
        self.consume = (
            f"UPDATE {s}.messages SET consumed_at = %s, consumed_at_step = %s WHERE message_id = %s"
        )
        # Receives and events are steps of the workflow's own code (branch '') or of
        # a branch (work it runs concurrently), given after the writer.
        self.upsert_step = (
            f"INSERT INTO {s}.steps (workflow_id, position, name, status, output, error, "
            "attempts, started_at, finished_at, executor_id, branch) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (workflow_id, branch, position) DO UPDATE SET name = EXCLUDED.name, "
            "status = EXCLUDED.status, output = EXCLUDED.output, error = EXCLUDED.error, "
            "attempts = EXCLUDED.attempts, finished_at = EXCLUDED.finished_at, "
            "executor_id = EXCLUDED.executor_id"  # a recv that waited keeps its start
        )
        self.messages = (
            f"SELECT {MESSAGE_COLUMNS} FROM {s}.messages WHERE workflow_id = %s ORDER BY message_id"
        )
        self.set_event = (
            f"INSERT INTO {s}.events (workflow_id, key, value, updated_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (workflow_id, key) DO UPDATE SET "
            "value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
        )
        self.get_event = f"SELECT value FROM {s}.events WHERE workflow_id = %s AND key = %s"
        self.events = f"SELECT key, value FROM {s}.events WHERE workflow_id = %s ORDER BY key"
