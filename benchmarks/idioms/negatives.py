"""Negatives: code that looks like I/O and is not.

Methods called on untyped parameters that are strings, lists and dicts;
helpers, types, exceptions and request builders that live in I/O packages;
client constructors; logging; path arithmetic that never touches the disk;
in-memory objects whose methods are named ``get``, ``write``, ``send``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os.path
import re
from pathlib import Path, PurePosixPath
from typing import Any

import anthropic
import boto3
import httpx
import openai
import pika
import requests
from anthropic.types import MessageParam, TextBlock
from botocore.exceptions import ClientError
from psycopg2.extensions import parse_dsn
from pydantic import BaseModel, field_validator
from slack_sdk import WebClient
from sqlalchemy import select

from .orms import User
from .web_clients import fetch_invoice, get_account, parse_invoice
from .web_clients import fetch_invoice as load_invoice

log = logging.getLogger(__name__)


# --- methods on untyped parameters -------------------------------------------------


def clean(s):  # expect: plain
    return s.strip().lower()


def add_item(items, item):  # expect: plain
    items.append(item)
    return items


def lookup(mapping, key, default=None):  # expect: plain
    return mapping.get(key, default)


def merge(base, extra):  # expect: plain
    out = dict(base)
    out.update(extra)
    return out


def first(rows):  # expect: plain
    return rows[0] if rows else None


def pop_header(lines):  # expect: plain
    return lines.pop(0), lines


def words(text):  # expect: plain
    return [w for w in text.replace("\n", " ").split(" ") if w]


def setting(config, section, key):  # expect: plain
    return config.get(section, {}).get(key)


def drain_list(pending):  # expect: plain
    out = []
    while pending:
        out.append(pending.pop())
    return out


# --- helpers and types from I/O packages ------------------------------------------


def dsn_host(dsn: str) -> str:  # expect: plain
    return parse_dsn(dsn).get("host", "localhost")


def message_props(reply_to: str) -> pika.BasicProperties:  # expect: plain
    return pika.BasicProperties(reply_to=reply_to, content_type="application/json")


def connection_params(host: str) -> pika.ConnectionParameters:  # expect: plain
    return pika.ConnectionParameters(host=host, heartbeat=30, blocked_connection_timeout=60)


def is_retryable(exc: Exception) -> bool:  # expect: plain
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, httpx.TransportError))


class UpstreamError(requests.HTTPError):
    def __init__(self, service: str, status: int) -> None:  # expect: plain
        super().__init__(f"{service} answered {status}")
        self.service = service
        self.status = status


def error_code(err: ClientError) -> str:  # expect: plain
    return err.response["Error"]["Code"]


def assistant_text(blocks: list[TextBlock]) -> str:  # expect: plain
    return "".join(block.text for block in blocks)


def user_message(text: str) -> MessageParam:  # expect: plain
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def is_rate_limit(exc: Exception) -> bool:  # expect: plain
    return isinstance(exc, (openai.RateLimitError, anthropic.RateLimitError))


def prepared(url: str, token: str) -> requests.PreparedRequest:  # expect: plain
    req = requests.Request("GET", url, headers={"Authorization": f"Bearer {token}"})
    return req.prepare()


def api_url(base: str, path: str, **query: str) -> str:  # expect: plain
    return str(httpx.URL(base).join(path).copy_merge_params(query))


def status_line(response: requests.Response) -> str:  # expect: plain
    return f"{response.status_code} {response.reason}"


def retry_after(headers: httpx.Headers) -> float:  # expect: plain
    return float(headers.get("retry-after", "1"))


def user_query(user_id: int):  # expect: plain
    return select(User).where(User.id == user_id).limit(1)


# --- constructors that make no request ----------------------------------------------


def azure_client(endpoint: str, key: str) -> openai.AzureOpenAI:  # expect: plain
    return openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2024-06-01")


def slack_client(token: str) -> WebClient:  # expect: plain
    return WebClient(token=token)


def s3_client():  # expect: plain
    return boto3.client("s3")


def anthropic_client(key: str) -> anthropic.Anthropic:  # expect: plain
    return anthropic.Anthropic(api_key=key, max_retries=5)


def http_client(base: str) -> httpx.Client:  # expect: plain
    return httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, connect=2.0))


# --- pydantic models and dataclasses ------------------------------------------------


class Payload(BaseModel):
    name: str
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def no_blank(cls, value: str) -> str:  # expect: plain
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    def tag_line(self) -> str:  # expect: plain
        return ", ".join(sorted(self.tags))


@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    attempts: int = 0

    def retried(self) -> Job:  # expect: plain
        return dataclasses.replace(self, attempts=self.attempts + 1)


# --- logging and paths ---------------------------------------------------------------


def log_failure(job: Job, error: Exception) -> None:  # expect: plain
    log.error("job %s failed after %d attempts: %s", job.id, job.attempts, error)


def warn_slow(name: str, seconds: float) -> None:  # expect: plain
    if seconds > 1.0:
        logging.warning("%s took %.1fs", name, seconds)


def output_file(base: str, name: str) -> Path:  # expect: plain
    return Path(base) / "out" / f"{name}.json"


def join_path(*parts: str) -> str:  # expect: plain
    return os.path.join(*parts)


def relative(path: Path, root: Path) -> PurePosixPath:  # expect: plain
    return PurePosixPath(path.relative_to(root))


def stem_and_ext(path: str) -> tuple[str, str]:  # expect: plain
    return os.path.splitext(os.path.basename(path))


# --- in-memory lookalikes -------------------------------------------------------------


class Buffer:
    def __init__(self) -> None:  # expect: plain
        self.items: list[str] = []

    def write(self, item: str) -> None:  # expect: plain
        self.items.append(item)

    def read(self) -> list[str]:  # expect: plain
        out, self.items = self.items, []
        return out


class Outbox:
    def __init__(self) -> None:  # expect: plain
        self.sent: list[dict[str, Any]] = []

    def send(self, to: str, body: str) -> None:  # expect: plain
        self.sent.append({"to": to, "body": body})


class FakeHttp:
    def __init__(self, responses: list[dict[str, Any]]) -> None:  # expect: plain
        self.responses = list(responses)

    def get(self, url: str) -> dict[str, Any]:  # expect: plain
        return self.responses.pop(0)


def parse_csv_text(text: str) -> list[list[str]]:  # expect: plain
    return list(csv.reader(io.StringIO(text)))


def roundtrip(data: Any) -> Any:  # expect: plain
    return json.loads(json.dumps(data))


def redact(text: str) -> str:  # expect: plain
    return re.sub(r"sk-[A-Za-z0-9]{20,}", "sk-***", text)


def select_sql(table: str, columns: list[str]) -> str:  # expect: plain
    return f"SELECT {', '.join(columns)} FROM {table}"


def handlers() -> dict[str, Any]:  # expect: plain
    return {"invoice": fetch_invoice, "account": get_account}


# --- workflows through aliases ---------------------------------------------------------


def invoice_total(invoice_id: str) -> int:  # expect: workflow
    return parse_invoice(load_invoice(invoice_id))[1]


def invoice_totals(ids: list[str]) -> dict[str, int]:  # expect: workflow
    return {invoice_id: invoice_total(invoice_id) for invoice_id in ids}
