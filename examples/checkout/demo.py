"""The checkout example end to end: crash in the middle of an order, then resume.

    python examples/checkout/demo.py [--keep]

1. starts the payment service (payment_service.py) on a free port;
2. runs ``checkout.py 42`` with CHECKOUT_CRASH_AFTER=charge: the process kills
   itself with SIGKILL right after the customer was charged, before the
   confirmation email was sent;
3. runs the very same command again, without the crash: it resumes. Reserving
   and charging are replayed from the state database (they do not run again),
   and the confirmation is sent;
4. shows what the outside world saw: one charge, stock taken once, one email.

All state goes into a new temporary folder (removed at the end unless --keep),
so the demo can be run any number of times. Exits 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ORDER_ID = "42"
INDENT = "     "

sys.path.insert(0, str(HERE))  # checkout.py sits next to this file
from checkout import INITIAL_STOCK, INVENTORY_FILE, OUTBOX_FILE, SKU  # noqa: E402


def start_payment_service(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Start payment_service.py on a free port; return the process and its URL."""
    with (folder / "payment_service.log").open("w") as log:  # its log, shown at the end
        service = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "payment_service.py"),
                "--port",
                "0",
                "--db",
                str(folder / "payments.db"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert service.stdout is not None
    first_line = service.stdout.readline()  # "listening on PORT"
    if not first_line.startswith("listening on "):
        service.kill()
        service.wait()
        raise RuntimeError(f"the payment service did not start: {first_line!r}")
    return service, f"http://127.0.0.1:{first_line.split()[-1]}"


def stop(service: subprocess.Popen[str]) -> None:
    """Stop the payment service and wait for it to exit."""
    service.terminate()
    try:
        service.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
    if service.stdout is not None:
        service.stdout.close()


def run_checkout(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python checkout.py 42`` and show what it did (its stderr lines)."""
    done = subprocess.run(
        [sys.executable, str(HERE / "checkout.py"), ORDER_ID],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in done.stderr.splitlines():
        print(INDENT + line)
    return done


def get_charges(url: str) -> list[dict[str, Any]]:
    """Every charge the payment service made."""
    with urllib.request.urlopen(url + "/charges", timeout=10) as response:
        charges: list[dict[str, Any]] = json.load(response)
    return charges


def read_outbox(folder: Path) -> list[dict[str, Any]]:
    path = folder / OUTBOX_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_stock(folder: Path) -> int:
    path = folder / INVENTORY_FILE
    return int(json.loads(path.read_text())["stock"][SKU]) if path.exists() else INITIAL_STOCK


def recorded_steps(database: Path) -> list[tuple[int, str, str, int]]:
    """The steps autodurable recorded for the order, from its SQLite tables."""
    with sqlite3.connect(database) as conn:
        return conn.execute(
            "SELECT position, name, status, attempts FROM steps "
            "WHERE workflow_id = ? ORDER BY position",
            (f"order-{ORDER_ID}",),
        ).fetchall()


def state_line(folder: Path, url: str) -> str:
    charges = get_charges(url)
    return (
        f"stock: {read_stock(folder)} {SKU}s left, charges: {len(charges)}, "
        f"emails sent: {len(read_outbox(folder))}"
    )


def demo(folder: Path) -> list[str]:
    """Run the demo in `folder`; return the problems found (none when all is well)."""
    problems: list[str] = []
    database = folder / ".autodurable" / "state.db"
    service, url = start_payment_service(folder)
    try:
        print(f"1. Started the payment service at {url}")
        print(f"   Stock: {INITIAL_STOCK} {SKU}s. Every file of this demo is in {folder}")

        env = {key: value for key, value in os.environ.items() if key != "CHECKOUT_CRASH_AFTER"}
        env.update(
            AUTODURABLE_DATABASE_URL=f"sqlite:///{database}",  # an absolute path: 4 slashes
            CHECKOUT_DATA_DIR=str(folder),
            PAYMENT_URL=url,
        )

        print()
        print(f"2. Running `checkout.py {ORDER_ID}` with CHECKOUT_CRASH_AFTER=charge:")
        first = run_checkout(folder, {**env, "CHECKOUT_CRASH_AFTER": "charge"})
        if first.returncode == -signal.SIGKILL:
            print(
                f"   -> killed by SIGKILL (exit code {first.returncode}) after charging, "
                "before the email."
            )
        else:
            problems.append(f"the first run should die of SIGKILL, exit code {first.returncode}")
        print(f"   Now: {state_line(folder, url)}. The order is half done.")

        print()
        print("3. Running the same command again, without the crash. It resumes:")
        second = run_checkout(folder, env)
        if second.returncode != 0:
            problems.append(
                f"the second run failed (exit code {second.returncode}):\n" + second.stderr
            )
            return problems
        print("   -> reserve_inventory and charge were not run again: their results were")
        print("      replayed from the state database. Only the email was sent. Summary:")
        summary = json.loads(second.stdout)
        for line in json.dumps(summary, indent=2).splitlines():
            print(INDENT + line)

        print()
        print("4. What the outside world saw:")
        charges = get_charges(url)
        print(f"   Charges at the payment service ({len(charges)}):")
        for charge in charges:
            print(
                f"{INDENT}{charge['charge_id']}: order {charge['order_id']}, "
                f"{charge['amount_cents']} cents, idempotency key {charge['idempotency_key']}, "
                f"requests: {charge['requests']}"
            )
        outbox = read_outbox(folder)
        print(f"   Emails in the outbox ({len(outbox)}):")
        for email in outbox:
            print(f"{INDENT}to {email['to']}: {email['subject']!r} {email['message_id']}")
        stock = read_stock(folder)
        print(f"   Stock: {INITIAL_STOCK} -> {stock} {SKU}s")
        print(f"   Steps recorded for order-{ORDER_ID} (the `steps` table of {database.name}):")
        for position, name, status, attempts in recorded_steps(database):
            print(f"{INDENT}{position}  {name:<18} {status}, attempts: {attempts}")

        # What must be true after a crash and a resume, whatever the crash point.
        ours = [charge for charge in charges if charge["order_id"] == ORDER_ID]
        if len(ours) != 1:
            problems.append(f"expected exactly one charge for order {ORDER_ID}, got {len(ours)}")
        elif ours[0]["requests"] != 1:
            problems.append("the charge step ran again instead of being replayed")
        elif summary.get("charge_id") != ours[0]["charge_id"]:
            problems.append("the summary names another charge than the service made")
        if stock != INITIAL_STOCK - 1:
            problems.append(
                f"stock should go from {INITIAL_STOCK} to {INITIAL_STOCK - 1}, it is {stock}"
            )
        if [email["message_id"] for email in outbox] != [summary.get("message_id")]:
            problems.append(f"expected exactly one confirmation email, got {len(outbox)}")
    finally:
        stop(service)
    log = (folder / "payment_service.log").read_text().splitlines()
    print(f"   The payment service's log ({len(log)} line(s)):")
    for line in log:
        print(INDENT + line)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="checkout-demo-")).resolve()
    try:
        problems = demo(folder)
    finally:
        if args.keep:
            print(f"\nKept {folder}. Look inside with:")
            print(
                f"  sqlite3 {folder}/.autodurable/state.db "
                '"select workflow_id, position, name, status from steps"'
            )
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    print("OK: the process was killed in the middle of the order, and yet the customer")
    print("    was charged once, the stock was taken once, and one confirmation was sent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
