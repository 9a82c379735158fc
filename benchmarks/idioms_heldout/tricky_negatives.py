"""Look-alikes and mixtures: client, session, request and cache names on code
that does no I/O (models, in-memory stand-ins, request and query builders,
parsers, formatters, validators, seeded randomness, clients passed around but
never called), next to a few neighbours that do."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import requests
from botocore.exceptions import ClientError
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from openai import OpenAI
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import Column, Integer, MetaData, Select, String, Table, create_engine, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from .django_library import Book, notify_branch
from .etl_job import S3
from .llm_agent import HTTP, TOOLS, web_search

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(16)),
    Column("total_cents", Integer),
)
TAX_RATES = {"DE": 0.19, "FR": 0.20, "NL": 0.21}


class S3Client(BaseModel):
    """Where a tenant's bucket lives (a settings model, named like boto3's client)."""

    bucket: str
    region: str = "eu-west-1"
    endpoint: str | None = None

    @field_validator("bucket")
    @classmethod
    def bucket_name_ok(cls, value: str) -> str:  # expect: plain
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
            raise ValueError("invalid bucket name")
        return value

    def object_url(self, key: str) -> str:  # expect: plain
        host = self.endpoint or f"https://{self.bucket}.s3.{self.region}.amazonaws.com"
        return f"{host.rstrip('/')}/{key.lstrip('/')}"


def download_link(client: S3Client, key: str) -> str:  # expect: plain
    return client.object_url(key)


@dataclass
class HttpClient:
    """An in-memory stand-in for tests: records requests, replays canned responses."""

    responses: dict[str, Any] = field(default_factory=dict)
    sent: list[tuple[str, str, Any]] = field(default_factory=list)

    def get(self, url: str) -> Any:  # expect: plain
        self.sent.append(("GET", url, None))
        return self.responses.get(url)

    def post(self, url: str, payload: Any = None) -> Any:  # expect: plain
        self.sent.append(("POST", url, payload))
        return self.responses.get(url, {"ok": True})


def fetch_with_stub(client: HttpClient, url: str) -> Any:  # expect: plain
    return client.get(url)


class MemoryCache:
    def __init__(self) -> None:  # expect: plain
        self._data: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str, now: float) -> Any:  # expect: plain
        value, expires = self._data.get(key, (None, None))
        return None if expires is not None and expires <= now else value

    def set(  # expect: plain
        self, key: str, value: Any, now: float, ttl: float | None = None
    ) -> None:
        self._data[key] = (value, now + ttl if ttl else None)

    def delete(self, key: str) -> bool:  # expect: plain
        return self._data.pop(key, None) is not None


def cached_price(cache: MemoryCache, sku: str, now: float) -> int | None:  # expect: plain
    return cache.get(f"price:{sku}", now)


def sign(secret: bytes, body: bytes) -> str:  # expect: plain
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:  # expect: plain
    return hmac.compare_digest(sign(secret, body), signature)


def prepare_webhook(  # expect: plain
    url: str, secret: bytes, event: dict[str, Any]
) -> requests.PreparedRequest:
    body = json.dumps(event, sort_keys=True).encode()
    request = requests.Request("POST", url, data=body, headers={"X-Signature": sign(secret, body)})
    return request.prepare()


def send_webhook(  # expect: step
    session: requests.Session, prepared: requests.PreparedRequest
) -> int:
    return session.send(prepared, timeout=10).status_code


def build_search_request(client: httpx.Client, query: str) -> httpx.Request:  # expect: plain
    return client.build_request("GET", "/search", params={"q": query})


def search_url(base: str, query: str, page: int = 1) -> str:  # expect: plain
    return str(httpx.URL(base, params={"q": query, "page": page}))


def parse_response(response: httpx.Response) -> dict[str, Any]:  # expect: plain
    response.raise_for_status()
    return {"status": response.status_code, "data": response.json()}


def open_orders_query(min_total: int = 0) -> Select:  # expect: plain
    return select(orders.c.id, orders.c.total_cents).where(
        orders.c.status == "open", orders.c.total_cents >= min_total
    )


def render_sql(stmt: Select) -> str:  # expect: plain
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def count_open_orders(session: Session) -> int:  # expect: step
    stmt = select(func.count()).select_from(orders).where(orders.c.status == "open")
    return session.scalar(stmt) or 0


def engine_for(url: str):  # expect: plain
    return create_engine(url, pool_pre_ping=True, pool_size=5)


def session_factory(url: str) -> sessionmaker[Session]:  # expect: plain
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


def new_session(factory: sessionmaker[Session]) -> Session:  # expect: plain
    return factory()


def books_by(author: str):  # expect: plain
    return Book.objects.filter(author__iexact=author).order_by("title")


def book_exists(isbn: str) -> bool:  # expect: step
    return Book.objects.filter(isbn=isbn).exists()


def reminder_signature(loan_id: int):  # expect: plain
    return notify_branch.s(loan_id).set(countdown=3600)


def schedule_reminder(loan_id: int) -> None:  # expect: step
    notify_branch.apply_async((loan_id,), countdown=3600)


@dataclass
class Services:
    http: httpx.Client
    llm: OpenAI
    s3: Any

    def with_llm(self, llm: OpenAI) -> Services:  # expect: plain
        return Services(http=self.http, llm=llm, s3=self.s3)


def wire_services(http: httpx.Client | None = None) -> Services:  # expect: plain
    return Services(http=http or HTTP, llm=OpenAI(), s3=S3)


def describe(services: Services) -> dict[str, str]:  # expect: plain
    return {
        "http": str(services.http.base_url),
        "llm": str(services.llm.base_url),
        "s3": services.s3.meta.region_name,
    }


def default_headers(client: httpx.Client = HTTP) -> dict[str, str]:  # expect: plain
    return dict(client.headers)


def is_retryable(error: Exception) -> bool:  # expect: plain
    if isinstance(error, ClientError):
        return error.response["Error"]["Code"] in {"Throttling", "SlowDown", "RequestTimeout"}
    return isinstance(error, requests.Timeout | httpx.TransportError)


def summary_chain(llm):  # expect: plain
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Summarise in at most {words} words."), ("human", "{text}")]
    )
    return prompt | llm | StrOutputParser()


def run_summary(chain, text: str) -> str:  # expect: step
    return chain.invoke({"words": 50, "text": text})


def tool_names() -> list[str]:  # expect: plain
    return sorted(TOOLS)


def search_tool():  # expect: plain
    return TOOLS.get("web_search", web_search)


def seeded_shuffle(items: list[str], seed: int) -> list[str]:  # expect: plain
    rng = random.Random(seed)
    out = list(items)
    rng.shuffle(out)
    return out


def sample_ids(ids: list[int], k: int) -> list[int]:  # expect: step
    return random.sample(ids, k)


def weekday_name(day: date) -> str:  # expect: plain
    return day.strftime("%A")


def expires_at(issued: datetime, ttl: timedelta = timedelta(hours=1)) -> datetime:  # expect: plain
    return issued + ttl


def is_expired(expires: datetime) -> bool:  # expect: step
    return datetime.now(UTC) >= expires


def parse_timestamp(raw: str) -> datetime:  # expect: plain
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def api_key() -> str:  # expect: step
    return "sk_" + secrets.token_hex(24)


def content_id(data: bytes) -> str:  # expect: plain
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class SignupForm(BaseModel):
    email: str
    password: str = Field(min_length=12)
    referral: str | None = None

    @field_validator("email")
    @classmethod
    def normalise_email(cls, value: str) -> str:  # expect: plain
        value = value.strip().lower()
        if "@" not in value:
            raise ValueError("not an email address")
        return value

    @model_validator(mode="after")
    def password_not_email(self) -> SignupForm:  # expect: plain
        if self.email.split("@")[0] in self.password.lower():
            raise ValueError("the password contains the email address")
        return self


def money(cents: int, currency: str = "EUR") -> str:  # expect: plain
    sign_ = "-" if cents < 0 else ""
    return f"{sign_}{abs(cents) // 100}.{abs(cents) % 100:02d} {currency}"


def slug(title: str) -> str:  # expect: plain
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def parse_s3_uri(uri: str) -> tuple[str, str]:  # expect: plain
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3 uri: {uri}")
    return parts.netloc, parts.path.lstrip("/")


def query_string(filters: dict[str, Any]) -> str:  # expect: plain
    return urlencode(sorted((k, v) for k, v in filters.items() if v is not None), doseq=True)


def redact(headers: dict[str, str]) -> dict[str, str]:  # expect: plain
    secret = {"authorization", "x-api-key", "cookie"}
    return {k: "***" if k.lower() in secret else v for k, v in headers.items()}


def template_path(name: str) -> Path:  # expect: plain
    return Path(__file__).with_name("templates") / f"{name}.html.j2"


def load_fixture(name: str) -> dict[str, Any]:  # expect: step
    return json.loads(template_path(name).with_suffix(".json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Envelope:
    topic: str
    body: bytes

    def json(self) -> dict[str, Any]:  # expect: plain
        return json.loads(self.body)

    def to_wire(self) -> bytes:  # expect: plain
        return self.topic.encode() + b"\n" + self.body

    @classmethod
    def from_wire(cls, raw: bytes) -> Envelope:  # expect: plain
        topic, _, body = raw.partition(b"\n")
        return cls(topic.decode(), body)


def read_message(envelope: Envelope) -> dict[str, Any]:  # expect: plain
    return envelope.json()


def fetch_field(record: dict[str, Any], path: str) -> Any:  # expect: plain
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def send_to(queue: list[Any], item: Any) -> None:  # expect: plain
    queue.append(item)


def _square(n: int) -> int:  # expect: plain
    return n * n


def squares(numbers: list[int]) -> list[int]:  # expect: plain
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(_square, numbers))


async def _double(n: int) -> int:  # expect: plain
    return n * 2


async def doubles(numbers: list[int]) -> list[int]:  # expect: plain
    return list(await asyncio.gather(*(_double(n) for n in numbers)))


@cache
def tax_rate(country: str) -> float:  # expect: plain
    return TAX_RATES.get(country.upper(), 0.0)


def checkout_summary(items: list[dict[str, int]], country: str) -> dict[str, str]:  # expect: plain
    subtotal = sum(i["price_cents"] * i["quantity"] for i in items)
    tax = round(subtotal * tax_rate(country))
    return {"subtotal": money(subtotal), "tax": money(tax), "total": money(subtotal + tax)}
