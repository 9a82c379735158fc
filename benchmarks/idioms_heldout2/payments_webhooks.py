"""Stripe webhook service on Flask: verified events, a SQLAlchemy repository, email receipts."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import stripe
from flask import Flask, abort, jsonify, request
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from sqlalchemy import Select, String, create_engine, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .chat_bot import post_alert, slack

logger = logging.getLogger(__name__)

stripe.api_key = os.environ.get("STRIPE_SECRET_KEY", "")
WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
SENDER = os.environ.get("RECEIPT_SENDER", "receipts@example.com")
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp"}

engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///payments.db"), pool_pre_ping=True)
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)
app = Flask(__name__)


class Base(DeclarativeBase):
    pass


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    intent_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_email: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    def amount_display(self) -> str:  # expect: plain
        return format_amount(self.amount, self.currency)


class ProcessedEvent(Base):
    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime]


class InvalidSignature(Exception):
    pass


# --- signature verification (Stripe's scheme) --------------------------------------------


def parse_signature_header(header: str) -> tuple[int, list[str]]:  # expect: plain
    timestamp = 0
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def expected_signature(secret: str, timestamp: int, payload: bytes) -> str:  # expect: plain
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_matches(header: str, payload: bytes, secret: str) -> bool:  # expect: plain
    timestamp, candidates = parse_signature_header(header)
    expected = expected_signature(secret, timestamp, payload)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def within_tolerance(timestamp: int, tolerance: int = 300) -> bool:  # expect: step
    return timestamp >= time.time() - tolerance


def verify_webhook(header: str, payload: bytes) -> dict[str, Any]:  # expect: workflow
    timestamp, _ = parse_signature_header(header)
    if not within_tolerance(timestamp):
        raise InvalidSignature("timestamp outside the tolerance zone")
    if not signature_matches(header, payload, WEBHOOK_SECRET):
        raise InvalidSignature("no matching v1 signature")
    return json.loads(payload)


# --- repository ------------------------------------------------------------------------------


def totals_query(currency: str) -> Select:  # expect: plain
    return (
        select(Payment.status, func.sum(Payment.amount))
        .where(Payment.currency == currency)
        .group_by(Payment.status)
    )


class PaymentRepository:
    def __init__(self, session: Session) -> None:  # expect: plain
        self.session = session

    def by_intent(self, intent_id: str) -> Payment | None:  # expect: step
        return self.session.scalars(select(Payment).where(Payment.intent_id == intent_id)).first()

    def add(self, payment: Payment) -> Payment:  # expect: plain
        self.session.add(payment)
        return payment

    def set_status(self, intent_id: str, status: str) -> int:  # expect: step
        statement = update(Payment).where(Payment.intent_id == intent_id).values(status=status)
        return self.session.execute(statement).rowcount

    def totals(self, currency: str) -> dict[str, int]:  # expect: step
        return dict(self.session.execute(totals_query(currency)).tuples().all())


def already_processed(session: Session, event_id: str) -> bool:  # expect: step
    return session.get(ProcessedEvent, event_id) is not None


def remember_event(session, event_id, received_at):  # expect: plain
    session.add(ProcessedEvent(event_id=event_id, received_at=received_at))


def record_event(session: Session, event_id: str) -> None:  # expect: step
    session.add(ProcessedEvent(event_id=event_id, received_at=datetime.now(UTC)))
    session.flush()


def status_counts(currency: str) -> dict[str, int]:  # expect: step
    with engine.connect() as conn:
        return dict(conn.execute(totals_query(currency)).tuples().all())


# --- Stripe ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def stripe_client() -> stripe.StripeClient:  # expect: plain
    return stripe.StripeClient(os.environ["STRIPE_SECRET_KEY"], max_network_retries=2)


def new_idempotency_key() -> str:  # expect: step
    return f"refund-{uuid.uuid4()}"


def intent_from_event(event: dict[str, Any]) -> stripe.PaymentIntent:  # expect: plain
    return stripe.PaymentIntent.construct_from(event["data"]["object"], stripe.api_key)


def fetch_intent(intent_id: str) -> stripe.PaymentIntent:  # expect: step
    return stripe.PaymentIntent.retrieve(intent_id, expand=["latest_charge"])


def customer_email(customer_id: str) -> str | None:  # expect: step
    return stripe_client().customers.retrieve(customer_id).email


@dataclass
class RefundRequest:
    reason: str = "requested_by_customer"
    amount: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RefundRequest:  # expect: plain
        data = data or {}
        amount = data.get("amount")
        return cls(data.get("reason", cls.reason), int(amount) if amount is not None else None)

    def params(self, intent_id: str) -> dict[str, Any]:  # expect: plain
        params: dict[str, Any] = {"payment_intent": intent_id, "reason": self.reason}
        if self.amount is not None:
            params["amount"] = self.amount
        return params


def refund_payment(client: stripe.StripeClient, intent_id, req: RefundRequest, key):  # expect: step
    refund = client.refunds.create(params=req.params(intent_id), options={"idempotency_key": key})
    return refund.id


# --- receipts --------------------------------------------------------------------------------


def format_amount(amount: int, currency: str) -> str:  # expect: plain
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{Decimal(amount) / 100:.2f} {currency.upper()}"


@dataclass(frozen=True)
class Receipt:
    to: str
    amount: int
    currency: str
    intent_id: str

    def subject(self) -> str:  # expect: plain
        return f"Your receipt for {format_amount(self.amount, self.currency)}"

    def body(self) -> str:  # expect: plain
        return (
            f"Thank you for your payment of {format_amount(self.amount, self.currency)}.\n"
            f"Reference: {self.intent_id}\n"
        )


def receipt_for(payment: Payment) -> Receipt:  # expect: plain
    return Receipt(payment.customer_email, payment.amount, payment.currency, payment.intent_id)


def build_receipt_email(receipt: Receipt, sender: str = SENDER) -> EmailMessage:  # expect: plain
    message = EmailMessage()
    message["From"] = sender
    message["To"] = receipt.to
    message["Subject"] = receipt.subject()
    message.set_content(receipt.body())
    return message


def build_sendgrid_mail(receipt: Receipt) -> Mail:  # expect: plain
    return Mail(
        from_email=SENDER,
        to_emails=receipt.to,
        subject=receipt.subject(),
        plain_text_content=receipt.body(),
    )


@lru_cache(maxsize=1)
def sendgrid_client() -> SendGridAPIClient:  # expect: plain
    return SendGridAPIClient(os.environ["SENDGRID_API_KEY"])


def send_via_sendgrid(receipt: Receipt) -> int:  # expect: step
    response = sendgrid_client().send(build_sendgrid_mail(receipt))
    return response.status_code


def send_via_smtp(message: EmailMessage) -> None:  # expect: step
    with smtplib.SMTP(os.environ.get("SMTP_HOST", "localhost"), 587, timeout=20) as smtp:
        smtp.starttls()
        smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
        smtp.send_message(message)


def send_receipt(receipt: Receipt) -> None:  # expect: workflow
    if os.environ.get("EMAIL_BACKEND") == "sendgrid":
        send_via_sendgrid(receipt)
    else:
        send_via_smtp(build_receipt_email(receipt))


class SmtpMailer:
    def __init__(self, host: str, port: int = 465) -> None:  # expect: step
        self.smtp = smtplib.SMTP_SSL(host, port, timeout=20)

    def send(self, message: EmailMessage) -> None:  # expect: step
        self.smtp.send_message(message)


def make_mailer() -> SmtpMailer:  # expect: workflow
    return SmtpMailer(os.environ.get("SMTP_HOST", "localhost"))


def send_receipt_with(mailer: SmtpMailer, receipt: Receipt) -> None:  # expect: workflow
    mailer.send(build_receipt_email(receipt))


def notify_finance(text: str) -> None:  # expect: step
    slack.chat_postMessage(channel="#finance", text=text)


# --- event handlers --------------------------------------------------------------------------


def payment_from_intent(intent: dict[str, Any], email: str) -> Payment:  # expect: plain
    return Payment(
        intent_id=intent["id"],
        customer_email=email,
        amount=intent["amount_received"],
        currency=intent["currency"],
        status="pending",
    )


def failure_summary(intent: dict[str, Any]) -> str:  # expect: plain
    error = intent.get("last_payment_error") or {}
    amount = format_amount(intent.get("amount", 0), intent.get("currency", "usd"))
    return f"Payment {intent['id']} of {amount} failed: {error.get('message', 'unknown reason')}"


def handle_payment_succeeded(session: Session, intent: dict[str, Any]) -> None:  # expect: workflow
    repo = PaymentRepository(session)
    payment = repo.by_intent(intent["id"])
    if payment is None:
        email = intent.get("receipt_email") or customer_email(intent["customer"]) or ""
        payment = repo.add(payment_from_intent(intent, email))
    payment.status = "succeeded"
    if payment.customer_email:
        send_receipt(receipt_for(payment))


def handle_payment_failed(session: Session, intent: dict[str, Any]) -> None:  # expect: workflow
    PaymentRepository(session).set_status(intent["id"], "failed")
    post_alert("#payments", failure_summary(intent))


def handle_refund(session: Session, charge: dict[str, Any]) -> None:  # expect: workflow
    PaymentRepository(session).set_status(charge["payment_intent"], "refunded")


def handle_dispute(session: Session, dispute: dict[str, Any]) -> None:  # expect: workflow
    PaymentRepository(session).set_status(dispute["payment_intent"], "disputed")
    amount = format_amount(dispute["amount"], dispute["currency"])
    notify_finance(f"Dispute opened on {dispute['payment_intent']} for {amount}")


Handler = Callable[[Session, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": handle_payment_succeeded,
    "payment_intent.payment_failed": handle_payment_failed,
    "charge.refunded": handle_refund,
    "charge.dispute.created": handle_dispute,
}


def handler_for(event_type: str) -> Handler | None:  # expect: plain
    return HANDLERS.get(event_type)


def process_event(event: dict[str, Any]) -> bool:  # expect: step
    with SessionLocal.begin() as session:
        if already_processed(session, event["id"]):
            logger.info("duplicate delivery of %s", event["id"])
            return False
        handler = handler_for(event["type"])
        if handler is not None:
            handler(session, event["data"]["object"])
        record_event(session, event["id"])
    return True


# --- routes ----------------------------------------------------------------------------------


def payment_json(payment: Payment) -> dict[str, Any]:  # expect: plain
    return {
        "intent": payment.intent_id,
        "status": payment.status,
        "amount": payment.amount_display(),
    }


@app.post("/webhooks/stripe")
def stripe_webhook():  # expect: workflow
    payload = request.get_data()
    try:
        event = verify_webhook(request.headers.get("Stripe-Signature", ""), payload)
    except InvalidSignature as exc:
        logger.warning("rejected webhook: %s", exc)
        abort(400)
    created = process_event(event)
    return jsonify({"received": True, "duplicate": not created})


@app.get("/payments/<intent_id>")
def payment_detail(intent_id: str):  # expect: workflow
    with SessionLocal() as session:
        payment = PaymentRepository(session).by_intent(intent_id)
    if payment is None:
        abort(404)
    return jsonify(payment_json(payment))


@app.post("/payments/<intent_id>/refund")
def refund_route(intent_id: str):  # expect: step
    refund_request = RefundRequest.from_json(request.get_json(silent=True))
    with SessionLocal.begin() as session:
        PaymentRepository(session).set_status(intent_id, "refund_pending")
    refund_id = refund_payment(stripe_client(), intent_id, refund_request, new_idempotency_key())
    return jsonify({"refund": refund_id}), 202


@app.get("/reports/status-counts")
def status_counts_view():  # expect: workflow
    return jsonify(status_counts(request.args.get("currency", "usd")))
