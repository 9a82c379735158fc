"""A nightly partner-orders job: gzipped CSV drops are fetched over SFTP,
cleaned, staged in SQLite, upserted into Postgres with psycopg, and a JSON
report per partner is written to S3. Partners run in a thread pool."""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import logging
import posixpath
import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import paramiko
import psycopg
import requests
from botocore.config import Config
from tenacity import retry, stop_after_attempt, wait_exponential

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("etl.partner_orders")

S3 = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "adaptive"}))
REPORT_BUCKET = "etl-reports"
COLUMNS = ("partner", "order_id", "sku", "quantity", "amount_cents")
UPSERT_SQL = (
    "insert into partner_orders (partner, order_id, sku, quantity, amount_cents) "
    "values (%s, %s, %s, %s, %s) on conflict (partner, order_id) do update set "
    "sku = excluded.sku, quantity = excluded.quantity, amount_cents = excluded.amount_cents"
)


def with_retries(attempts: int = 3, base_delay: float = 0.5):  # expect: plain
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:  # expect: plain
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # expect: step
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except (OSError, psycopg.OperationalError):
                    if attempt == attempts:
                        raise
                    time.sleep(base_delay * 2**attempt + random.uniform(0, base_delay))
            raise AssertionError("unreachable")

        return wrapper

    return decorate


@dataclass(frozen=True)
class PartnerFeed:
    name: str
    host: str
    user: str
    key_file: str
    remote_dir: str = "/outgoing"
    suffix: str = ".csv.gz"

    def remote_path(self, filename: str) -> str:  # expect: plain
        return posixpath.join(self.remote_dir, filename)

    def wants(self, filename: str) -> bool:  # expect: plain
        return filename.endswith(self.suffix) and not filename.startswith(".")

    def open_sftp(self) -> paramiko.SFTPClient:  # expect: step
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        ssh.connect(self.host, username=self.user, key_filename=self.key_file, timeout=30)
        return ssh.open_sftp()


def new_files(  # expect: step
    feed: PartnerFeed, sftp: paramiko.SFTPClient, since: float
) -> list[str]:
    entries = sftp.listdir_attr(feed.remote_dir)
    return sorted(
        e.filename for e in entries if feed.wants(e.filename) and (e.st_mtime or 0) > since
    )


def download(sftp, remote: str, dest: Path) -> Path:  # expect: step
    dest.parent.mkdir(parents=True, exist_ok=True)
    sftp.get(remote, str(dest))
    return dest


@dataclass
class OrderRow:
    partner: str
    order_id: str
    sku: str
    quantity: int
    amount_cents: int

    def key(self) -> tuple[str, str]:  # expect: plain
        return (self.partner, self.order_id)


def parse_amount(raw: str) -> int:  # expect: plain
    units, _, cents = raw.strip().replace(",", ".").partition(".")
    return int(units or 0) * 100 + int((cents + "00")[:2])


def clean_row(raw: dict[str, str], partner: str) -> OrderRow | None:  # expect: plain
    order_id = (raw.get("order_id") or "").strip()
    if not order_id or not raw.get("quantity", "").strip().isdigit():
        return None
    return OrderRow(
        partner=partner,
        order_id=order_id,
        sku=raw.get("sku", "").strip().upper(),
        quantity=int(raw["quantity"]),
        amount_cents=parse_amount(raw.get("amount", "0")),
    )


def parse_csv_text(text: str, partner: str) -> list[OrderRow]:  # expect: plain
    rows = (clean_row(raw, partner) for raw in csv.DictReader(io.StringIO(text)))
    return [row for row in rows if row is not None]


def read_feed_file(path: Path, partner: str) -> list[OrderRow]:  # expect: step
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return parse_csv_text(handle.read(), partner)


def dedupe(rows: list[OrderRow]) -> list[OrderRow]:  # expect: plain
    latest: dict[tuple[str, str], OrderRow] = {}
    for row in rows:
        latest[row.key()] = row
    return list(latest.values())


def batch_digest(rows: list[OrderRow]) -> str:  # expect: plain
    payload = json.dumps([astuple(r) for r in rows], sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()


def open_staging(path: Path) -> sqlite3.Connection:  # expect: step
    conn = sqlite3.connect(path)
    conn.execute(f"create table if not exists staged ({', '.join(COLUMNS)})")
    return conn


def stage(conn: sqlite3.Connection, rows: list[OrderRow]) -> int:  # expect: step
    with conn:
        conn.executemany("insert into staged values (?, ?, ?, ?, ?)", [astuple(r) for r in rows])
    return len(rows)


def staged_rows(cur) -> list[tuple]:  # expect: step
    cur.execute(f"select {', '.join(COLUMNS)} from staged")
    return cur.fetchall()


class Warehouse:
    def __init__(self, dsn: str) -> None:  # expect: plain
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:  # expect: step
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=False)
        return self._conn

    def upsert(self, rows: list[tuple]) -> int:  # expect: step
        conn = self.connection()
        with conn.cursor() as cur:
            cur.executemany(UPSERT_SQL, rows)
        conn.commit()
        return len(rows)

    def watermark(self, partner: str) -> float:  # expect: step
        row = (
            self.connection()
            .execute(
                "select extract(epoch from max(loaded_at)) from loads where partner = %s",
                (partner,),
            )
            .fetchone()
        )
        return float(row[0] or 0) if row else 0.0

    def record_load(self, partner: str, digest: str) -> None:  # expect: step
        conn = self.connection()
        conn.execute(
            "insert into loads (partner, digest, loaded_at) values (%s, %s, now())",
            (partner, digest),
        )
        conn.commit()

    def close(self) -> None:  # expect: plain
        if self._conn is not None:
            self._conn.close()


