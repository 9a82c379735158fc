"""Clocks and randomness: time, datetime, monotonic clocks, random, uuid, secrets.

Reading a clock or drawing randomness is nondeterministic; arithmetic on a
given time, a seeded ``random.Random``, ``uuid5`` and ``compare_digest`` are not.
"""

# ruff: noqa: UP017

from __future__ import annotations

import hashlib
import os
import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import datetime as dt
from random import randint
from time import time as now_ts
from typing import TypeVar
from uuid import uuid4

T = TypeVar("T")
Clock = Callable[[], float]


def now_iso() -> str:  # expect: step
    return datetime.now(timezone.utc).isoformat()


def utc_timestamp() -> float:  # expect: step
    return time.time()


def started_at() -> float:  # expect: step
    return now_ts()


def today() -> date:  # expect: step
    return date.today()


def legacy_utc() -> datetime:  # expect: step
    return dt.utcnow()


def log_prefix() -> str:  # expect: step
    return time.strftime("[%H:%M:%S]")


def format_ts(ts: float) -> str:  # expect: plain
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def parse_ts(text: str) -> datetime:  # expect: plain
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def from_epoch(ts: float) -> datetime:  # expect: plain
    return datetime.fromtimestamp(ts, tz=UTC)


def expires_at(issued: datetime, ttl: int) -> datetime:  # expect: plain
    return issued + timedelta(seconds=ttl)


def is_expired(expiry: datetime) -> bool:  # expect: step
    return datetime.now(UTC) >= expiry


def month_key(day: date) -> str:  # expect: plain
    return day.strftime("%Y-%m")


def age_days(born: date, on: date) -> int:  # expect: plain
    return (on - born).days


def deadline(seconds: float) -> float:  # expect: step
    return time.monotonic() + seconds


def time_left(deadline_at: float) -> float:  # expect: step
    return max(0.0, deadline_at - time.monotonic())


def wait_until(ts: float) -> None:  # expect: step
    time.sleep(max(0.0, ts - time.time()))


def new_id() -> str:  # expect: step
    return uuid.uuid4().hex


def request_id() -> str:  # expect: step
    return str(uuid4())


def node_id() -> uuid.UUID:  # expect: step
    return uuid.uuid1()


def stable_id(name: str) -> uuid.UUID:  # expect: plain
    return uuid.uuid5(uuid.NAMESPACE_URL, name)


def api_token() -> str:  # expect: step
    return secrets.token_urlsafe(32)


def otp() -> str:  # expect: step
    return "".join(secrets.choice("0123456789") for _ in range(6))


def tokens_match(given: str, expected: str) -> bool:  # expect: plain
    return secrets.compare_digest(given.encode(), expected.encode())


def nonce() -> bytes:  # expect: step
    return os.urandom(16)


def digest(data: bytes) -> str:  # expect: plain
    return hashlib.sha256(data).hexdigest()


def pick_variant(variants: Sequence[str]) -> str:  # expect: step
    return random.choice(variants)


def jitter(base: float) -> float:  # expect: step
    return base * (0.5 + random.random())


def dice() -> int:  # expect: step
    return randint(1, 6)


def sample_ids(ids: list[int], k: int) -> list[int]:  # expect: step
    return random.sample(ids, k)


def backoff(attempt: int, cap: float = 30.0) -> float:  # expect: plain
    return min(cap, 2.0**attempt)


def shuffled(items: Sequence[T], seed: int) -> list[T]:  # expect: plain
    rng = random.Random(seed)
    out = list(items)
    rng.shuffle(out)
    return out


class Sampler:
    def __init__(self, rate: float, seed: int) -> None:  # expect: plain
        self.rate = rate
        self.rng = random.Random(seed)

    def keep(self) -> bool:  # expect: plain
        return self.rng.random() < self.rate


class Stopwatch:
    def __init__(self) -> None:  # expect: step
        self.start = time.perf_counter()

    def elapsed(self) -> float:  # expect: step
        return time.perf_counter() - self.start

    @staticmethod
    def fmt(seconds: float) -> str:  # expect: plain
        return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


class RateWindow:
    def __init__(self, limit: int, clock: Clock = time.monotonic) -> None:  # expect: plain
        self.limit = limit
        self.clock = clock
        self.hits: list[float] = []

    def allow(self) -> bool:  # expect: step
        now = self.clock()
        self.hits = [t for t in self.hits if now - t < 1.0]
        if len(self.hits) >= self.limit:
            return False
        self.hits.append(now)
        return True


# --- workflows ---------------------------------------------------------------------


def current_month() -> str:  # expect: workflow
    return month_key(today())


def age_today(born: date) -> int:  # expect: workflow
    return age_days(born, today())


def session_record(user_id: int) -> dict[str, str | int]:  # expect: workflow
    return {"id": new_id(), "user": user_id, "token": api_token(), "at": now_iso()}


def stamp(record: dict[str, object]) -> dict[str, object]:  # expect: workflow
    return {**record, "request": request_id(), "updated": now_iso()}


def retry_delays(attempts: int) -> list[float]:  # expect: workflow
    return [jitter(backoff(n)) for n in range(attempts)]


def assign_experiment(user_id: int) -> dict[str, object]:  # expect: workflow
    return {"user": user_id, "variant": pick_variant(["a", "b"]), "at": utc_timestamp()}


def token_with_expiry(ttl: int) -> tuple[str, datetime]:  # expect: step
    issued = datetime.now(UTC)
    return api_token(), expires_at(issued, ttl)
