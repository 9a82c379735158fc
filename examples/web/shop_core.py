"""What every shop example does for POST /charges, framework aside.

`pay` calls the payment service (an inferred step: it does HTTP);
`hold_if_asked` blocks until a file appears when ``SHOP_GATE`` names one (an
inferred step too), so that a test can kill the server after the charge.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request


def pay(order: str, amount: int) -> str:
    """Charge `amount` for `order` at the payment service; the charge's id."""
    url = os.environ.get("SHOP_PAYMENTS_URL", "http://127.0.0.1:8000") + "/charges"
    data = json.dumps({"order": order, "amount": amount}).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["charge_id"])


def hold_if_asked(order: str) -> None:
    """With ``SHOP_GATE=PATH``: say so in ``PATH.<order>.waiting``, then wait for PATH."""
    gate = os.environ.get("SHOP_GATE")
    if not gate:
        return
    with open(f"{gate}.{order}.waiting", "w") as fh:
        fh.write(str(os.getpid()))
    while not os.path.exists(gate):
        time.sleep(0.02)


def charge_order(order: str, amount: int) -> dict[str, object]:
    """Charge the order, then (in tests) wait: what every shop's handler returns."""
    charge_id = pay(order, amount)
    hold_if_asked(order)
    return {"order": order, "amount": amount, "charge_id": charge_id}