def copy_statement(table: str, columns: tuple[str, ...] = COLUMNS) -> str:  # expect: plain
    return f"copy {table} ({', '.join(columns)}) from stdin"


def copy_rows(conn: psycopg.Connection, table: str, rows: list[tuple]) -> int:  # expect: step
    with conn.cursor() as cur, cur.copy(copy_statement(table)) as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


def report_key(partner: str, digest: str) -> str:  # expect: plain
    return f"reports/{partner}/{digest[:12]}.json"


@with_retries(attempts=4)
def put_report(report: dict, key: str, client: S3Client | None = None) -> str:  # expect: step
    body = json.dumps(report, indent=2).encode()
    (client or S3).put_object(
        Bucket=REPORT_BUCKET, Key=key, Body=body, ContentType="application/json"
    )
    return f"s3://{REPORT_BUCKET}/{key}"


def list_reports(prefix: str, s3=S3) -> list[str]:  # expect: step
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=REPORT_BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


@retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=1, max=20))
def fetch_fx_rates(base: str = "EUR") -> dict[str, float]:  # expect: step
    response = requests.get("https://fx.example.com/latest", params={"base": base}, timeout=10)
    response.raise_for_status()
    return response.json()["rates"]


def to_currency(rows: list[OrderRow], rate: float) -> list[OrderRow]:  # expect: plain
    return [
        OrderRow(r.partner, r.order_id, r.sku, r.quantity, round(r.amount_cents * rate))
        for r in rows
    ]


@dataclass
class JobConfig:
    feed: PartnerFeed
    workdir: Path
    staging_db: Path
    dsn: str
    currency: str = "EUR"

    def local_path(self, filename: str) -> Path:  # expect: plain
        return self.workdir / self.feed.name / filename


def extract(cfg: JobConfig, since: float) -> list[Path]:  # expect: workflow
    sftp = cfg.feed.open_sftp()
    try:
        names = new_files(cfg.feed, sftp, since)
        return [download(sftp, cfg.feed.remote_path(n), cfg.local_path(n)) for n in names]
    finally:
        sftp.close()


def transform(paths: list[Path], partner: str, currency: str) -> list[OrderRow]:  # expect: workflow
    rows: list[OrderRow] = []
    for path in paths:
        rows.extend(read_feed_file(path, partner))
    if currency != "EUR":
        rows = to_currency(rows, fetch_fx_rates("EUR")[currency])
    return dedupe(rows)


def load(cfg: JobConfig, rows: list[OrderRow], warehouse: Warehouse) -> dict:  # expect: workflow
    conn = open_staging(cfg.staging_db)
    stage(conn, rows)
    loaded = warehouse.upsert(staged_rows(conn.cursor()))
    digest = batch_digest(rows)
    warehouse.record_load(cfg.feed.name, digest)
    return {"partner": cfg.feed.name, "rows": loaded, "digest": digest}


def run_partner(cfg: JobConfig) -> str:  # expect: step
    started = time.time()
    warehouse = Warehouse(cfg.dsn)
    try:
        since = warehouse.watermark(cfg.feed.name)
        rows = transform(extract(cfg, since), cfg.feed.name, cfg.currency)
        summary = load(cfg, rows, warehouse)
    finally:
        warehouse.close()
    summary["seconds"] = round(time.time() - started, 3)
    return put_report(summary, report_key(cfg.feed.name, summary["digest"]))


def run_all(configs: list[JobConfig], workers: int = 4) -> list[str]:  # expect: workflow
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_partner, configs))


def config_from_dict(item: dict[str, Any]) -> JobConfig:  # expect: plain
    feed = PartnerFeed(**item["feed"])
    return JobConfig(
        feed=feed,
        workdir=Path(item.get("workdir", "/var/lib/etl")),
        staging_db=Path(item.get("staging_db", "/var/lib/etl/staging.db")),
        dsn=item["dsn"],
        currency=item.get("currency", "EUR"),
    )


def load_job_configs(path: Path) -> list[JobConfig]:  # expect: step
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [config_from_dict(item) for item in raw["feeds"]]


def main(config_path: str = "etl.json") -> int:  # expect: workflow
    reports = run_all(load_job_configs(Path(config_path)))
    log.info("wrote %d reports", len(reports))
    return 0
