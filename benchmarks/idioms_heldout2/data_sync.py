"""Nightly sync job: MongoDB documents to S3 as JSON lines and CSV, cached in Redis."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache, partial
from typing import Any, TypeVar

import boto3
import redis
from botocore.exceptions import ClientError, EndpointConnectionError
from bson import ObjectId
from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.errors import AutoReconnect
from redis.client import Pipeline

T = TypeVar("T")
logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPORT_BUCKET = os.environ.get("EXPORT_BUCKET", "exports")
RETRYABLE = (ClientError, EndpointConnectionError, AutoReconnect, ConnectionError)
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

mongo = MongoClient(os.environ.get("MONGO_URL", "mongodb://localhost:27017"), tz_aware=True)
redis_client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


# --- handles -----------------------------------------------------------------------------


def collection(name: str) -> Collection:  # expect: plain
    return mongo[os.environ.get("MONGO_DB", "shop")][name]


@lru_cache(maxsize=1)
def s3_client():  # expect: plain
    return boto3.client("s3", region_name=os.environ.get("AWS_REGION", "eu-west-1"))


@lru_cache(maxsize=1)
def s3_resource():  # expect: plain
    return boto3.resource("s3")


def s3_uri(bucket: str, key: str) -> str:  # expect: plain
    return f"s3://{bucket}/{key}"


# --- MongoDB ---------------------------------------------------------------------------------


def changed_since(coll: Collection, since: datetime) -> list[dict[str, Any]]:  # expect: step
    return list(coll.find({"updated_at": {"$gte": since}}).sort("updated_at", 1))


def changed_cursor(coll: Collection, since: datetime) -> Cursor:  # expect: plain
    query = {"updated_at": {"$gte": since}}
    return coll.find(query, projection={"_id": 1, "updated_at": 1}).batch_size(500)


def load_customer(customer_id: str) -> dict[str, Any]:  # expect: step
    return collection("customers").find_one({"_id": customer_id}) or {}


def mark_exported(coll: Collection, ids: list[ObjectId], when: datetime) -> int:  # expect: step
    result = coll.update_many({"_id": {"$in": ids}}, {"$set": {"exported_at": when}})
    return result.modified_count


def upsert_ops(docs: list[dict[str, Any]]) -> list[UpdateOne]:  # expect: plain
    return [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in docs]


def apply_upserts(coll, docs):  # expect: step
    if not docs:
        return 0
    return coll.bulk_write(upsert_ops(docs), ordered=False).upserted_count


def counts_pipeline(since: datetime) -> list[dict[str, Any]]:  # expect: plain
    return [
        {"$match": {"created_at": {"$gte": since}}},
        {
            "$group": {
                "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}},
                "n": {"$sum": 1},
            }
        },
        {"$sort": {"_id": 1}},
    ]


def daily_counts(coll: Collection, since: datetime) -> list[dict[str, Any]]:  # expect: step
    return list(coll.aggregate(counts_pipeline(since)))


# --- Redis -------------------------------------------------------------------------------------


def cache_key(kind: str, ident: Any) -> str:  # expect: plain
    return f"sync:{kind}:{ident}"


def last_sync_time(name: str) -> datetime | None:  # expect: step
    raw = redis_client.get(cache_key("last", name))
    return datetime.fromisoformat(raw.decode()) if raw else None


def set_last_sync_time(name: str, when: datetime) -> None:  # expect: step
    redis_client.set(cache_key("last", name), when.isoformat())


def cached_json(r: redis.Redis, key: str, loader: Callable[[], dict], ttl=600):  # expect: step
    raw = r.get(key)
    if raw is not None:
        return json.loads(raw)
    value = loader()
    r.setex(key, ttl, json.dumps(value, default=str))
    return value


def customer_profile(customer_id: str) -> dict[str, Any]:  # expect: workflow
    loader = partial(load_customer, customer_id)
    return cached_json(redis_client, cache_key("customer", customer_id), loader)


def queue_cache_updates(pipe: Pipeline, docs: list[dict], ttl: int = 3600) -> None:  # expect: plain
    for doc in docs:
        key = cache_key(doc.get("kind", "doc"), doc["_id"])
        pipe.hset(key, mapping=flatten(doc))
        pipe.expire(key, ttl)


def refresh_cache(docs: list[dict[str, Any]]) -> int:  # expect: step
    with redis_client.pipeline(transaction=False) as pipe:
        queue_cache_updates(pipe, docs)
        return len(pipe.execute())


def invalidate(keys: list[str]) -> int:  # expect: step
    return redis_client.delete(*keys) if keys else 0


def acquire_lock(name: str, ttl: int = 900) -> str | None:  # expect: step
    token = uuid.uuid4().hex
    if redis_client.set(f"lock:{name}", token, nx=True, ex=ttl):
        return token
    return None


def release_lock(name: str, token: str) -> bool:  # expect: step
    return bool(redis_client.eval(RELEASE_SCRIPT, 1, f"lock:{name}", token))


class LocalCache:
    """An in-process stand-in with the same get/set/delete shape as a Redis client."""

    def __init__(self) -> None:  # expect: plain
        self._data: dict[str, Any] = {}

    def get(self, key: str) -> Any:  # expect: plain
        return self._data.get(key)

    def set(self, key: str, value: Any) -> None:  # expect: plain
        self._data[key] = value

    def delete(self, *keys: str) -> int:  # expect: plain
        return sum(self._data.pop(k, None) is not None for k in keys)


def lookup(cache: LocalCache, key: str, default: Any = None) -> Any:  # expect: plain
    value = cache.get(key)
    return default if value is None else value


# --- transforms ----------------------------------------------------------------------------------


def normalise(value: Any) -> Any:  # expect: plain
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:  # expect: plain
    flat: dict[str, str] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(normalise(value)) if not isinstance(value, str) else value
    return flat


def to_jsonl(docs: list[dict[str, Any]]) -> str:  # expect: plain
    return "".join(json.dumps(normalise(d), sort_keys=True) + "\n" for d in docs)


def to_csv(docs: list[dict[str, Any]], columns: list[str]) -> str:  # expect: plain
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flatten(d) for d in docs)
    return out.getvalue()


def price_row(row: dict[str, str]) -> dict[str, Any]:  # expect: plain
    return {"_id": row["sku"], "price": round(float(row["price"]), 2), "currency": row["currency"]}


def chunked(items: list[T], size: int) -> Iterator[list[T]]:  # expect: plain
    for start in range(0, len(items), size):
        yield items[start : start + size]


def object_key(prefix: str, name: str, when: datetime, part: int = 0) -> str:  # expect: plain
    return f"{prefix}/{when:%Y/%m/%d}/{name}-{part:04d}.jsonl"


# --- S3 ------------------------------------------------------------------------------------------


def upload_jsonl(bucket: str, key: str, docs: list[dict[str, Any]]) -> None:  # expect: step
    s3_client().put_object(
        Bucket=bucket, Key=key, Body=to_jsonl(docs).encode(), ContentType="application/x-ndjson"
    )


def objects_under(bucket_name: str, prefix: str):  # expect: plain
    return s3_resource().Bucket(bucket_name).objects.filter(Prefix=prefix)


def existing_keys(bucket_name: str, prefix: str) -> set[str]:  # expect: step
    return {obj.key for obj in s3_resource().Bucket(bucket_name).objects.filter(Prefix=prefix)}


def list_keys(client, bucket: str, prefix: str) -> list[str]:  # expect: step
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def manifest_object(bucket: str, key: str):  # expect: plain
    return s3_resource().Object(bucket, key)


def read_manifest(bucket: str, key: str) -> dict[str, Any]:  # expect: step
    try:
        body = s3_resource().Object(bucket, key).get()["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return {}
        raise
    return json.loads(body)


def archive_export(bucket: str, key: str, archive_bucket: str) -> None:  # expect: step
    client = s3_client()
    client.copy_object(Bucket=archive_bucket, Key=key, CopySource={"Bucket": bucket, "Key": key})
    client.delete_object(Bucket=bucket, Key=key)


def import_prices(bucket: str, key: str) -> int:  # expect: step
    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    rows = [price_row(row) for row in csv.DictReader(io.StringIO(body))]
    return apply_upserts(collection("prices"), rows)


class Exporter:
    def __init__(self, bucket: str, prefix: str, s3=None) -> None:  # expect: plain
        resource = s3 if s3 is not None else boto3.resource("s3")
        self.bucket = resource.Bucket(bucket)
        self.prefix = prefix

    def put(self, name: str, body: bytes) -> str:  # expect: step
        key = f"{self.prefix}/{name}"
        self.bucket.put_object(Key=key, Body=body)
        return key

    def export_csv(self, name: str, docs: list[dict], columns: list[str]):  # expect: workflow
        return self.put(f"{name}.csv", to_csv(docs, columns).encode())


# --- retries and fan-out ---------------------------------------------------------------------


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 30.0):  # expect: plain
    return [min(cap, base * 2**n) for n in range(attempts)]


def with_retries(fn: Callable[..., T], *args: Any, attempts: int = 5, **kw: Any):  # expect: step
    delays = backoff_delays(attempts)
    for attempt, delay in enumerate(delays, start=1):
        try:
            return fn(*args, **kw)
        except RETRYABLE as exc:
            if attempt == attempts:
                raise
            logger.warning("attempt %d failed (%s), retrying", attempt, exc)
            time.sleep(delay + random.uniform(0, delay))
    raise RuntimeError("attempts must be positive")


def upload_with_retries(bucket: str, key: str, docs: list[dict]) -> None:  # expect: workflow
    with_retries(upload_jsonl, bucket, key, docs)


@dataclass
class SyncReport:
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def add(self, name: str, count: int) -> None:  # expect: plain
        self.counts[name] = self.counts.get(name, 0) + count

    def summary(self) -> str:  # expect: plain
        parts = [f"{name}={n}" for name, n in sorted(self.counts.items())]
        failed = f"; failed: {', '.join(self.failed)}" if self.failed else ""
        return f"synced {sum(self.counts.values())} documents ({', '.join(parts)}){failed}"


def sync_collection(name: str, since: datetime, bucket: str) -> int:  # expect: workflow
    docs = changed_since(collection(name), since)
    for part, batch in enumerate(chunked(docs, 1000)):
        upload_with_retries(bucket, object_key("mongo", name, since, part), batch)
    refresh_cache([{**d, "kind": name} for d in docs])
    return len(docs)


def sync_all(names: list[str], since: datetime, bucket: str, workers: int = 4):  # expect: workflow
    report = SyncReport()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(sync_collection, name, since, bucket): name for name in names}
        for future in as_completed(futures):
            try:
                report.add(futures[future], future.result())
            except Exception:
                logger.exception("sync of %s failed", futures[future])
                report.failed.append(futures[future])
    return report


def run_nightly(names: list[str], bucket: str = EXPORT_BUCKET) -> SyncReport | None:  # expect: step
    token = acquire_lock("nightly-sync")
    if token is None:
        logger.info("another sync holds the lock")
        return None
    try:
        started = datetime.now(UTC)
        since = last_sync_time("nightly") or EPOCH
        report = sync_all(names, since, bucket)
        set_last_sync_time("nightly", started)
        return report
    finally:
        release_lock("nightly-sync", token)


def main() -> None:  # expect: workflow
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    names = os.environ.get("SYNC_COLLECTIONS", "orders,customers").split(",")
    report = run_nightly(names)
    if report is not None:
        logger.info(report.summary())
