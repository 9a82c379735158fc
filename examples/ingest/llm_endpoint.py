"""A fake LLM endpoint that records every call it receives.

    python llm_endpoint.py --port 0 --log calls.jsonl [--latency 0.1]
                           [--max-in-flight 8] [--max-per-second 60]

``POST /summarize`` with ``{"doc": ID, "text": TEXT}`` waits `latency` seconds
(the model "thinking"), then answers ``{"summary": ..., "call": N}``. ``N`` is
the number of the call (1, 2, ...), so two calls for the same document get
different answers, as two calls to a real model would.

Like a real provider it has limits: a call arriving while `max_in_flight`
calls are in flight, or when `max_per_second` calls arrived in the last
second, is refused at once with ``429 Too Many Requests``.

Every call is one JSON line in the log, written just before it is answered:
``{"call", "doc", "pid", "status", "start", "end", "in_flight"}``: the caller's
process id (its ``X-Worker-Pid`` header), 200 or 429 (or 400), when the
request arrived and when its answer was ready (seconds since the epoch), and how
many calls were in flight just after its arrival, itself included (a refused
call is not in flight). The log is the outside world's view of the demo:
everything the demo checks about the model's traffic is read from it.

It prints ``listening on PORT`` once it serves (standard library only).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def summarize(text: str) -> str:
    """The "model": the first words of the text and how long it was."""
    words = text.split()
    return " ".join(words[:6]) + f" ... ({len(words)} words)"


class Endpoint:
    """The server's state: the call counter, the calls in flight, the log file."""

    def __init__(self, log: Path, latency: float, max_in_flight: int, max_per_second: int):
        self.latency = latency
        self.max_in_flight = max_in_flight
        self.max_per_second = max_per_second
        self.calls = 0
        self.in_flight = 0
        self.accepted: deque[float] = deque()  # arrival times of the last second's calls
        self.lock = threading.Lock()
        self.log = log.open("a", encoding="utf-8", buffering=1)  # a line at a time

    def arrive(self) -> dict[str, Any]:
        """Count the call in; its log entry (``in_flight`` is 0 when it is refused)."""
        with self.lock:
            now = time.time()
            self.calls += 1
            while self.accepted and self.accepted[0] <= now - 1.0:
                self.accepted.popleft()
            if self.in_flight >= self.max_in_flight or len(self.accepted) >= self.max_per_second:
                return {"call": self.calls, "status": 429, "start": now, "in_flight": 0}
            self.accepted.append(now)
            self.in_flight += 1
            return {"call": self.calls, "status": 200, "start": now, "in_flight": self.in_flight}

    def leave(self, entry: dict[str, Any], status: int) -> None:
        """Count the call out and log it, as answered with `status`."""
        with self.lock:
            if entry["in_flight"]:
                self.in_flight -= 1
            entry.update(status=status, end=time.time())
            self.log.write(json.dumps(entry) + "\n")


def handler_for(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            entry = endpoint.arrive()
            status, body = 400, {"error": "POST /summarize {doc, text}"}
            try:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                entry.update(doc=request.get("doc"), pid=self.headers.get("X-Worker-Pid"))
                if self.path != "/summarize" or not isinstance(request.get("text"), str):
                    pass
                elif entry["status"] == 429:
                    status, body = 429, {"error": "too many requests: slow down"}
                else:
                    time.sleep(endpoint.latency)  # thinking
                    status, body = (
                        200,
                        {"summary": summarize(request["text"]), "call": entry["call"]},
                    )
            finally:
                # Out of flight (and logged) before the answer leaves: a caller that has
                # its answer can never find this call still counted.
                endpoint.leave(entry, status)
            self._reply(status, body)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the caller died while we were thinking (a worker killed mid-call)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the JSON log says it all

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--log", type=Path, required=True, help="the JSON-lines call log")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per call")
    parser.add_argument("--max-in-flight", type=int, default=8, help="calls at once, at most")
    parser.add_argument("--max-per-second", type=int, default=60, help="calls per second")
    args = parser.parse_args()
    endpoint = Endpoint(args.log, args.latency, args.max_in_flight, args.max_per_second)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(endpoint))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        endpoint.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
