"""Order events from Kafka into Postgres and Elasticsearch, with status fan-out."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import psycopg2
import yaml
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import Elasticsearch, helpers
from psycopg2 import pool as pg_pool
from psycopg2.extras import execute_values
from pydantic import BaseModel, Field, ValidationError, field_validator
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

STATUS_TOPIC = "order-status"
HEARTBEAT_TOPIC = "pipeline-heartbeats"
EVENT_NAMESPACE = uuid.UUID("5f0c6a0e-8f0d-4d8e-9a57-0b7b0e3f6c21")
STATUS_BY_KIND = {"order_created": "open", "order_paid": "paid", "order_cancelled": "cancelled"}
INDEX_MAPPINGS = {
    "properties": {
        "order_id": {"type": "keyword"},
        "customer_id": {"type": "keyword"},
        "status": {"type": "keyword"},
        "amount": {"type": "scaled_float", "scaling_factor": 100},
        "currency": {"type": "keyword"},
        "updated_at": {"type": "date"},
    }
}
INSERT_EVENTS = """
    INSERT INTO order_events (event_id, order_id, customer_id, kind, amount_cents, currency,
                              occurred_at)
    VALUES %s
    ON CONFLICT (event_id) DO NOTHING
"""


class OrderEvent(BaseModel):
    event_id: str
    kind: Literal["order_created", "order_paid", "order_cancelled"]
    order_id: str
    customer_id: str
    amount_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    occurred_at: datetime

    @field_validator("currency")
    @classmethod
    def upper_currency(cls, value: str) -> str:  # expect: plain
        return value.upper()


@dataclass(frozen=True)
class OrderDocument:
    order_id: str
    customer_id: str
    status: str
    amount: str
    currency: str
    updated_at: str


# -- decoding and transforms ---------------------------------------------------


def safe_decode(raw: bytes | None) -> tuple[OrderEvent | None, str | None]:  # expect: plain
    if not raw:
        return None, "empty message"
    try:
        return OrderEvent.model_validate(json.loads(raw)), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
    except ValidationError as exc:
        return None, f"invalid event: {exc.error_count()} errors"


def to_document(event: OrderEvent) -> OrderDocument:  # expect: plain
    return OrderDocument(
        order_id=event.order_id,
        customer_id=event.customer_id,
        status=STATUS_BY_KIND[event.kind],
        amount=f"{event.amount_cents / 100:.2f}",
        currency=event.currency,
        updated_at=event.occurred_at.isoformat(),
    )


def to_row(event: OrderEvent) -> tuple[Any, ...]:  # expect: plain
    return (
        event.event_id,
        event.order_id,
        event.customer_id,
        event.kind,
        event.amount_cents,
        event.currency,
        event.occurred_at,
    )


def event_id_for(order_id: str, kind: str) -> str:  # expect: plain
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{order_id}:{kind}"))


def new_trace_id() -> str:  # expect: step
    return uuid.uuid4().hex


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:  # expect: plain
    return min(cap, base * 2**attempt)


def sleep_with_jitter(attempt: int) -> None:  # expect: step
    time.sleep(backoff_delay(attempt) * random.uniform(0.5, 1.0))


def on_delivery(err: KafkaError | None, msg: Message) -> None:  # expect: plain
    if err is not None:
        log.error("delivery to %s [%s] failed: %s", msg.topic(), msg.partition(), err)


def publish_heartbeat(producer: Producer, worker: str) -> None:  # expect: step
    beat = {"worker": worker, "pid": os.getpid(), "at": time.time()}
    producer.produce(HEARTBEAT_TOPIC, key=worker.encode(), value=json.dumps(beat).encode())
    producer.poll(0)


# -- in-memory metrics ---------------------------------------------------------


class Metrics:
    def __init__(self) -> None:  # expect: plain
        self._lock = threading.Lock()
        self._counters: dict[str, int] = defaultdict(int)

    def inc(self, name: str, amount: int = 1) -> None:  # expect: plain
        with self._lock:
            self._counters[name] += amount

    def snapshot(self) -> dict[str, int]:  # expect: plain
        with self._lock:
            return dict(self._counters)

    def render(self) -> str:  # expect: plain
        lines = []
        for name, value in sorted(self.snapshot().items()):
            lines.append(f"# TYPE pipeline_{name}_total counter")
            lines.append(f"pipeline_{name}_total {value}")
        return "\n".join(lines) + "\n"


def write_metrics_file(metrics: Metrics, path: Path) -> None:  # expect: step
    tmp = path.with_suffix(".prom.tmp")
    tmp.write_text(metrics.render(), encoding="utf-8")
    os.replace(tmp, path)


# -- sinks ---------------------------------------------------------------------


class SearchIndex:
    def __init__(self, es: Elasticsearch, index: str) -> None:  # expect: plain
        self.es = es
        self.index = index

    @staticmethod
    def customer_query(customer_id: str) -> dict[str, Any]:  # expect: plain
        return {"bool": {"filter": [{"term": {"customer_id": customer_id}}]}}

    def ensure_index(self) -> None:  # expect: step
        if not self.es.indices.exists(index=self.index):
            self.es.indices.create(index=self.index, mappings=INDEX_MAPPINGS)

    def ping(self) -> bool:  # expect: step
        return bool(self.es.ping())

    def bulk_upsert(self, docs: list[OrderDocument]) -> int:  # expect: step
        actions = [
            {"_op_type": "index", "_index": self.index, "_id": d.order_id, "_source": asdict(d)}
            for d in docs
        ]
        indexed, _ = helpers.bulk(self.es, actions, raise_on_error=True)
        return indexed

    def delete_order(self, order_id: str) -> None:  # expect: step
        self.es.delete(index=self.index, id=order_id)

    def search_customer(self, customer_id: str, size: int = 20) -> list[dict]:  # expect: step
        response = self.es.search(
            index=self.index,
            query=self.customer_query(customer_id),
            sort=[{"updated_at": "desc"}],
            size=size,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]


@retry(
    stop=stop_after_attempt(5),
    wait=wait_exponential(multiplier=0.5, max=10),
    retry=retry_if_exception_type(ESConnectionError),
    reraise=True,
)
def index_document(es: Elasticsearch, index: str, doc: OrderDocument) -> None:  # expect: step
    es.index(index=index, id=doc.order_id, document=asdict(doc))


class OrderStore:
    def __init__(self, connections: pg_pool.ThreadedConnectionPool) -> None:  # expect: plain
        self.connections = connections

    def record(self, events: list[OrderEvent]) -> int:  # expect: step
        conn = self.connections.getconn()
        try:
            with conn.cursor() as cur:
                execute_values(cur, INSERT_EVENTS, [to_row(e) for e in events])
                inserted = cur.rowcount
            conn.commit()
        finally:
            self.connections.putconn(conn)
        return inserted

    def last_status(self, order_id: str) -> str | None:  # expect: step
        conn = self.connections.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT kind FROM order_events WHERE order_id = %s "
                    "ORDER BY occurred_at DESC LIMIT 1",
                    (order_id,),
                )
                row = cur.fetchone()
        finally:
            self.connections.putconn(conn)
        return STATUS_BY_KIND[row[0]] if row else None

    def totals_by_currency(self, since: datetime) -> dict[str, int]:  # expect: step
        conn = self.connections.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT currency, sum(amount_cents) FROM order_events "
                    "WHERE kind = 'order_paid' AND occurred_at >= %s GROUP BY currency",
                    (since,),
                )
                return dict(cur.fetchall())
        finally:
            self.connections.putconn(conn)

    def purge_before(self, cutoff: datetime) -> int:  # expect: step
        conn = self.connections.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute("DELETE FROM order_events WHERE occurred_at < %s", (cutoff,))
                deleted = cur.rowcount
            conn.commit()
            return deleted
        finally:
            self.connections.putconn(conn)

    def ping(self) -> bool:  # expect: step
        conn = self.connections.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        finally:
            self.connections.putconn(conn)


class DeadLetterFile:
    def __init__(self, path: Path) -> None:  # expect: plain
        self.path = path
        self._lock = threading.Lock()

    def write(  # expect: step
        self, raw: bytes | None, reason: str, topic: str, offset: int
    ) -> None:
        record = {
            "raw": (raw or b"").decode("utf-8", "replace"),
            "reason": reason,
            "topic": topic,
            "offset": offset,
            "at": datetime.now(timezone.utc).isoformat(),
        }
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def rotate_dead_letters(path: Path) -> Path | None:  # expect: step
    if not path.exists() or path.stat().st_size == 0:
        return None
    rotated = path.with_name(f"{path.stem}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.jsonl")
    path.rename(rotated)
    return rotated


def read_dead_letters(path: Path) -> list[dict[str, Any]]:  # expect: step
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# -- the consumer loop ---------------------------------------------------------


class OrderPipeline:
    def __init__(  # expect: plain
        self,
        consumer: Consumer,
        producer: Producer,
        store: OrderStore,
        index: SearchIndex,
        dead_letters: DeadLetterFile,
        batch_size: int = 200,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.store = store
        self.index = index
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.metrics = Metrics()
        self._stop = threading.Event()

    def stop(self) -> None:  # expect: plain
        self._stop.set()

    def poll_batch(self, timeout: float = 1.0) -> list[Message]:  # expect: step
        return self.consumer.consume(num_messages=self.batch_size, timeout=timeout)

    def publish_status(self, event: OrderEvent) -> None:  # expect: step
        body = {"order_id": event.order_id, "status": STATUS_BY_KIND[event.kind]}
        self.producer.produce(
            STATUS_TOPIC,
            key=event.order_id.encode(),
            value=json.dumps(body, separators=(",", ":")).encode(),
            headers={"trace-id": new_trace_id()},
            on_delivery=on_delivery,
        )
        self.producer.poll(0)

    def commit(self, message: Message) -> None:  # expect: step
        self.consumer.commit(message=message, asynchronous=False)

    def split(  # expect: plain
        self, messages: list[Message]
    ) -> tuple[list[OrderEvent], list[tuple[Message, str]]]:
        events: list[OrderEvent] = []
        rejected: list[tuple[Message, str]] = []
        for message in messages:
            if message.error() is not None:
                self.metrics.inc("kafka_errors")
                continue
            event, error = safe_decode(message.value())
            if event is None:
                rejected.append((message, error or "unknown"))
            else:
                events.append(event)
        return events, rejected

    def handle_rejected(self, rejected: list[tuple[Message, str]]) -> None:  # expect: workflow
        for message, reason in rejected:
            self.dead_letters.write(message.value(), reason, message.topic(), message.offset())
        self.metrics.inc("dead_letters", len(rejected))

    def fan_out(self, events: list[OrderEvent]) -> None:  # expect: workflow
        self.index.bulk_upsert([to_document(event) for event in events])
        for event in events:
            self.publish_status(event)

    def handle_batch(self, messages: list[Message]) -> int:  # expect: workflow
        events, rejected = self.split(messages)
        if rejected:
            self.handle_rejected(rejected)
        if events:
            self.store.record(events)
            self.fan_out(events)
        if messages:
            self.commit(messages[-1])
        self.metrics.inc("processed", len(events))
        return len(events)

    def run(self) -> None:  # expect: workflow
        failures = 0
        while not self._stop.is_set():
            messages = self.poll_batch()
            try:
                self.handle_batch(messages)
                failures = 0
            except (KafkaException, psycopg2.OperationalError):
                failures += 1
                log.warning("batch failed (%d in a row), backing off", failures, exc_info=True)
                sleep_with_jitter(failures)
        self.shutdown()

    def shutdown(self) -> None:  # expect: step
        remaining = self.producer.flush(10)
        if remaining:
            log.error("%d status messages were not delivered", remaining)
        self.consumer.close()


def consumer_lag(consumer: Consumer, topic: str, partitions: list[int]) -> dict:  # expect: step
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
    lag = {}
    for tp in committed:
        low, high = consumer.get_watermark_offsets(tp, timeout=5)
        lag[tp.partition] = high - max(tp.offset, low)
    return lag


def health_report(  # expect: workflow
    pipeline: OrderPipeline, topic: str, partitions: list[int]
) -> dict[str, Any]:
    return {
        "postgres": pipeline.store.ping(),
        "elasticsearch": pipeline.index.ping(),
        "lag": consumer_lag(pipeline.consumer, topic, partitions),
        "counters": pipeline.metrics.snapshot(),
    }


def customer_timeline(  # expect: workflow
    index: SearchIndex, store: OrderStore, customer: str
) -> list[dict[str, Any]]:
    timeline = []
    for doc in index.search_customer(customer):
        current = store.last_status(doc["order_id"])
        timeline.append({**doc, "stale": current is not None and current != doc["status"]})
    return timeline


def replay_dead_letters(path: Path, pipeline: OrderPipeline) -> int:  # expect: workflow
    rotated = rotate_dead_letters(path)
    if rotated is None:
        return 0
    events = []
    for record in read_dead_letters(rotated):
        event, _ = safe_decode(record["raw"].encode())
        if event is not None:
            events.append(event)
    if events:
        pipeline.store.record(events)
        for event in events:
            index_document(pipeline.index.es, pipeline.index.index, to_document(event))
            pipeline.publish_status(event)
    return len(events)


# -- wiring --------------------------------------------------------------------


def build_pipeline(settings_path: Path) -> OrderPipeline:  # expect: step
    settings = yaml.safe_load(settings_path.read_text(encoding="utf-8"))
    kafka = settings["kafka"]
    consumer = Consumer(
        {
            "bootstrap.servers": kafka["brokers"],
            "group.id": kafka.get("group", "order-pipeline"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(kafka["topics"])
    producer = Producer({"bootstrap.servers": kafka["brokers"], "enable.idempotence": True})
    connections = pg_pool.ThreadedConnectionPool(2, 10, dsn=settings["postgres_dsn"])
    es = Elasticsearch(settings["elasticsearch_url"], request_timeout=10)
    return OrderPipeline(
        consumer,
        producer,
        OrderStore(connections),
        SearchIndex(es, settings.get("index", "orders")),
        DeadLetterFile(Path(settings["dead_letter_path"])),
    )


def start_worker(pipeline: OrderPipeline) -> threading.Thread:  # expect: workflow
    worker = threading.Thread(target=pipeline.run, name="order-pipeline", daemon=True)
    worker.start()
    return worker


def main(settings_path: str = "pipeline.yaml") -> None:  # expect: workflow
    pipeline = build_pipeline(Path(settings_path))
    pipeline.index.ensure_index()
    signal.signal(signal.SIGTERM, lambda signum, frame: pipeline.stop())
    worker = start_worker(pipeline)
    worker.join()
    write_metrics_file(pipeline.metrics, Path("/var/lib/node_exporter/order_pipeline.prom"))
    log.info("pipeline stopped: %s", pipeline.metrics.snapshot())
