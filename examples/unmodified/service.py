"""A tiny local price service that counts the requests it answers.

The counts are the outside world's view of the demo: a price fetched twice
shows up as two requests for its path. It runs on a thread of the process
that starts it (the demo driver), so it outlives the program being killed.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRICES = {"apples": 320, "bread": 245, "cheese": 899, "dates": 510, "eggs": 275}


class PriceService:
    """``GET /price/<item>`` answers ``{"cents": N}``; `requests` counts every path asked."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PriceService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service._count(self.path)
                item = self.path.removeprefix("/price/")
                if self.path.startswith("/price/") and item in PRICES:
                    self._reply(200, {"cents": PRICES[item]})
                else:
                    self._reply(404, {"error": f"no price for {self.path}"})

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the demo prints the counts instead of an access log

        return Handler


if __name__ == "__main__":
    # Standalone, for running app.py by hand: serves until Ctrl-C, then prints the counts.
    with PriceService() as running:
        print(f"listening on {running.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(dict(running.requests))
