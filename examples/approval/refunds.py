"""A refund agent that pauses for a human approval, and survives restarts while it waits.

    python refunds.py ORDER_ID "REASON"      # start (or continue) one refund and wait for it

A customer asks for a refund. The workflow looks the order up, lets an agent
propose what to refund, and publishes the proposal (an *event*). Small
refunds are approved by policy; larger ones wait for a person, who approves
or declines with a *message*, sent with the command line or an HTTP call::

    autodurable send refund-o-1002 '{"approved": true, "by": "ann"}' --topic approval

The wait is durable: kill the process while it waits, start it again, and the
refund is still waiting (for the rest of its timeout, not the whole of it);
the approval, whenever it comes, is received once. The refund is paid with an
idempotency key, so it is paid once even if a crash hits in the middle.

Data (orders, the ledger of refunds paid, the customers' outbox) lives in
``$REFUNDS_DATA`` (default: ``./refunds-data``), the workflow state in
``.autodurable/state.db`` (or ``$AUTODURABLE_DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import autodurable

AUTO_APPROVE_CENTS = 2_000  # refunds up to this much need no person
APPROVAL_TIMEOUT = float(os.environ.get("REFUNDS_APPROVAL_TIMEOUT", 3 * 24 * 3600))
SAMPLE_ORDERS = {
    "o-1001": {"customer": "ada@example.com", "item": "cable", "cents": 1_500, "days_ago": 3},
    "o-1002": {
        "customer": "bob@example.com",
        "item": "headphones",
        "cents": 12_900,
        "days_ago": 10,
    },
    "o-1003": {"customer": "cy@example.com", "item": "monitor", "cents": 34_900, "days_ago": 45},
}


def data_dir() -> Path:
    """The folder of orders.json, ledger.jsonl and outbox.jsonl (created with sample orders)."""
    folder = Path(os.environ.get("REFUNDS_DATA", "refunds-data"))
    folder.mkdir(parents=True, exist_ok=True)
    orders = folder / "orders.json"
    if not orders.exists():
        orders.write_text(json.dumps(SAMPLE_ORDERS, indent=2))
    return folder


def _append(name: str, record: dict[str, Any]) -> None:
    with (data_dir() / name).open("a") as fh:
        fh.write(json.dumps(record) + "\n")


# -- steps: everything that touches the outside world -----------------------------------


@autodurable.step
def load_order(order_id: str) -> dict[str, Any]:
    """The order, from the shop's records."""
    orders = json.loads((data_dir() / "orders.json").read_text())
    if order_id not in orders:
        raise LookupError(f"no order {order_id}")
    return {"order_id": order_id, **orders[order_id]}


@autodurable.step
def propose_refund(order: dict[str, Any], reason: str) -> dict[str, Any]:
    """The agent: decide what to refund, and say why.

    In production this step would ask a model (with the order and the
    customer's words) and parse its answer; as a step, its answer is recorded
    and never asked again on replay. This stand-in applies the shop's policy
    so that the example runs offline and the same way every time.
    """
    damaged = any(word in reason.lower() for word in ("broken", "damaged", "defect"))
    if order["days_ago"] > 30 and not damaged:
        cents, why = 0, "bought more than 30 days ago and not defective: no refund"
    elif damaged:
        cents, why = order["cents"], "reported defective: full refund"
    else:
        cents, why = order["cents"] * 80 // 100, "returned in time: 80% refund (restocking fee)"
    return {"order_id": order["order_id"], "cents": cents, "why": why, "reason": reason}


@autodurable.step
def pay_refund(order_id: str, cents: int, key: str) -> dict[str, Any]:
    """Pay the refund, once per key: the ledger plays a payment provider's idempotency."""
    ledger = data_dir() / "ledger.jsonl"
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            entry = json.loads(line)
            if entry["key"] == key:
                return entry  # paid before: the same receipt, no second payment
    entry = {"key": key, "order_id": order_id, "cents": cents}
    _append("ledger.jsonl", entry)
    return entry


@autodurable.step
def email_customer(customer: str, text: str) -> None:
    """Tell the customer (into the outbox)."""
    _append("outbox.jsonl", {"to": customer, "text": text})


# -- the workflow ---------------------------------------------------------------------------


@autodurable.workflow
def refund_request(order_id: str, reason: str) -> dict[str, Any]:
    """Propose a refund, wait for a person's approval when it is large, then pay or decline."""
    order = load_order(order_id)
    proposal = propose_refund(order, reason)
    autodurable.set_event("proposal", proposal)
    if proposal["cents"] == 0:
        decision: dict[str, Any] = {"approved": False, "by": "policy"}
    elif proposal["cents"] <= AUTO_APPROVE_CENTS:
        decision = {"approved": True, "by": "policy"}
    else:
        autodurable.set_event("status", "waiting for approval")
        decision = autodurable.recv("approval", timeout=APPROVAL_TIMEOUT) or {
            "approved": False,
            "by": "nobody (the approval timed out)",
        }
    if decision.get("approved"):
        receipt = pay_refund(order_id, proposal["cents"], autodurable.idempotency_key())
        email_customer(
            order["customer"], f"We refunded {receipt['cents'] / 100:.2f} for {order_id}."
        )
        outcome = "refunded"
    else:
        email_customer(order["customer"], f"Your refund for {order_id} was declined.")
        outcome = "declined"
    autodurable.set_event("status", outcome)
    return {"order_id": order_id, "outcome": outcome, "decision": decision, **proposal}


def workflow_id(order_id: str) -> str:
    """One refund per order: its workflow id."""
    return f"refund-{order_id}"


def main(argv: list[str]) -> int:
    """Start (or continue) the refund of one order and print its outcome."""
    if len(argv) != 2:
        print('usage: python refunds.py ORDER_ID "REASON"', file=sys.stderr)
        return 2
    order_id, reason = argv
    print(
        f"refund {workflow_id(order_id)}: waiting for it (Ctrl+C stops waiting; run the same "
        "command again to continue)",
        file=sys.stderr,
    )
    result = autodurable.options(refund_request, workflow_id=workflow_id(order_id))(
        order_id, reason
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    # Run the module under its importable name, so that its workflow is
    # "refunds:refund_request" (which the service, importing it, can resume too).
    import refunds

    sys.exit(refunds.main(sys.argv[1:]))
