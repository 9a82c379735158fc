"""Inventory and warehouse service: Flask views over a SQLAlchemy Core repository.

Connections are passed to the repository functions; a Redis cache sits in front of
the stock levels, and a psycopg path loads stock counts in bulk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
import redis
from flask import Flask, abort, jsonify, request
from psycopg import sql
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from .notify_worker import enqueue_low_stock_alert

app = Flask(__name__)
metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("reorder_level", Integer, nullable=False, default=10),
)
stock = Table(
    "stock",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("bin", String(16), primary_key=True),
    Column("quantity", Integer, nullable=False),
)
movements = Table(
    "movements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sku", String(32), nullable=False),
    Column("bin", String(16), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("moved_at", DateTime(timezone=True), nullable=False),
)

engine = create_engine(
    os.environ.get("WAREHOUSE_DB_URL", "postgresql+psycopg://localhost/warehouse"),
    pool_pre_ping=True,
)


# --- pure helpers -------------------------------------------------------------------


def bin_code(aisle: str, shelf: int, slot: int) -> str:  # expect: plain
    return f"{aisle.upper()}-{shelf:02d}-{slot:02d}"


def parse_bin_code(code: str) -> tuple[str, int, int]:  # expect: plain
    aisle, shelf, slot = code.split("-")
    return aisle, int(shelf), int(slot)


def cache_key(sku: str) -> str:  # expect: plain
    return f"stock-levels:{sku.lower()}"


def serialise_levels(rows: Iterable[Any]) -> dict[str, int]:  # expect: plain
    return {row.bin: int(row.quantity) for row in rows}


def plan_picks(levels: dict[str, int], wanted: int) -> list[tuple[str, int]]:  # expect: plain
    picks: list[tuple[str, int]] = []
    for bin_, available in sorted(levels.items(), key=lambda kv: -kv[1]):
        if wanted <= 0:
            break
        take = min(available, wanted)
        if take:
            picks.append((bin_, take))
            wanted -= take
    if wanted > 0:
        raise ValueError(f"short by {wanted} units")
    return picks


@dataclass
class PickLine:
    sku: str
    bin: str
    quantity: int
    unit_price: Decimal

    def total(self) -> Decimal:  # expect: plain
        return self.unit_price * self.quantity


# --- queries: built here, run elsewhere -----------------------------------------------


def stock_query(sku: str):  # expect: plain
    return select(stock.c.bin, stock.c.quantity).where(stock.c.sku == sku)


def low_stock_query(limit: int = 50):  # expect: plain
    on_hand = (
        select(stock.c.sku, func.sum(stock.c.quantity).label("quantity"))
        .group_by(stock.c.sku)
        .subquery()
    )
    return (
        select(items.c.sku, items.c.name, on_hand.c.quantity)
        .join(on_hand, on_hand.c.sku == items.c.sku)
        .where(on_hand.c.quantity < items.c.reorder_level)
        .order_by(on_hand.c.quantity)
        .limit(limit)
    )


def count_query(table: str) -> sql.Composed:  # expect: plain
    return sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))


# --- repository: connections passed in -----------------------------------------------


def fetch_item(conn: Connection, sku: str) -> dict[str, Any] | None:  # expect: step
    row = conn.execute(select(items).where(items.c.sku == sku)).mappings().first()
    return dict(row) if row else None


def fetch_levels(conn, sku):  # expect: step
    return conn.execute(stock_query(sku)).all()


def adjust_quantity(conn: Connection, sku: str, bin_: str, delta: int) -> int:  # expect: step
    statement = (
        update(stock)
        .where(stock.c.sku == sku, stock.c.bin == bin_)
        .values(quantity=stock.c.quantity + delta)
        .returning(stock.c.quantity)
    )
    return conn.execute(statement).scalar_one()


def record_movement(  # expect: step
    conn: Connection, sku: str, bin_: str, delta: int, reason: str, moved_at: datetime
) -> None:
    conn.execute(
        insert(movements).values(sku=sku, bin=bin_, delta=delta, reason=reason, moved_at=moved_at)
    )


def move_stock(  # expect: workflow
    conn: Connection, sku: str, from_bin: str, to_bin: str, qty: int, moved_at: datetime
) -> None:
    if adjust_quantity(conn, sku, from_bin, -qty) < 0:
        raise ValueError(f"bin {from_bin} would go negative")
    adjust_quantity(conn, sku, to_bin, qty)
    record_movement(conn, sku, from_bin, -qty, "transfer-out", moved_at)
    record_movement(conn, sku, to_bin, qty, "transfer-in", moved_at)


def list_low_stock(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:  # expect: step
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(low_stock_query(limit)).mappings()]


def create_schema() -> None:  # expect: step
    metadata.create_all(engine)


def moved_at_now() -> datetime:  # expect: step
    return datetime.now(UTC)


@contextmanager
def transaction() -> Iterator[Connection]:  # expect: step
    with engine.begin() as conn:
        yield conn


def write_off(  # expect: workflow
    sku: str, bin_: str, qty: int, reason: str, when: datetime
) -> int:
    with transaction() as conn:
        left = adjust_quantity(conn, sku, bin_, -qty)
        record_movement(conn, sku, bin_, -qty, reason, when)
    return left


def receive_shipment(lines: Iterable[tuple[str, str, int]]) -> int:  # expect: step
    received = 0
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for sku, bin_, qty in lines:
            adjust_quantity(conn, sku, bin_, qty)
            record_movement(conn, sku, bin_, qty, "receipt", now)
            received += qty
    return received


class StockRepository:
    def __init__(self, conn: Connection) -> None:  # expect: plain
        self.conn = conn

    def quantity(self, sku: str, bin_: str) -> int:  # expect: step
        statement = select(stock.c.quantity).where(stock.c.sku == sku, stock.c.bin == bin_)
        return self.conn.execute(statement).scalar_one_or_none() or 0

    def history(self, sku: str, since: datetime) -> list[dict[str, Any]]:  # expect: step
        statement = (
            select(movements)
            .where(movements.c.sku == sku, movements.c.moved_at >= since)
            .order_by(movements.c.moved_at.desc())
        )
        return [dict(row) for row in self.conn.execute(statement).mappings()]

    def bins_query(self, sku: str):  # expect: plain
        return select(stock.c.bin).where(stock.c.sku == sku).order_by(stock.c.bin)

    def total_on_hand(self, sku: str, bins: list[str]) -> int:  # expect: workflow
        return sum(self.quantity(sku, bin_) for bin_ in bins)


# --- psycopg: bulk counts ---------------------------------------------------------------


def bulk_load_counts(dsn: str, rows: list[tuple[str, str, int]]) -> int:  # expect: step
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY stock_count (sku, bin, quantity) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)


def count_table_rows(conn: psycopg.Connection, table: str) -> int:  # expect: step
    row = conn.execute(count_query(table)).fetchone()
    return int(row[0]) if row else 0


def table_sizes(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:  # expect: workflow
    return {table: count_table_rows(conn, table) for table in tables}


class CountSession:
    def __init__(self, dsn: str) -> None:  # expect: step
        self.conn = psycopg.connect(dsn, autocommit=False)

    def count(self, table: str) -> int:  # expect: workflow
        return count_table_rows(self.conn, table)

    def commit(self) -> None:  # expect: step
        self.conn.commit()


def open_count_session(dsn: str) -> CountSession:  # expect: workflow
    return CountSession(dsn)


# --- cache ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def get_cache() -> redis.Redis:  # expect: plain
    return redis.Redis.from_url(os.environ.get("CACHE_URL", "redis://localhost:6379/2"))


def cached_levels(sku: str) -> dict[str, int] | None:  # expect: step
    raw = get_cache().get(cache_key(sku))
    return json.loads(raw) if raw else None


def store_levels(sku: str, levels: dict[str, int], ttl: int = 60) -> None:  # expect: step
    get_cache().setex(cache_key(sku), ttl, json.dumps(levels))


def invalidate(sku: str) -> None:  # expect: step
    get_cache().delete(cache_key(sku))


def load_levels(sku: str) -> dict[str, int]:  # expect: step
    with engine.connect() as conn:
        return serialise_levels(fetch_levels(conn, sku))


def levels_for(sku: str) -> dict[str, int]:  # expect: workflow
    cached = cached_levels(sku)
    if cached is not None:
        return cached
    levels = load_levels(sku)
    store_levels(sku, levels)
    return levels


class LocalCache:
    """A per-process cache of item rows, expired on a monotonic clock."""

    def __init__(self, ttl: float = 30.0) -> None:  # expect: plain
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:  # expect: step
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:  # expect: step
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def peek(self, key: str) -> Any | None:  # expect: plain
        entry = self._entries.get(key)
        return entry[1] if entry else None

    def clear(self) -> None:  # expect: plain
        self._entries.clear()


item_cache = LocalCache()


def item_or_404(sku: str) -> dict[str, Any]:  # expect: step
    hit = item_cache.get(sku)
    if hit is not None:
        return hit
    with engine.connect() as conn:
        item = fetch_item(conn, sku)
    if item is None:
        abort(404)
    item_cache.put(sku, item)
    return item


# --- views ------------------------------------------------------------------------------


@app.get("/items/<sku>")
def item_view(sku: str):  # expect: workflow
    item = item_or_404(sku)
    return jsonify(sku=item["sku"], name=item["name"], unit_price=str(item["unit_price"]))


@app.get("/items/<sku>/levels")
def levels_view(sku: str):  # expect: workflow
    levels = levels_for(sku)
    return jsonify(sku=sku, levels=levels, total=sum(levels.values()))


@app.post("/items/<sku>/move/<from_bin>/<to_bin>/<int:qty>")
def move_view(sku: str, from_bin: str, to_bin: str, qty: int):  # expect: step
    with engine.begin() as conn:
        move_stock(conn, sku, from_bin, to_bin, qty, datetime.now(UTC))
    invalidate(sku)
    return jsonify(moved=qty), 201


@app.get("/items/<sku>/history")
def history_view(sku: str):  # expect: step
    since = datetime.fromisoformat(request.args.get("since", "2000-01-01T00:00:00+00:00"))
    with engine.connect() as conn:
        rows = StockRepository(conn).history(sku, since)
    return jsonify([{**row, "moved_at": row["moved_at"].isoformat()} for row in rows])


@app.get("/low-stock")
def low_stock_view():  # expect: workflow
    limit = request.args.get("limit", default=50, type=int)
    return jsonify(list_low_stock(engine, limit))


@app.get("/picks/<sku>/<int:wanted>")
def pick_plan_view(sku: str, wanted: int):  # expect: workflow
    try:
        picks = plan_picks(levels_for(sku), wanted)
    except ValueError as exc:
        return jsonify(error=str(exc)), 409
    return jsonify([{"bin": bin_, "quantity": qty} for bin_, qty in picks])


@app.errorhandler(404)
def not_found(error):  # expect: plain
    return jsonify(error="not found", detail=str(error)), 404


# --- jobs -------------------------------------------------------------------------------


def alert_low_stock(rows: list[dict[str, Any]]) -> int:  # expect: workflow
    for row in rows:
        enqueue_low_stock_alert(row["sku"], int(row["quantity"]))
    return len(rows)


def nightly_low_stock_check() -> int:  # expect: workflow
    return alert_low_stock(list_low_stock(engine, limit=200))
