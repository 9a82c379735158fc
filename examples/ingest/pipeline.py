"""A document pipeline: fan a batch out to a rate-limited queue, summarize each
document with an LLM, store the summaries, gather the results.

- ``ingest(batch)``, the parent workflow, lists the batch's documents and
  enqueues one ``summarize_document`` workflow per document on the queue
  ``summaries``, then waits for each of them (the fan-in) and returns totals.
- ``summarize_document(batch, doc_id)``, run by whichever worker has room, calls
  the model (`call_llm`, a step: an HTTP POST) and stores the summary
  (`store_summary`, a step: an idempotent insert keyed by the document id).
- The queue's limits hold across every worker process together: at most 8
  documents in progress at once (4 on one worker), at most 48 started per
  second, within what the model's provider allows (see model_limits.py).

Workers are processes that import this module and serve the queue:

    autodurable worker --import pipeline        # from this folder, or with it on PYTHONPATH

and the parent is ``python ingest.py BATCH --documents N``. Both need
``INGEST_LLM_URL`` (the model endpoint, see llm_endpoint.py) and
``INGEST_DATA`` (the folder of ``results.db``, the summaries; default: the
current directory). The workflow state is in ``.autodurable/state.db`` (or
``$AUTODURABLE_DATABASE_URL``, PostgreSQL too), shared by all of them.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

from model_limits import CONCURRENCY, RATE, WORKER_CONCURRENCY

import autodurable

summaries = autodurable.Queue(
    "summaries", concurrency=CONCURRENCY, worker_concurrency=WORKER_CONCURRENCY, rate=RATE
)

WORDS = [
    *("durable", "queue", "worker", "model", "token", "summary", "invoice", "contract"),
    *("report", "customer", "shipment", "ledger", "audit", "policy", "claim", "renewal"),
    *("quarter", "revenue", "forecast", "risk", "incident", "review", "memo", "draft"),
]


def document_text(doc_id: str) -> str:
    """The text of a document: made up, but always the same for the same id."""
    rng = random.Random(doc_id)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120)))


def results_path() -> Path:
    return Path(os.environ.get("INGEST_DATA", ".")) / "results.db"


def open_results() -> sqlite3.Connection:
    """The summaries table: one row per document, whichever process writes it."""
    conn = sqlite3.connect(results_path(), timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS summaries (doc_id TEXT PRIMARY KEY, batch TEXT, "
        "summary TEXT, call INTEGER, writes INTEGER, stored_at REAL, pid INTEGER)"
    )
    return conn


# -- the steps: each one talks to the outside world -------------------------------


@autodurable.step
def list_documents(batch: dict[str, Any]) -> list[str]:
    """The ids of the batch's documents (a real pipeline would list a bucket)."""
    return [f"{batch['name']}-doc-{n:05d}" for n in range(batch["documents"])]


@autodurable.step(retries=5)
def call_llm(doc_id: str) -> dict[str, Any]:
    """Ask the model for a summary of the document: {"summary", "call"}."""
    request = urllib.request.Request(
        os.environ["INGEST_LLM_URL"] + "/summarize",
        data=json.dumps({"doc": doc_id, "text": document_text(doc_id)}).encode(),
        headers={"Content-Type": "application/json", "X-Worker-Pid": str(os.getpid())},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


@autodurable.step(retries=5)
def store_summary(batch: str, doc_id: str, answer: dict[str, Any]) -> None:
    """Store the summary, keyed by the document id: storing it again changes nothing
    but the `writes` count (which shows that it happened)."""
    conn = open_results()
    try:
        conn.execute(
            "INSERT INTO summaries VALUES (?, ?, ?, ?, 1, ?, ?) "
            "ON CONFLICT (doc_id) DO UPDATE SET writes = writes + 1",
            (doc_id, batch, answer["summary"], answer["call"], time.time(), os.getpid()),
        )
    finally:
        conn.close()


# -- the workflows ----------------------------------------------------------------


@autodurable.workflow(name="summarize_document")
def summarize_document(batch: str, doc_id: str) -> dict[str, Any]:
    """One document: the model's summary, stored."""
    answer = call_llm(doc_id)
    store_summary(batch, doc_id, answer)
    return {"doc": doc_id, "words": len(answer["summary"].split()), "call": answer["call"]}


@autodurable.workflow(name="ingest")
def ingest(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch: fan out one queued workflow per document, then gather them all."""
    doc_ids = list_documents(batch)
    handles = [
        # A workflow id of our own per document: enqueueing it again (the parent
        # resumed after a crash) finds it there and enqueues nothing.
        summaries.enqueue(summarize_document, batch["name"], doc_id, workflow_id=f"sum-{doc_id}")
        for doc_id in doc_ids
    ]
    results = [handle.result() for handle in handles]
    return {
        "batch": batch["name"],
        "documents": len(results),
        "summary_words": sum(result["words"] for result in results),
        "distinct": len({result["doc"] for result in results}),
    }
