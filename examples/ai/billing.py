"""Order billing, written before anyone thought about crashes.

The application hands this module its clients at start-up (`use`): a payment
client and a mailer, real ones in production and fakes in tests. The helpers
get them as parameters, so nothing here says that `payments.charge` talks to a
payment provider: the static rules of `autodurable run` cannot see it, and a
crash after the charge would charge the card again on the next run.
`autodurable ai rewrite` can see it (see README.md in this folder).
"""

import json

PAYMENTS = None
MAILER = None


def use(payments, mailer):
    global PAYMENTS, MAILER
    PAYMENTS, MAILER = payments, mailer


def load_order(path):
    with open(path) as fh:
        return json.load(fh)


def charge_card(payments, order):
    return payments.charge(
        amount=order["total_cents"],
        currency=order["currency"],
        source=order["card_token"],
    )


def send_receipt(mailer, order, charge):
    mailer.send(
        to=order["email"],
        subject=f"Receipt for order {order['id']}",
        body=f"We charged {order['total_cents'] / 100:.2f} {order['currency']} ({charge['id']}).",
    )


def save_receipt(path, order, charge):
    with open(path, "w") as fh:
        json.dump({"order": order["id"], "charge": charge["id"]}, fh)


def process_order(order_path, receipt_path):
    order = load_order(order_path)
    charge = charge_card(PAYMENTS, order)
    send_receipt(MAILER, order, charge)
    save_receipt(receipt_path, order, charge)
    return charge["id"]
