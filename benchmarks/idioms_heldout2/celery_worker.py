"""Celery worker: rates, receipts, webhooks and housekeeping tasks, with a beat schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from celery import Celery, Task, chain, chord, group, shared_task
from celery.result import AsyncResult
from celery.schedules import crontab
from celery.signals import task_failure, worker_ready
from celery.utils.log import get_task_logger
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from . import data_sync
from .chat_bot import post_alert
from .data_sync import customer_profile, redis_client, sync_collection
from .payments_webhooks import Payment, SessionLocal, receipt_for, send_receipt

logger = get_task_logger(__name__)

RATES_URL = os.environ.get("RATES_URL", "https://rates.example.com/latest")
WEBHOOK_TIMEOUT = 15

app = Celery("worker", broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/1"))
app.conf.update(
    result_backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/2"),
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    timezone="UTC",
)

http = requests.Session()
http.headers.update({"User-Agent": "payments-worker/1.4"})


# --- helpers -------------------------------------------------------------------------------


def rates_url(base: str) -> str:  # expect: plain
    return f"{RATES_URL}?base={base.upper()}"


def parse_rates(payload: dict[str, Any]) -> dict[str, Decimal]:  # expect: plain
    return {code: Decimal(str(rate)) for code, rate in payload.get("rates", {}).items()}


def retry_countdown(retries: int) -> int:  # expect: plain
    return min(3600, 10 * 2**retries)


def sign_payload(body: bytes, secret: str, timestamp: int) -> str:  # expect: plain
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def build_webhook_request(url: str, body: bytes, secret: str, timestamp: int):  # expect: plain
    headers = {
        "Content-Type": "application/json",
        "X-Signature": f"t={timestamp},v1={sign_payload(body, secret, timestamp)}",
    }
    return requests.Request("POST", url, data=body, headers=headers).prepare()


def route_task(name, args, kwargs, options, task=None, **kw):  # expect: plain
    if name.startswith("worker.deliver_"):
        return {"queue": "webhooks"}
    if name in {"worker.email_receipt", "worker.notify_payment"}:
        return {"queue": "email"}
    return {"queue": "default"}


app.conf.task_routes = (route_task,)


# --- exchange rates ------------------------------------------------------------------------------


@app.task(name="worker.fetch_exchange_rates", bind=True, max_retries=5, default_retry_delay=30)
def fetch_exchange_rates(self, base: str = "USD") -> dict[str, str]:  # expect: step
    try:
        response = http.get(rates_url(base), timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise self.retry(exc=exc) from exc
    return {code: str(rate) for code, rate in parse_rates(response.json()).items()}


@app.task(name="worker.store_rates")
def store_rates(rates: dict[str, str], base: str = "USD") -> int:  # expect: step
    rows = [{"base": base, "code": code, "rate": rate} for code, rate in rates.items()]
    with SessionLocal.begin() as session:
        session.execute(text("DELETE FROM rates WHERE base = :base"), {"base": base})
        if rows:
            session.execute(
                text("INSERT INTO rates (base, code, rate) VALUES (:base, :code, :rate)"), rows
            )
    return len(rows)


def rates_pipeline(base: str):  # expect: plain
    return chain(fetch_exchange_rates.s(base), store_rates.s(base))


@app.task(name="worker.refresh_exchange_rates")
def refresh_exchange_rates(base: str = "USD") -> str:  # expect: step
    return rates_pipeline(base).apply_async().id


@app.task(name="worker.refresh_rates_now")
def refresh_rates_now(base: str = "USD") -> int:  # expect: workflow
    return store_rates(fetch_exchange_rates(base), base)


# --- receipts ------------------------------------------------------------------------------


@shared_task(
    name="worker.email_receipt", autoretry_for=(smtplib.SMTPException,), retry_backoff=True
)
def email_receipt(payment_id: int) -> bool:  # expect: step
    with SessionLocal() as session:
        payment = session.get(Payment, payment_id)
    if payment is None:
        logger.warning("payment %s vanished before its receipt", payment_id)
        return False
    send_receipt(receipt_for(payment))
    return True


@shared_task(name="worker.notify_payment")
def notify_payment(payment_id: int, channel: str = "#payments") -> None:  # expect: step
    email_receipt.delay(payment_id)
    post_alert(channel, f"payment {payment_id} settled")


def receipts_group(payment_ids: list[int]):  # expect: plain
    return group(email_receipt.s(pid).set(queue="email") for pid in payment_ids)


def enqueue_receipts(payment_ids: list[int]) -> str:  # expect: step
    return receipts_group(payment_ids).apply_async().id


def wait_for(task_id: str, timeout: float = 30.0) -> Any:  # expect: step
    return AsyncResult(task_id, app=app).get(timeout=timeout, propagate=False)


# --- database housekeeping -----------------------------------------------------------------------


@app.task(name="worker.count_rows")
def count_rows(table: str) -> int:  # expect: step
    with SessionLocal() as session:
        return session.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()


@app.task(name="worker.summarise_counts")
def summarise_counts(counts: list[int]) -> int:  # expect: plain
    return sum(counts)


def audit_tables(tables: list[str]) -> str:  # expect: step
    result = chord(count_rows.s(table) for table in tables)(summarise_counts.s())
    return result.id


def stale_payments(session: Session, older_than: datetime) -> list[Payment]:  # expect: step
    query = select(Payment).where(Payment.status == "pending", Payment.created_at < older_than)
    return list(session.scalars(query))


@app.task(name="worker.expire_stale_payments")
def expire_stale_payments(hours: int = 24) -> int:  # expect: step
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    with SessionLocal.begin() as session:
        stale = stale_payments(session, cutoff)
        for payment in stale:
            payment.status = "expired"
    return len(stale)


class DatabaseTask(Task):
    """A task base that opens one session per worker process, lazily."""

    _session: Session | None = None

    @property
    def session(self) -> Session:  # expect: plain
        if self._session is None:
            self._session = SessionLocal()
        return self._session

    def after_return(self, status, retval, task_id, args, kwargs, einfo):  # expect: plain
        if self._session is not None:
            self._session.close()
            self._session = None


@app.task(name="worker.archive_payment", base=DatabaseTask, bind=True)
def archive_payment(self, payment_id: int) -> bool:  # expect: step
    payment = self.session.get(Payment, payment_id)
    if payment is None or payment.status not in {"succeeded", "refunded"}:
        return False
    payment.status = "archived"
    self.session.commit()
    return True


# --- outgoing webhooks ---------------------------------------------------------------------------


@app.task(name="worker.deliver_webhook", bind=True, max_retries=8)
def deliver_webhook(self, url: str, payload: dict[str, Any], secret: str) -> int:  # expect: step
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    prepared = build_webhook_request(url, body, secret, int(time.time()))
    try:
        response = http.send(prepared, timeout=WEBHOOK_TIMEOUT)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    if response.status_code >= 500:
        raise self.retry(countdown=retry_countdown(self.request.retries))
    return response.status_code


def fan_out_webhooks(event: dict[str, Any], endpoints: list[dict[str, str]]):  # expect: step
    return [
        deliver_webhook.apply_async((e["url"], event, e["secret"]), queue="webhooks").id
        for e in endpoints
    ]


def delivery_signature(endpoint: dict[str, str], event: dict[str, Any]):  # expect: plain
    return deliver_webhook.s(endpoint["url"], event, endpoint["secret"]).set(countdown=5)


# --- sync, cache and heartbeat -------------------------------------------------------------------


@app.task(name="worker.sync_collection")
def sync_collection_task(name: str, since_iso: str, bucket: str) -> int:  # expect: workflow
    return sync_collection(name, datetime.fromisoformat(since_iso), bucket)


def schedule_collection_syncs(names: list[str], bucket: str) -> list[str]:  # expect: step
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return [sync_collection_task.delay(name, since, bucket).id for name in names]


@app.task(name="worker.warm_customer_cache")
def warm_customer_cache(customer_ids: list[str]) -> int:  # expect: workflow
    for customer_id in customer_ids:
        customer_profile(customer_id)
    return len(customer_ids)


@app.task(name="worker.record_heartbeat")
def record_heartbeat(worker: str) -> None:  # expect: step
    redis_client.set(f"heartbeat:{worker}", int(time.time()), ex=120)


@app.task(name="worker.purge_heartbeats", ignore_result=True)
def purge_heartbeats(prefix: str = "heartbeat:") -> int:  # expect: step
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        redis_client.delete(*keys)
    return len(keys)


@worker_ready.connect
def announce(sender=None, **kwargs):  # expect: step
    data_sync.redis_client.sadd("workers", sender.hostname)


@task_failure.connect
def on_task_failure(sender=None, task_id=None, exception=None, **kwargs):  # expect: workflow
    post_alert("#ops", f"task {sender.name} [{task_id}] failed: {exception!r}")


# --- beat ----------------------------------------------------------------------------------------


def beat_schedule(rates_minute: int = 5) -> dict[str, dict[str, Any]]:  # expect: plain
    return {
        "refresh-rates": {
            "task": "worker.refresh_exchange_rates",
            "schedule": crontab(minute=rates_minute),
        },
        "expire-stale": {
            "task": "worker.expire_stale_payments",
            "schedule": crontab(hour=3, minute=30),
            "kwargs": {"hours": 48},
        },
        "purge-heartbeats": {"task": "worker.purge_heartbeats", "schedule": 3600.0},
    }


app.conf.beat_schedule = beat_schedule()


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):  # expect: plain
    sender.add_periodic_task(60.0, record_heartbeat.s("beat"), name="beat heartbeat")
    sender.add_periodic_task(
        crontab(hour=2, minute=0, day_of_week="mon"), warm_customer_cache.s([]), name="warm"
    )
