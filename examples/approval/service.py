"""The refund service: start refunds, watch them, approve them, over HTTP.

    python service.py --port 8000

    curl -X POST localhost:8000/refunds -d '{"order_id": "o-1002", "reason": "too small"}'
    curl localhost:8000/refunds/refund-o-1002
    curl -X POST localhost:8000/refunds/refund-o-1002/approval \\
         -H 'Idempotency-Key: ticket-77' -d '{"approved": true, "by": "ann"}'

At start it calls ``autodurable.recover(watch=True)``: refunds that were
waiting when the service was killed wait again (for the rest of their time),
and a message sent meanwhile (by ``autodurable send`` or this API) is there
for them. The approval endpoint is a webhook: a retried delivery with the
same ``Idempotency-Key`` header is delivered once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import refunds  # this folder is on the path when service.py runs

import autodurable


class Handler(BaseHTTPRequestHandler):
    """POST /refunds, GET /refunds/ID, POST /refunds/ID/approval."""

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_POST(self) -> None:  # the name http.server calls
        parts = self.path.strip("/").split("/")
        try:
            body = self._body()
        except ValueError as exc:
            self._reply(400, {"error": f"the body is not valid JSON: {exc}"})
            return
        if parts == ["refunds"]:
            order_id, reason = body.get("order_id"), body.get("reason", "")
            if not isinstance(order_id, str):
                self._reply(400, {"error": "order_id (a string) is required"})
                return
            workflow_id = refunds.workflow_id(order_id)
            named = autodurable.options(refunds.refund_request, workflow_id=workflow_id)
            autodurable.start(named, order_id, reason)
            self._reply(202, {"workflow_id": workflow_id})
        elif len(parts) == 3 and parts[0] == "refunds" and parts[2] == "approval":
            if not isinstance(body, dict) or "approved" not in body:
                self._reply(400, {"error": 'send {"approved": true|false, "by": NAME}'})
                return
            key = self.headers.get("Idempotency-Key")
            sent = autodurable.send(parts[1], body, topic="approval", idempotency_key=key)
            self._reply(202, {"workflow_id": parts[1], "sent": sent})
        else:
            self._reply(404, {"error": "not found"})

    def do_GET(self) -> None:  # the name http.server calls
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "refunds":
            self._reply(404, {"error": "not found"})
            return
        try:
            info = autodurable.get_workflow(parts[1]).info()
        except autodurable.WorkflowNotFound:
            self._reply(404, {"error": f"no refund {parts[1]}"})
            return
        self._reply(
            200,
            {
                "workflow_id": info.workflow_id,
                "status": info.status,
                "step": autodurable.get_event(info.workflow_id, "status", timeout=0),
                "proposal": autodurable.get_event(info.workflow_id, "proposal", timeout=0),
                "result": info.output,
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        print(f"[service] {format % args}", file=sys.stderr, flush=True)


def main() -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    report = autodurable.recover(watch=True)  # resume what a previous run left waiting
    print(f"[service] {report}", file=sys.stderr, flush=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
