"""A tiny local payment service that honours idempotency keys.

It stands in for a real payment provider (Stripe, Adyen, ...) so that the
checkout example can show what happens to money when a program crashes.

    python payment_service.py --port 8000 --db payments.db

API (JSON over HTTP):

    POST /charges  {"order_id": "42", "amount_cents": 1999, "idempotency_key": "order-42:2"}
        A new key creates a charge (201). A key seen before returns the charge
        it created (200) and charges nothing: this is what makes retrying a
        payment safe. Reusing a key for a different order or amount is an error (409).
    GET /charges
        Every charge, oldest first. ``requests`` counts the POSTs that carried
        its key, so you can see whether a client asked twice.

Charges live in a SQLite file, so they survive restarts of the service. On
start it prints one line, ``listening on PORT`` (handy with ``--port 0``, which
picks a free port), then one line per request on stderr, until it is killed.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    charge_id       TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    order_id        TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    requests        INTEGER NOT NULL      -- how many POSTs carried this key
)
"""


class ChargeStore:
    """The charges table. One short connection per call, so threads never share one."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit
        conn.row_factory = sqlite3.Row
        return conn

    def charge(self, order_id: str, amount_cents: int, key: str) -> tuple[bool, dict[str, Any]]:
        """Create the charge for `key`, or find the one it created: (created?, charge)."""
        conn = self._connect()
        try:
            # One write transaction: two requests with the same key, even at the
            # same moment, cannot both create a charge.
            conn.execute("BEGIN IMMEDIATE")
            inserted = conn.execute(
                "INSERT OR IGNORE INTO charges VALUES (?, ?, ?, ?, ?, 0)",
                (f"ch_{uuid.uuid4().hex[:12]}", key, order_id, amount_cents, time.time()),
            ).rowcount
            conn.execute(
                "UPDATE charges SET requests = requests + 1 WHERE idempotency_key = ?", (key,)
            )
            row = conn.execute("SELECT * FROM charges WHERE idempotency_key = ?", (key,)).fetchone()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return inserted == 1, dict(row)

    def all(self) -> list[dict[str, Any]]:
        """Every charge, oldest first."""
        conn = self._connect()
        try:
            rows = conn.execute("SELECT * FROM charges ORDER BY created_at").fetchall()
        finally:
            conn.close()
        return [dict(row) for row in rows]


class Handler(BaseHTTPRequestHandler):
    """Serves POST /charges and GET /charges."""

    store: ChargeStore  # set by `serve`

    def do_GET(self) -> None:
        if self.path != "/charges":
            self._reply(404, {"error": f"no such resource: {self.path}"})
            return
        self._reply(200, self.store.all())

    def do_POST(self) -> None:
        if self.path != "/charges":
            self._reply(404, {"error": f"no such resource: {self.path}"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            order_id = str(body["order_id"])
            amount_cents = int(body["amount_cents"])
            key = str(body["idempotency_key"])
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": f"expected order_id, amount_cents, idempotency_key: {exc}"})
            return
        created, charge = self.store.charge(order_id, amount_cents, key)
        if (charge["order_id"], charge["amount_cents"]) != (order_id, amount_cents):
            self._reply(409, {"error": f"idempotency key {key!r} was used for another charge"})
            return
        what = "created" if created else "already exists, nothing charged"
        self.log_message(
            "charge %s for order %s (key %s): %s", charge["charge_id"], order_id, key, what
        )
        self._reply(201 if created else 200, charge)

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per charge from do_POST is enough; skip the access log

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[payment service] {format % args}", file=sys.stderr, flush=True)


def serve(port: int, db: str) -> None:
    """Serve on 127.0.0.1:`port` (0 picks a free port) until the process is killed."""
    Handler.store = ChargeStore(db)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl+C in a terminal: stop quietly
        pass
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--db",
        default=os.environ.get("PAYMENT_DB", "payments.db"),
        help="SQLite file for the charges (default: $PAYMENT_DB or payments.db)",
    )
    args = parser.parse_args()
    serve(args.port, args.db)


if __name__ == "__main__":
    main()
