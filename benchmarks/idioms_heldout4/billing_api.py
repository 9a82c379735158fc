"""A billing service: FastAPI routes over an async SQLAlchemy 2.0 ORM, Stripe charges
and refunds with idempotency keys, receipts by email, and Decimal money arithmetic."""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from functools import lru_cache
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import ForeignKey, Row, Select, String, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
PAYMENT_TERMS_DAYS = 30
KEY_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4d4a-9a59-2f7f0c3b8e11")

engine = create_async_engine(os.environ.get("BILLING_DB_URL", "postgresql+asyncpg:///billing"))
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    stripe_id: Mapped[str | None] = mapped_column(String(64))
    invoices: Mapped[list[Invoice]] = relationship(back_populates="customer")


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    total_cents: Mapped[int] = mapped_column(default=0)
    issued_at: Mapped[datetime | None]
    payment_intent: Mapped[str | None] = mapped_column(String(64))
    customer: Mapped[Customer] = relationship(back_populates="invoices")
    lines: Mapped[list[InvoiceLine]] = relationship(cascade="all, delete-orphan")


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    description: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal]
    quantity: Mapped[int]
    tax_rate: Mapped[Decimal]


class LineIn(BaseModel):
    description: str = Field(max_length=200)
    unit_price: Decimal = Field(gt=0)
    quantity: int = Field(gt=0)
    tax_rate: Decimal = Decimal("0.20")

    @field_validator("description")
    @classmethod
    def tidy_description(cls, value: str) -> str:  # expect: plain
        return " ".join(value.split())


class InvoiceIn(BaseModel):
    customer_id: int
    lines: list[LineIn]


class InvoiceOut(BaseModel):
    id: int
    status: str
    total: str

    @classmethod
    def from_invoice(cls, invoice: Invoice) -> InvoiceOut:  # expect: plain
        return cls(
            id=invoice.id,
            status=invoice.status,
            total=format_amount(invoice.total_cents, invoice.currency),
        )


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    user: str
    password: str
    sender: str


def to_cents(amount: Decimal) -> int:  # expect: plain
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_total(unit_price: Decimal, quantity: int, tax_rate: Decimal) -> Decimal:  # expect: plain
    net = unit_price * quantity
    return (net + net * tax_rate).quantize(CENT, rounding=ROUND_HALF_UP)


def invoice_total(lines: Iterable[InvoiceLine]) -> Decimal:  # expect: plain
    return sum((line_total(ln.unit_price, ln.quantity, ln.tax_rate) for ln in lines), Decimal(0))


def format_amount(cents: int, currency: str) -> str:  # expect: plain
    return f"{Decimal(cents) * CENT:,.2f} {currency.upper()}"


def utcnow() -> datetime:  # expect: step
    return datetime.now(UTC)


def new_idempotency_key(prefix: str) -> str:  # expect: step
    return f"{prefix}-{uuid.uuid4()}"


def idempotency_key_for(invoice_id: int, attempt: int) -> str:  # expect: plain
    return str(uuid.uuid5(KEY_NAMESPACE, f"invoice:{invoice_id}:attempt:{attempt}"))


async def get_session() -> AsyncIterator[AsyncSession]:  # expect: plain
    async with SessionLocal() as session:
        yield session


async def get_tx_session() -> AsyncIterator[AsyncSession]:  # expect: step
    async with SessionLocal.begin() as session:
        yield session


@lru_cache(maxsize=1)
def get_stripe() -> stripe.StripeClient:  # expect: plain
    return stripe.StripeClient(os.environ["STRIPE_SECRET_KEY"])


def get_mail_settings() -> MailSettings:  # expect: plain
    return MailSettings(
        host=os.environ.get("SMTP_HOST", "localhost"),
        port=int(os.environ.get("SMTP_PORT", "587")),
        user=os.environ.get("SMTP_USER", ""),
        password=os.environ.get("SMTP_PASSWORD", ""),
        sender=os.environ.get("BILLING_SENDER", "billing@example.com"),
    )


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TxSessionDep = Annotated[AsyncSession, Depends(get_tx_session)]
StripeDep = Annotated[stripe.StripeClient, Depends(get_stripe)]


