"""Nightly billing job.

Charges every open invoice through the payments service, marks it paid and
prints a summary.

    PAYMENTS_URL=http://127.0.0.1:8001 python billing_job.py billing.db

The database is created with a few demo invoices if it has none yet.

Settings (environment):
    PAYMENTS_URL  the payments service (default http://127.0.0.1:8001)
"""

import os
import sys

import httpx
from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:8001").rstrip("/")

DEMO_INVOICES = [
    # number, customer, amount in cents, status
    ("INV-1001", "cus_acme", 12900, "paid"),
    ("INV-1002", "cus_acme", 4500, "open"),
    ("INV-1003", "cus_globex", 99000, "open"),
    ("INV-1004", "cus_initech", 2350, "open"),
    ("INV-1005", "cus_umbrella", 15075, "paid"),
    ("INV-1006", "cus_hooli", 48000, "open"),
    ("INV-1007", "cus_globex", 1999, "open"),
    ("INV-1008", "cus_stark", 250000, "open"),
]


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    customer: Mapped[str] = mapped_column(String(40))
    amount_cents: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default="open")
    charge_id: Mapped[str | None] = mapped_column(String(40))


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    charge_id: Mapped[str] = mapped_column(String(40))
    amount_cents: Mapped[int]


# -- repository --------------------------------------------------------------------------


def count_invoices(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Invoice))


def add_demo_invoices(session: Session) -> None:
    for number, customer, amount, status in DEMO_INVOICES:
        session.add(Invoice(number=number, customer=customer, amount_cents=amount, status=status))
    session.commit()


def pending_invoices(session: Session) -> list[Invoice]:
    query = select(Invoice).where(Invoice.status == "open").order_by(Invoice.number)
    return list(session.scalars(query))


def mark_paid(session: Session, invoice_id: int, charge_id: str) -> None:
    invoice = session.get(Invoice, invoice_id)
    invoice.status = "paid"
    invoice.charge_id = charge_id
    session.add(
        Payment(invoice_id=invoice_id, charge_id=charge_id, amount_cents=invoice.amount_cents)
    )
    session.commit()


# -- payments ----------------------------------------------------------------------------


def charge(customer, amount_cents, description):
    response = httpx.post(
        PAYMENTS_URL + "/charges",
        json={
            "customer": customer,
            "amount_cents": amount_cents,
            "currency": "eur",
            "description": description,
        },
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def euros(cents):
    return f"{cents / 100:,.2f} EUR"


def main():
    db = sys.argv[1] if len(sys.argv) > 1 else "billing.db"
    engine = create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)

    with Session(engine) as session:
        if count_invoices(session) == 0:
            print(f"{db} has no invoices: adding the demo invoices")
            add_demo_invoices(session)

        invoices = pending_invoices(session)
        print(f"{len(invoices)} open invoice(s)")
        total = 0
        for n, invoice in enumerate(invoices, start=1):
            result = charge(invoice.customer, invoice.amount_cents, f"Invoice {invoice.number}")
            mark_paid(session, invoice.id, result["id"])
            amount = euros(invoice.amount_cents)
            print(f"[{n}/{len(invoices)}] {invoice.number} {invoice.customer}: charged {amount}")
            total += invoice.amount_cents

    print(f"billed {len(invoices)} invoice(s), {euros(total)} in total")


if __name__ == "__main__":
    main()
