"""Notification fan-out worker: SMS through Twilio, email through SendGrid or SMTP, push
through an HTTP gateway; pure templating, a token-bucket rate limiter, a thread pool.
"""

from __future__ import annotations

import asyncio
import os
import random
import smtplib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from queue import Queue
from string import Template
from typing import Any

import httpx
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client as TwilioClient

SMS_FROM = os.environ.get("SMS_FROM", "+15550100")
MAIL_FROM = os.environ.get("MAIL_FROM", "ops@example.com")

twilio_client = TwilioClient(os.environ.get("TWILIO_SID", ""), os.environ.get("TWILIO_TOKEN", ""))
push_http = httpx.Client(base_url="https://push.example.internal", timeout=5.0)

TEMPLATES = {
    "low_stock": Template("Stock for $sku is down to $quantity units."),
    "job_done": Template("Job $job finished: $count files processed."),
    "page": Template("[$severity] $summary (ticket $ticket)"),
    "digest": Template("$count events since your last digest:\n$lines"),
}


# --- pure: templating, payloads, plans ----------------------------------------------------


def render(kind: str, **context: Any) -> str:  # expect: plain
    return TEMPLATES[kind].substitute(context)


def render_subject(kind: str, context: dict[str, Any]) -> str:  # expect: plain
    title = kind.replace("_", " ").title()
    return f"[{context.get('env', 'prod')}] {title}"


def normalise_phone(raw: str, default_country: str = "1") -> str:  # expect: plain
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.strip().startswith("+"):
        return f"+{digits}"
    if len(digits) == 10:
        return f"+{default_country}{digits}"
    return f"+{digits}"


def build_email(sender: str, to: str, subject: str, body: str) -> EmailMessage:  # expect: plain
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def build_sendgrid_mail(to: str, subject: str, body: str) -> Mail:  # expect: plain
    return Mail(from_email=MAIL_FROM, to_emails=to, subject=subject, plain_text_content=body)


def push_payload(  # expect: plain
    token: str, title: str, body: str, data: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"token": token, "notification": {"title": title, "body": body}, "data": data or {}}


def fetch_recipients(notification: dict[str, Any]) -> list[str]:  # expect: plain
    recipients = notification.get("to") or []
    return [recipients] if isinstance(recipients, str) else list(recipients)


def send_plan(recipients: list[str], channels: list[str]) -> list[tuple[str, str]]:  # expect: plain
    return [(channel, who) for who in recipients for channel in channels]