def open_invoices_query(customer_id: int) -> Select[tuple[Invoice]]:  # expect: plain
    return (
        select(Invoice)
        .where(Invoice.customer_id == customer_id, Invoice.status == "open")
        .options(selectinload(Invoice.lines))
        .order_by(Invoice.issued_at)
    )


def overdue_query(cutoff: datetime) -> Select[Any]:  # expect: plain
    return (
        select(Invoice.id, Customer.email, Invoice.total_cents, Invoice.currency)
        .join(Invoice.customer)
        .where(Invoice.status == "open", Invoice.issued_at < cutoff)
    )


class InvoiceRepository:
    def __init__(self, session: AsyncSession) -> None:  # expect: plain
        self.session = session

    async def get(self, invoice_id: int) -> Invoice | None:  # expect: step
        return await self.session.get(Invoice, invoice_id, options=[selectinload(Invoice.lines)])

    async def open_for(self, customer_id: int) -> list[Invoice]:  # expect: step
        result = await self.session.scalars(open_invoices_query(customer_id))
        return list(result)

    def add(self, invoice: Invoice) -> None:  # expect: plain
        self.session.add(invoice)

    async def mark_paid(self, invoice_id: int, intent_id: str) -> None:  # expect: step
        stmt = (
            update(Invoice)
            .where(Invoice.id == invoice_id)
            .values(status="paid", payment_intent=intent_id)
        )
        await self.session.execute(stmt)


async def find_customer(session, email):  # expect: step
    stmt = select(Customer).where(Customer.email == email.strip().lower())
    return (await session.scalars(stmt)).first()


async def overdue_rows(session: AsyncSession, now: datetime) -> Sequence[Row[Any]]:  # expect: step
    result = await session.execute(overdue_query(now - timedelta(days=PAYMENT_TERMS_DAYS)))
    return result.all()


def build_intent_params(amount_cents: int, currency: str, customer_ref: str):  # expect: plain
    return {
        "amount": amount_cents,
        "currency": currency.lower(),
        "customer": customer_ref,
        "automatic_payment_methods": {"enabled": True},
        "off_session": True,
        "confirm": True,
    }


def charge_invoice(client: stripe.StripeClient, invoice: Invoice, ref: str):  # expect: step
    params = build_intent_params(invoice.total_cents, invoice.currency, ref)
    intent = client.payment_intents.create(
        params=params, options={"idempotency_key": idempotency_key_for(invoice.id, 0)}
    )
    return intent.id


def refund_payment(intent_id: str, amount_cents: int, client=None) -> str:  # expect: step
    client = client or get_stripe()
    refund = client.refunds.create(
        params={"payment_intent": intent_id, "amount": amount_cents},
        options={"idempotency_key": new_idempotency_key("refund")},
    )
    return refund.id


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:  # expect: plain
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send_email(message: EmailMessage, settings: MailSettings) -> None:  # expect: step
    with smtplib.SMTP(settings.host, settings.port, timeout=15) as smtp:
        smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password)
        smtp.send_message(message)


async def send_receipt(to: str, invoice_id: int, cents: int, currency: str):  # expect: workflow
    settings = get_mail_settings()
    body = f"We received your payment of {format_amount(cents, currency)}. Thank you."
    message = build_message(settings.sender, to, f"Receipt for invoice #{invoice_id}", body)
    await asyncio.to_thread(send_email, message, settings)


class BillingService:
    def __init__(self, session: AsyncSession, client: stripe.StripeClient) -> None:  # expect: plain
        self.session = session
        self.stripe = client
        self.invoices = InvoiceRepository(session)

    async def draft_invoice(self, customer_id: int, lines: list[LineIn]) -> Invoice:  # expect: step
        invoice = Invoice(customer_id=customer_id, status="draft")
        invoice.lines = [InvoiceLine(**line.model_dump()) for line in lines]
        invoice.total_cents = to_cents(invoice_total(invoice.lines))
        self.invoices.add(invoice)
        await self.session.flush()
        return invoice

    async def issue(self, invoice_id: int) -> Invoice:  # expect: workflow
        invoice = await self.invoices.get(invoice_id)
        if invoice is None:
            raise LookupError(invoice_id)
        invoice.status = "open"
        invoice.issued_at = utcnow()
        return invoice

    async def ensure_stripe_customer(self, customer: Customer) -> str:  # expect: step
        if customer.stripe_id:
            return customer.stripe_id
        customer.stripe_id = self.stripe.customers.create(params={"email": customer.email}).id
        await self.session.flush()
        return customer.stripe_id

    async def collect(self, invoice: Invoice, customer: Customer) -> str:  # expect: workflow
        customer_ref = await self.ensure_stripe_customer(customer)
        intent_id = await asyncio.to_thread(charge_invoice, self.stripe, invoice, customer_ref)
        await self.invoices.mark_paid(invoice.id, intent_id)
        return intent_id


