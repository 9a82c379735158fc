"""What the local example services share: request counters, a response delay, JSON.

Used by payments_service.py and files_service.py; not a program of its own.

Every request is counted twice, per path: once when it arrives ("received";
the service does what it asks at once, a charge for example) and once when
its answer is about to be written ("answered": counted before the client
can have it, so a client never sees an answer that is not counted yet).
``GET /stats`` returns both, plus
whatever the service adds (the charges made, for example); it is not counted
itself. A path received more than once was asked for more than once.

``--delay SECONDS`` makes every answer wait that long after the request was
handled and before it is written: a client can be killed while its requests
are in flight (received, not answered), the effect already done.

On start a service prints one line, ``listening on PORT`` (handy with
``--port 0``, which picks a free port), then one line per request on stderr.

The services stand for the outside world, so they are never made durable
themselves: the marker ``autodurable: off`` in this docstring keeps the
analyser away (and in theirs).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """An answer: a status and either JSON-able data or text with its content type."""

    status: int
    data: Any = None
    text: str | None = None
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
        return json.dumps(self.data).encode("utf-8")


def not_found(path: str) -> Reply:
    return Reply(404, {"error": f"no such resource: {path}"})


class Counters:
    """Requests received and answered, per path (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}
        self.answered: dict[str, int] = {}

    def add(self, table: dict[str, int], path: str) -> None:
        with self.lock:
            table[path] = table.get(path, 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {"requests": dict(self.received), "answered": dict(self.answered)}


# handle(method, path, query, body) -> Reply; extra_stats() -> dict added to GET /stats.
Handle = Callable[[str, str, dict[str, str], bytes], Reply]


class Handler(BaseHTTPRequestHandler):
    """Counts, hands the request to the service, waits `delay`, answers, counts."""

    name = "service"  # set by `serve`
    handle_request: Handle
    extra_stats: Callable[[], dict[str, Any]]
    counters: Counters
    delay: float = 0.0

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if method == "GET" and path == "/stats":
            stats = self.counters.snapshot()
            stats.update(type(self).extra_stats())
            self._write(Reply(200, stats))
            return
        self.counters.add(self.counters.received, path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        try:
            reply = type(self).handle_request(method, path, query, body)
        except (ValueError, KeyError, TypeError) as exc:
            reply = Reply(400, {"error": f"bad request: {exc}"})
        time.sleep(self.delay)  # the request is handled; the answer is late
        self.counters.add(self.counters.answered, path)  # before the client can have it
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        data = reply.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[{self.name}] {format % args}", file=sys.stderr, flush=True)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a crawler or a pool may open many connections at once


def serve(
    name: str,
    description: str,
    handle_request: Handle,
    extra_stats: Callable[[], dict[str, Any]] = dict,
) -> None:
    """Parse ``--port`` and ``--delay``, then serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="seconds every answer waits after its request was handled (default 0)",
    )
    args = parser.parse_args()
    handler = type(
        "ServiceHandler",
        (Handler,),
        {
            "name": name,
            "handle_request": staticmethod(handle_request),
            "extra_stats": staticmethod(extra_stats),
            "counters": Counters(),
            "delay": args.delay,
        },
    )
    server = Server(("127.0.0.1", args.port), handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl+C in a terminal: stop quietly
        pass
    finally:
        server.server_close()