def dedupe(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:  # expect: plain
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for n in notifications:
        key = (n["channel"], str(n.get("to")), n["kind"])
        if key not in seen:
            seen.add(key)
            unique.append(n)
    return unique


def digest_body(events: list[dict[str, Any]]) -> str:  # expect: plain
    lines = "\n".join(f"- {e['kind']}: {e.get('summary', '')}" for e in events)
    return render("digest", count=len(events), lines=lines)


def backoff_schedule(attempts: int, base: float = 0.5) -> list[float]:  # expect: plain
    return [base * 2**i for i in range(attempts)]


def jittered_delay(attempt: int, base: float = 0.5) -> float:  # expect: step
    return base * 2**attempt * random.uniform(0.5, 1.5)


def stamp(notification: dict[str, Any]) -> dict[str, Any]:  # expect: step
    return {**notification, "id": str(uuid.uuid4()), "queued_at": time.time()}


# --- rate limiting ---------------------------------------------------------------------------


class TokenBucket:
    def __init__(  # expect: plain
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._updated: float | None = None
        self._clock = clock

    def _refill(self, now: float) -> None:  # expect: plain
        if self._updated is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, tokens: float, now: float) -> float:  # expect: plain
        self._refill(now)
        missing = tokens - self._tokens
        return max(0.0, missing / self.rate)

    def try_acquire(self, tokens: float = 1.0) -> bool:  # expect: step
        self._refill(self._clock())
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False

    def acquire(self, tokens: float = 1.0) -> None:  # expect: step
        while True:
            now = self._clock()
            self._refill(now)
            if self._tokens >= tokens:
                self._tokens -= tokens
                return
            time.sleep(self.wait_time(tokens, now))


# --- senders ---------------------------------------------------------------------------------


def send_sms(to: str, body: str, client: TwilioClient | None = None) -> str:  # expect: step
    message = (client or twilio_client).messages.create(to=to, from_=SMS_FROM, body=body)
    return message.sid


def send_sms_with_retry(to: str, body: str, attempts: int = 3) -> str:  # expect: step
    for attempt in range(attempts):
        try:
            return twilio_client.messages.create(to=to, from_=SMS_FROM, body=body).sid
        except TwilioRestException as exc:
            if exc.status < 500 or attempt == attempts - 1:
                raise
            time.sleep(backoff_schedule(attempts)[attempt])
    raise RuntimeError("unreachable")


def send_email_smtp(  # expect: step
    msg: EmailMessage, host: str, port: int = 587, use_tls: bool = True
) -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        if use_tls:
            smtp.starttls()
        smtp.send_message(msg)


def send_email_sendgrid(sg, to, subject, body):  # expect: step
    response = sg.send(build_sendgrid_mail(to, subject, body))
    return response.status_code


def push_notification(  # expect: step
    token: str, title: str, body: str, http: httpx.Client = push_http
) -> bool:
    response = http.post("/v1/send", json=push_payload(token, title, body))
    return response.status_code == 202


async def push_many(tokens: list[str], title: str, body: str) -> list[int]:  # expect: step
    async with httpx.AsyncClient(base_url="https://push.example.internal") as client:
        responses = await asyncio.gather(
            *(client.post("/v1/send", json=push_payload(t, title, body)) for t in tokens)
        )
    return [r.status_code for r in responses]


async def push_in_chunks(tokens: list[str], title: str, body: str) -> int:  # expect: workflow
    chunks = [tokens[i : i + 100] for i in range(0, len(tokens), 100)]
    results = await asyncio.gather(*(push_many(chunk, title, body) for chunk in chunks))
    return sum(code == 202 for codes in results for code in codes)


class ChannelSender:
    """Holds one client per channel, built from settings; nothing is sent on construction."""

    def __init__(self, settings: dict[str, str]) -> None:  # expect: plain
        self.sms_client = TwilioClient(settings["twilio_sid"], settings["twilio_token"])
        self.sg = SendGridAPIClient(settings["sendgrid_key"])
        self.http = httpx.Client(base_url=settings["push_url"], timeout=5.0)
        self.bucket = TokenBucket(rate=float(settings.get("sms_per_second", "1")), capacity=5)

    def sms(self, to: str, body: str) -> str:  # expect: step
        self.bucket.acquire()
        return self.sms_client.messages.create(to=to, from_=SMS_FROM, body=body).sid

    def email(self, to: str, subject: str, body: str) -> int:  # expect: workflow
        return send_email_sendgrid(self.sg, to, subject, body)

    def push(self, token: str, title: str, body: str) -> bool:  # expect: workflow
        return push_notification(token, title, body, http=self.http)

    def close(self) -> None:  # expect: plain
        self.http.close()


class Outbox:
    """Messages collected in memory during a request and flushed afterwards."""

    def __init__(self) -> None:  # expect: plain
        self._pending: list[dict[str, str]] = []

    def send(self, to: str, body: str) -> None:  # expect: plain
        self._pending.append({"to": to, "body": body})

    def __len__(self) -> int:  # expect: plain
        return len(self._pending)

    def flush(self, sender: ChannelSender) -> int:  # expect: workflow
        send = sender.sms
        for message in self._pending:
            send(message["to"], message["body"])
        count = len(self._pending)
        self._pending.clear()
        return count


# --- dispatch by channel ---------------------------------------------------------------------


def deliver_sms(n: dict[str, Any]) -> str:  # expect: workflow
    return send_sms(normalise_phone(n["to"]), render(n["kind"], **n["context"]))


def deliver_email(n: dict[str, Any]) -> str:  # expect: workflow
    subject = render_subject(n["kind"], n["context"])
    msg = build_email(MAIL_FROM, n["to"], subject, render(n["kind"], **n["context"]))
    send_email_smtp(msg, os.environ.get("SMTP_HOST", "localhost"))
    return msg["To"]


def deliver_push(n: dict[str, Any]) -> bool:  # expect: workflow
    title = render_subject(n["kind"], n["context"])
    return push_notification(n["to"], title, render(n["kind"], **n["context"]))


HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "sms": deliver_sms,
    "email": deliver_email,
    "push": deliver_push,
}


def handler_table() -> dict[str, Callable[[dict[str, Any]], Any]]:  # expect: plain
    return dict(HANDLERS)


def deliver(notification: dict[str, Any]) -> Any:  # expect: workflow
    return HANDLERS[notification["channel"]](notification)


def fan_out(notifications: list[dict[str, Any]], workers: int = 8) -> list[Any]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(deliver, n) for n in dedupe(notifications)]
        return [future.result() for future in futures]


def push_all(tokens: list[str], title: str, body: str) -> list[bool]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda token: push_notification(token, title, body), tokens))


def drain_queue(queue: Queue) -> int:  # expect: workflow
    delivered = 0
    while True:
        notification = queue.get()
        if notification is None:
            queue.task_done()
            return delivered
        deliver(notification)
        delivered += 1
        queue.task_done()


def start_background_sender(queue: Queue) -> threading.Thread:  # expect: workflow
    thread = threading.Thread(target=drain_queue, args=(queue,), daemon=True)
    thread.start()
    return thread


def enqueue_low_stock_alert(sku: str, quantity: int) -> str:  # expect: workflow
    phone = os.environ.get("OPS_PHONE", "+15550199")
    return send_sms(phone, render("low_stock", sku=sku, quantity=quantity))


def notify_job_done(job: str, count: int, emails: list[str]) -> int:  # expect: workflow
    sender = ChannelSender(
        {
            "twilio_sid": os.environ.get("TWILIO_SID", ""),
            "twilio_token": os.environ.get("TWILIO_TOKEN", ""),
            "sendgrid_key": os.environ.get("SENDGRID_KEY", ""),
            "push_url": "https://push.example.internal",
        }
    )
    body = render("job_done", job=job, count=count)
    try:
        return sum(sender.email(to, f"Job {job} done", body) == 202 for to in emails)
    finally:
        sender.close()
