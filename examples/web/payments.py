"""A naive local payment service: every POST is a new charge.

It stands in for a payment provider that does *not* deduplicate, so that the
shop examples show that an idempotent request charges once however often the
client retries and however the shop crashes.

    python payments.py --port 8000 --log charges.txt

POST /charges {"order": "42", "amount": 1999} appends one line "42 1999" to the
log and answers {"charge_id": "ch_N"}; GET /charges answers the log's lines.
On start it prints ``listening on PORT`` (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_lock = threading.Lock()


def make_handler(log: Path) -> type[BaseHTTPRequestHandler]:
    """The request handler class of a service writing its charges to `log`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            charge = json.loads(self.rfile.read(length) or b"{}")
            with _lock:
                with log.open("a") as fh:
                    fh.write(f"{charge['order']} {charge['amount']}\n")
                number = len(log.read_text().splitlines())
            self._answer({"charge_id": f"ch_{number}", "amount": charge["amount"]})

        def do_GET(self) -> None:
            lines = log.read_text().splitlines() if log.exists() else []
            self._answer({"charges": lines})

        def _answer(self, value: object) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", default="charges.txt")
    options = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), make_handler(Path(options.log)))
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
