"""Messaging: Kafka producers and consumers, RabbitMQ (pika), Redis, Celery, SMTP.

Publishing, polling, acknowledging and queueing a Celery task (``.delay``,
``.apply_async``) talk to a broker; building properties, signatures and
messages does not.
"""

from __future__ import annotations

import json
import smtplib
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pika
import redis
from celery import Celery, shared_task
from confluent_kafka import Consumer, Producer
from kafka import KafkaProducer
from pika.adapters.blocking_connection import BlockingChannel

from .web_clients import fetch_profile

SENDER = "shop@example.com"
SMTP_HOST = "smtp.example.com"
app = Celery("jobs", broker="redis://localhost:6379/0")
r = redis.Redis(host="localhost", port=6379, decode_responses=True)
producer = Producer({"bootstrap.servers": "kafka:9092", "enable.idempotence": True})


# --- Kafka --------------------------------------------------------------------


def publish_order(order: dict[str, Any]) -> None:  # expect: step
    producer.produce("orders", key=str(order["id"]), value=json.dumps(order).encode())
    producer.poll(0)


def flush_orders(timeout: float = 10.0) -> int:  # expect: step
    return producer.flush(timeout)


def send_metric(kafka: KafkaProducer, name: str, value: float) -> None:  # expect: step
    kafka.send("metrics", {"name": name, "value": value})


def poll_once(consumer: Consumer) -> dict[str, Any] | None:  # expect: step
    msg = consumer.poll(1.0)
    if msg is None or msg.error():
        return None
    return json.loads(msg.value())


def commit_offsets(consumer: Consumer) -> None:  # expect: step
    consumer.commit(asynchronous=False)


def decode_message(raw: bytes) -> dict[str, Any]:  # expect: plain
    return json.loads(raw.decode("utf-8"))


def consumer_config(group: str) -> dict[str, Any]:  # expect: plain
    return {"bootstrap.servers": "kafka:9092", "group.id": group, "enable.auto.commit": False}


def drain(consumer: Consumer, limit: int = 100) -> list[dict[str, Any]]:  # expect: workflow
    seen: list[dict[str, Any]] = []
    while len(seen) < limit and (msg := poll_once(consumer)) is not None:
        seen.append(msg)
    commit_offsets(consumer)
    return seen


# --- RabbitMQ (pika) -----------------------------------------------------------------


def open_channel(url: str) -> BlockingChannel:  # expect: step
    connection = pika.BlockingConnection(pika.URLParameters(url))
    return connection.channel()


def task_properties(correlation_id: str) -> pika.BasicProperties:  # expect: plain
    return pika.BasicProperties(
        correlation_id=correlation_id,
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
    )


def publish_task(channel, queue: str, task: dict[str, Any]) -> None:  # expect: step
    channel.basic_publish(
        exchange="", routing_key=queue, body=json.dumps(task), properties=task_properties(queue)
    )


def declare_queues(channel: BlockingChannel, names: list[str]) -> None:  # expect: step
    for name in names:
        channel.queue_declare(queue=name, durable=True)


def enqueue_all(url: str, queue: str, tasks: list[dict[str, Any]]) -> int:  # expect: workflow
    channel = open_channel(url)
    declare_queues(channel, [queue])
    for task in tasks:
        publish_task(channel, queue, task)
    return len(tasks)


class EventBus:
    def __init__(self, channel: BlockingChannel, exchange: str) -> None:  # expect: plain
        self.channel = channel
        self.exchange = exchange

    def routing_key(self, kind: str) -> str:  # expect: plain
        return f"{self.exchange}.{kind.replace('_', '.')}"

    def emit(self, kind: str, data: dict[str, Any]) -> None:  # expect: step
        body = json.dumps(data)
        self.channel.basic_publish(
            exchange=self.exchange, routing_key=self.routing_key(kind), body=body
        )

    def ack(self, delivery_tag: int) -> None:  # expect: step
        self.channel.basic_ack(delivery_tag=delivery_tag)

    def handle(self, delivery_tag: int, body: bytes) -> None:  # expect: workflow
        event = decode_message(body)
        self.emit(f"{event['kind']}_seen", {"id": event["id"]})
        self.ack(delivery_tag)


