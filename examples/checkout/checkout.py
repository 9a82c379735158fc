"""An order checkout that survives crashes: reserve stock, charge, send a confirmation.

    PAYMENT_URL=http://127.0.0.1:8000 python checkout.py 42

runs the checkout of order 42 as the durable workflow ``order-42`` and prints
its summary as JSON. The code below reads like ordinary Python; two decorators
make it crash-proof:

- ``@autodurable.step`` on each function that changes the outside world: its
  result is recorded in the state database the moment it returns.
- ``@autodurable.workflow`` on the function that calls them. Run the same
  command again after a crash and the workflow resumes: recorded steps return
  their recorded result *without running again*, and the first unfinished step
  runs. Run it again after it finished and it just prints the recorded summary.

Where things live (all relative to the current directory unless set):

- the workflow state: ``.autodurable/state.db`` (or ``$AUTODURABLE_DATABASE_URL``)
- the stock and the outbox: ``inventory.json`` and ``outbox.jsonl`` in
  ``$CHECKOUT_DATA_DIR`` (default: the current directory)
- the payment service: ``$PAYMENT_URL`` (start ``payment_service.py`` first)

To see a crash, set ``CHECKOUT_CRASH_AFTER=reserve`` or ``=charge``: the process
kills itself with SIGKILL (no cleanup, no ``finally``, like a power cut) right
after that step returns. Run the command again without it to resume.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import autodurable

SKU = "widget"
PRICE_CENTS = 1999
INITIAL_STOCK = 5  # written to inventory.json the first time it is needed
INVENTORY_FILE = "inventory.json"
OUTBOX_FILE = "outbox.jsonl"
CRASH_POINTS = ("reserve", "charge")


def data_dir() -> Path:
    """The folder with inventory.json and outbox.jsonl."""
    return Path(os.environ.get("CHECKOUT_DATA_DIR", "."))


def say(message: str) -> None:
    """Report a real side effect on stderr (stdout carries only the summary)."""
    print(f"[checkout] {message}", file=sys.stderr, flush=True)


# -- the inventory: a JSON file --------------------------------------------------


def load_inventory() -> dict[str, Any]:
    """{"stock": {sku: count}, "reservations": {key: reservation}}, created if missing."""
    path = data_dir() / INVENTORY_FILE
    if not path.exists():
        return {"stock": {SKU: INITIAL_STOCK}, "reservations": {}}
    return json.loads(path.read_text())


def save_inventory(inventory: dict[str, Any]) -> None:
    """Write the file atomically, so a crash never leaves half a file behind."""
    path = data_dir() / INVENTORY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(inventory, indent=2))
    os.replace(tmp, path)


# -- the steps: each one changes something outside this process -------------------


@autodurable.step
def reserve_inventory(order: dict[str, Any]) -> str:
    """Take the order's items out of stock; return the reservation id."""
    # Inside a step, idempotency_key() is this step's own key ("order-42:1").
    # Remembering it makes the reservation safe to repeat: if the process dies
    # after saving the file but before autodurable recorded this step, the
    # step runs again on resume and finds its reservation instead of taking
    # the stock twice.
    key = autodurable.idempotency_key()
    inventory = load_inventory()
    if key in inventory["reservations"]:
        return str(inventory["reservations"][key]["reservation_id"])
    stock = inventory["stock"]
    if stock.get(order["sku"], 0) < order["quantity"]:
        raise RuntimeError(f"out of stock: {order['sku']}")
    stock[order["sku"]] -= order["quantity"]
    reservation_id = f"res_{uuid.uuid4().hex[:12]}"  # random is fine: the result is recorded
    inventory["reservations"][key] = {"reservation_id": reservation_id, "order_id": order["id"]}
    save_inventory(inventory)
    say(
        f"reserved {order['quantity']} x {order['sku']}: {reservation_id} "
        f"({stock[order['sku']]} left in stock)"
    )
    return reservation_id


