"""A small local weather service, for the weather_report.py example.

    python weather_service.py --port 8000 --state weather_state.json

API (JSON over HTTP):

    GET /weather/<city>
        Today's weather in <city>. The values are derived from the city's name,
        so they are the same on every request and every run.
    POST /reports  {"title": "...", "markdown": "..."}
        Stores a finished report (201) and returns {"report_id": N, ...}.
    GET /stats
        {"requests": {path: count}, "reports": [...]}: how many times each
        path was requested (GET /stats itself is not counted), and every
        report received. This is the effect counter: it shows whether a
        client asked for something twice.

The counters and reports live in a JSON file (``--state``), written
atomically after every request, so they survive restarts of the service.
``--post-delay SECONDS`` (or ``$WEATHER_POST_DELAY``) makes POST /reports wait
that long *after* storing the report and before answering: a client can then
be killed while its request is in flight, with the effect already done.

On start it prints one line, ``listening on PORT`` (handy with ``--port 0``,
which picks a free port), then one line per request on stderr.

The service stands for the outside world, so it is never made durable itself:
the marker ``autodurable: off`` in this docstring keeps the analyser away.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONDITIONS = ("sunny", "cloudy", "rain", "showers", "fog", "snow", "windy")


def weather_for(city: str) -> dict[str, Any]:
    """Deterministic weather for `city`: a function of its name only."""
    digest = hashlib.sha256(city.strip().lower().encode()).digest()
    return {
        "city": city,
        "temperature_c": round(-5 + digest[0] / 255 * 35, 1),
        "humidity_pct": 30 + digest[1] % 65,
        "wind_kmh": digest[2] % 60,
        "conditions": CONDITIONS[digest[3] % len(CONDITIONS)],
    }


class State:
    """Request counters and stored reports, kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        if path.exists():
            self.data = json.loads(path.read_text())
        else:
            self.data = {"requests": {}, "reports": []}
            self._save()

    def count(self, path: str) -> None:
        with self.lock:
            requests = self.data["requests"]
            requests[path] = requests.get(path, 0) + 1
            self._save()

    def add_report(self, report: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            stored = {"report_id": len(self.data["reports"]) + 1, "received_at": time.time()}
            stored.update(report)
            self.data["reports"].append(stored)
            self._save()
            return stored

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.data))

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self.path)


class Handler(BaseHTTPRequestHandler):
    """Serves GET /weather/<city>, POST /reports and GET /stats."""

    state: State  # set by `serve`
    post_delay: float = 0.0

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/stats":
            self._reply(200, self.state.snapshot())
            return
        self.state.count(path)
        prefix = "/weather/"
        city = urllib.parse.unquote(path[len(prefix) :]) if path.startswith(prefix) else ""
        if not city or "/" in city:
            self._reply(404, {"error": f"no such resource: {path}"})
            return
        self._reply(200, weather_for(city))

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        self.state.count(path)
        if path != "/reports":
            self._reply(404, {"error": f"no such resource: {path}"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            report = {"title": str(body["title"]), "markdown": str(body["markdown"])}
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": f"expected title and markdown: {exc}"})
            return
        stored = self.state.add_report(report)
        self.log_message("report %d stored: %s", stored["report_id"], report["title"])
        time.sleep(self.post_delay)  # the effect is done; the answer is late
        self._reply(201, {"report_id": stored["report_id"], "title": report["title"]})

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[weather service] {format % args}", file=sys.stderr, flush=True)


def serve(port: int, state: Path, post_delay: float) -> None:
    """Serve on 127.0.0.1:`port` (0 picks a free port) until the process is killed."""
    Handler.state = State(state)
    Handler.post_delay = post_delay
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
        "--state",
        default="weather_state.json",
        help="JSON file for the request counters and reports (default: weather_state.json)",
    )
    parser.add_argument(
        "--post-delay",
        type=float,
        default=float(os.environ.get("WEATHER_POST_DELAY", "0")),
        help="seconds POST /reports waits before answering (default: $WEATHER_POST_DELAY or 0)",
    )
    args = parser.parse_args()
    serve(args.port, Path(args.state), args.post_delay)


if __name__ == "__main__":
    main()