# --- Redis ------------------------------------------------------------------------


def publish_status(job_id: str, status: str) -> int:  # expect: step
    return r.publish(f"jobs:{job_id}", json.dumps({"status": status}))


def subscribe(channel_name: str):  # expect: step
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_name)
    return pubsub


def next_status(pubsub) -> dict[str, Any] | None:  # expect: step
    message = pubsub.get_message(timeout=1.0)
    return json.loads(message["data"]) if message else None


def cache_get(key: str) -> Any:  # expect: step
    raw = r.get(f"cache:{key}")
    return json.loads(raw) if raw else None


def cache_set(key: str, value: Any, ttl: int = 300) -> None:  # expect: step
    r.setex(f"cache:{key}", ttl, json.dumps(value))


def rate_limited(client: redis.Redis, user: str, limit: int) -> bool:  # expect: step
    pipe = client.pipeline()
    pipe.incr(f"rl:{user}")
    pipe.expire(f"rl:{user}", 60)
    count, _ = pipe.execute()
    return count > limit


def cache_key(*parts: str) -> str:  # expect: plain
    return ":".join(p.replace(":", "_") for p in parts)


def cached_profile(user_id: str) -> dict[str, Any]:  # expect: workflow
    key = cache_key("profile", user_id)
    hit = cache_get(key)
    if hit is None:
        hit = fetch_profile(None, user_id)
        cache_set(key, hit)
    return hit


def wait_for_done(job_id: str, polls: int = 30) -> bool:  # expect: workflow
    pubsub = subscribe(f"jobs:{job_id}")
    for _ in range(polls):
        status = next_status(pubsub)
        if status and status["status"] == "done":
            return True
    return False


# --- SMTP ---------------------------------------------------------------------------


def build_message(to: str, subject: str, body: str) -> EmailMessage:  # expect: plain
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, to, subject
    msg.set_content(body)
    return msg


def send_email(to: str, subject: str, body: str, host=SMTP_HOST, ssl=True) -> None:  # expect: step
    msg = build_message(to, subject, body)
    conn = smtplib.SMTP_SSL(host) if ssl else smtplib.SMTP(host)
    try:
        conn.sendmail(SENDER, [to], msg.as_string())
    finally:
        conn.quit()


def send_message(conn: smtplib.SMTP, msg: EmailMessage) -> None:  # expect: step
    conn.send_message(msg)


def send_batch(host: str, messages: list[EmailMessage]) -> int:  # expect: step
    with smtplib.SMTP(host, 587) as conn:
        conn.starttls()
        for msg in messages:
            send_message(conn, msg)
    return len(messages)


# --- Celery --------------------------------------------------------------------------


def render_receipt(order_id: int, total: str) -> str:  # expect: plain
    return f"Thank you for order {order_id}. Total paid: {total}."


@shared_task
def send_receipt(order_id: int, email: str, total: str) -> None:  # expect: workflow
    send_email(email, f"Receipt for order {order_id}", render_receipt(order_id, total))


@app.task(bind=True, max_retries=5)
def sync_order(self, order: dict[str, Any]) -> None:  # expect: workflow
    publish_order(order)
    publish_status(str(order["id"]), "synced")


def after_checkout(order: dict[str, Any]) -> None:  # expect: step
    send_receipt.delay(order["id"], order["email"], order["total"])


def schedule_reminder(order_id: int, email: str, eta: datetime) -> str:  # expect: step
    result = send_receipt.apply_async(args=(order_id, email, ""), eta=eta, queue="mail")
    return result.id


def receipt_signature(order_id: int, email: str, total: str):  # expect: plain
    return send_receipt.s(order_id, email, total).set(queue="mail")


# --- workflows -----------------------------------------------------------------------


def notify_shipped(order: dict[str, Any]) -> None:  # expect: workflow
    publish_status(str(order["job"]), "shipped")
    send_email(order["email"], "Your order shipped", f"Order {order['id']} is on its way.")
    publish_order({**order, "status": "shipped"})


def checkout_done(order: dict[str, Any]) -> None:  # expect: workflow
    publish_order(order)
    after_checkout(order)
    flush_orders()
