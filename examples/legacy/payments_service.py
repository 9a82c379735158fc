"""A small local payments service, for the billing_job.py example.

    python payments_service.py --port 8001 [--delay SECONDS]

API (JSON over HTTP):

    POST /charges  {"customer": "cus_...", "amount_cents": N, "currency": "eur",
                    "description": "..."}
        Charges the customer at once (every request is a new charge: there is
        no idempotency key) and returns the charge (201) with its id, "ch_000001", ...
    GET /stats
        {"requests": {path: n}, "answered": {path: n}, "charges": [...]}: how
        many times each path was requested and answered, and every charge
        made, in order. This is the effect counter: it shows whether a client
        charged somebody twice.

The charges live in memory. ``--delay`` makes every answer wait that long
after the charge is made (see local_service.py): a client killed then has
charged the customer without knowing it.

The service stands for the outside world, so it is never made durable itself
(autodurable: off).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from local_service import Reply, not_found, serve

_lock = threading.Lock()
_charges: list[dict[str, Any]] = []


def handle(method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
    if (method, path) != ("POST", "/charges"):
        return not_found(path)
    request = json.loads(body)
    amount = int(request["amount_cents"])
    if amount <= 0:
        return Reply(400, {"error": "amount_cents must be positive"})
    with _lock:
        charge = {
            "id": f"ch_{len(_charges) + 1:06d}",
            "customer": str(request["customer"]),
            "amount_cents": amount,
            "currency": str(request.get("currency", "eur")),
            "description": str(request.get("description", "")),
            "status": "succeeded",
        }
        _charges.append(charge)
    return Reply(201, charge)


def charges() -> dict[str, Any]:
    with _lock:
        return {"charges": [dict(charge) for charge in _charges]}


if __name__ == "__main__":
    serve("payments service", "A small local payments service.", handle, charges)
