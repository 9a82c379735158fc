"""A local HTTP service in a thread, counting the requests it answers (for the tests).

- `Service.url`: its base URL; `Service.seen`: (method, path with query, body) per
  request, in order.
- ``POST``/``GET`` any path: a JSON echo of the request and its number; ``/sse``:
  three server-sent events; ``/gzip``: a gzip-encoded body; ``/redirect``: a 302
  to ``/landed``; ``/missing``: a 404 with the echo; ``/slow...``: the echo after
  0.3 s; a ``Set-Cookie`` header on every answer.
"""

from __future__ import annotations

import gzip
import http.server
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Service:
    """A running service: where it listens and what it saw."""

    url: str
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)


def _handler(service: Service) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            service.seen.append((self.command, self.path, body))
            if self.path.startswith("/slow"):
                time.sleep(0.3)
            count = len(service.seen)
            kind = "application/json"
            extra: list[tuple[str, str]] = [("Set-Cookie", f"visit={count}")]
            if self.path.startswith("/sse"):
                kind = "text/event-stream"
                out = b"".join(f"data: event {i} of {count}\n\n".encode() for i in range(3))
            else:
                path = self.path.split("?")[0]  # never the query: tests look for its secrets
                echo = {"method": self.command, "path": path, "body": body.decode(), "n": count}
                out = json.dumps(echo).encode()
                if self.path.startswith("/gzip"):
                    out = gzip.compress(out)
                    extra.append(("Content-Encoding", "gzip"))
            if self.path.startswith("/redirect"):
                extra.append(("Location", "/landed"))
            status = 302 if "Location" in dict(extra) else 200
            self.send_response(404 if self.path.startswith("/missing") else status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(out)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client killed mid-request (the tests do that): nothing to report
        super().handle_error(request, client_address)


@contextmanager
def http_service() -> Iterator[Service]:
    """A service on a free local port for the block."""
    service = Service("")
    server = _Server(("127.0.0.1", 0), _handler(service))
    service.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