@autodurable.step(retries=3, timeout=10)
def charge(order: dict[str, Any], key: str) -> dict[str, Any]:
    """Charge the order at the payment service; return the charge it reports."""
    # A network call can fail or hang: it is retried (3 times, with backoff) and
    # each attempt is given up after 10 seconds. Every attempt sends the same
    # idempotency key, so the service charges at most once however often we ask.
    request = urllib.request.Request(
        os.environ["PAYMENT_URL"].rstrip("/") + "/charges",
        data=json.dumps(
            {"order_id": order["id"], "amount_cents": order["amount_cents"], "idempotency_key": key}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
    say(
        f"charged {result['amount_cents']} cents for order {order['id']}: "
        f"{result['charge_id']} (idempotency key {key})"
    )
    return result


@autodurable.step
def send_confirmation(order: dict[str, Any], charge: dict[str, Any]) -> str:
    """Put the confirmation email in the outbox; return its message id."""
    message_id = f"<{uuid.uuid4().hex[:12]}@shop.example>"
    email = {
        "message_id": message_id,
        "to": order["email"],
        "subject": f"Order {order['id']} confirmed",
        "body": f"We charged {charge['amount_cents'] / 100:.2f} for {order['quantity']} "
        f"x {order['sku']} (payment {charge['charge_id']}).",
    }
    with open(data_dir() / OUTBOX_FILE, "a") as outbox:
        outbox.write(json.dumps(email) + "\n")
    say(f"sent the confirmation to {order['email']}: {message_id}")
    return message_id


# -- the workflow: ordinary code that calls the steps in order ---------------------


def crash_here_if_asked(point: str) -> None:
    """SIGKILL this process if CHECKOUT_CRASH_AFTER names this point (for the demo)."""
    if os.environ.get("CHECKOUT_CRASH_AFTER") == point:
        say(f"CHECKOUT_CRASH_AFTER={point}: killing this process with SIGKILL")
        os.kill(os.getpid(), signal.SIGKILL)


# name= gives the workflow a stable name in the database, the same whether this
# file runs as a script ("__main__") or is imported as a module.
@autodurable.workflow(name="checkout")
def checkout(order: dict[str, Any]) -> dict[str, Any]:
    """Check out one order; return a summary of what was done."""
    # Workflow code runs again from the top on every resume, so it must only
    # make decisions from its inputs and from step results (which are recorded).
    reservation_id = reserve_inventory(order)
    crash_here_if_asked("reserve")
    # In workflow code, idempotency_key() is the key of the next step called:
    # "order-42:2" for charge, on the first run and on every resume alike.
    payment = charge(order, autodurable.idempotency_key())
    crash_here_if_asked("charge")
    message_id = send_confirmation(order, payment)
    return {
        "order_id": order["id"],
        "status": "confirmed",
        "sku": order["sku"],
        "quantity": order["quantity"],
        "amount_cents": payment["amount_cents"],
        "reservation_id": reservation_id,
        "charge_id": payment["charge_id"],
        "message_id": message_id,
    }


def make_order(order_id: str) -> dict[str, Any]:
    """The order to check out (a real shop would load it from its database)."""
    return {
        "id": order_id,
        "sku": SKU,
        "quantity": 1,
        "amount_cents": PRICE_CENTS,
        "email": "customer@example.com",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python checkout.py ORDER_ID", file=sys.stderr)
        return 2
    if os.environ.get("CHECKOUT_CRASH_AFTER", "") not in ("", *CRASH_POINTS):
        print(f"CHECKOUT_CRASH_AFTER must be one of {', '.join(CRASH_POINTS)}", file=sys.stderr)
        return 2
    if "PAYMENT_URL" not in os.environ:
        print(
            "set PAYMENT_URL to the payment service, e.g. http://127.0.0.1:8000 "
            "(start it with: python payment_service.py --port 8000)",
            file=sys.stderr,
        )
        return 2
    order_id = argv[0]
    # The workflow id names this checkout in the state database. The same id
    # resumes the same checkout; a new id starts a new one.
    summary = autodurable.options(checkout, workflow_id=f"order-{order_id}")(make_order(order_id))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