def billing_service(session: TxSessionDep, client: StripeDep) -> BillingService:  # expect: plain
    return BillingService(session, client)


ServiceDep = Annotated[BillingService, Depends(billing_service)]
router = APIRouter(prefix="/invoices")


@router.get("/ready")
async def ready(session: SessionDep) -> dict[str, str]:  # expect: step
    await session.execute(text("SELECT 1"))
    return {"status": "ready"}


@router.post("")
async def create_invoice(body: InvoiceIn, service: ServiceDep) -> InvoiceOut:  # expect: workflow
    invoice = await service.draft_invoice(body.customer_id, body.lines)
    return InvoiceOut.from_invoice(invoice)


@router.get("/{invoice_id}")
async def read_invoice(invoice_id: int, session: SessionDep) -> InvoiceOut:  # expect: workflow
    invoice = await InvoiceRepository(session).get(invoice_id)
    if invoice is None:
        raise HTTPException(status_code=404, detail="invoice not found")
    return InvoiceOut.from_invoice(invoice)


@router.post("/{invoice_id}/pay")
async def pay_invoice(invoice_id: int, tasks: BackgroundTasks, service: ServiceDep):  # expect: step
    invoice = await service.issue(invoice_id)
    customer = await service.session.get(Customer, invoice.customer_id)
    if customer is None:
        raise HTTPException(status_code=409, detail="invoice has no customer")
    intent_id = await service.collect(invoice, customer)
    tasks.add_task(send_receipt, customer.email, invoice.id, invoice.total_cents, invoice.currency)
    return {"invoice": invoice.id, "payment_intent": intent_id}


@router.post("/customers/{email}/settle")
async def settle_by_email(email: str, service: ServiceDep) -> dict:  # expect: workflow
    customer = await find_customer(service.session, email)
    if customer is None:
        raise HTTPException(status_code=404, detail="unknown customer")
    return {"payment_intents": await settle_customer(service, customer)}


@router.post("/{invoice_id}/refund")
async def refund_invoice(invoice_id: int, service: ServiceDep) -> dict:  # expect: workflow
    invoice = await service.invoices.get(invoice_id)
    if invoice is None or invoice.payment_intent is None:
        raise HTTPException(status_code=404, detail="no payment to refund")
    refund_id = await asyncio.to_thread(
        refund_payment, invoice.payment_intent, invoice.total_cents, service.stripe
    )
    return {"refund": refund_id}


def reminder_text(invoice_id: int, amount: str) -> str:  # expect: plain
    return (
        f"Invoice #{invoice_id} for {amount} is more than {PAYMENT_TERMS_DAYS} days past due. "
        "Please pay it at your earliest convenience."
    )


async def send_reminder(email: str, invoice_id: int, cents: int, currency: str):  # expect: workflow
    settings = get_mail_settings()
    body = reminder_text(invoice_id, format_amount(cents, currency))
    message = build_message(settings.sender, email, f"Payment reminder #{invoice_id}", body)
    await asyncio.to_thread(send_email, message, settings)


async def settle_customer(service: BillingService, customer: Customer) -> list:  # expect: workflow
    invoices = await service.invoices.open_for(customer.id)
    return [await service.collect(invoice, customer) for invoice in invoices]


async def dunning_run() -> int:  # expect: workflow
    async with SessionLocal() as session:
        rows = await overdue_rows(session, utcnow())
    await asyncio.gather(*(send_reminder(r.email, r.id, r.total_cents, r.currency) for r in rows))
    log.info("sent %d payment reminders", len(rows))
    return len(rows)


def main() -> None:  # expect: workflow
    asyncio.run(dunning_run())
