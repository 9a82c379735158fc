"""Question answering over the staff handbook: ingestion, retrieval and the HTTP API."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import diskcache
import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from openai import AsyncOpenAI
from pydantic import BaseModel, Field
from pypdf import PdfReader
from qdrant_client import AsyncQdrantClient
from qdrant_client.models import (
    Distance,
    FieldCondition,
    Filter,
    FilterSelector,
    MatchValue,
    PointStruct,
    VectorParams,
)

log = logging.getLogger(__name__)

EMBED_MODEL = "text-embedding-3-small"
EMBED_DIMENSIONS = 1536
CHAT_MODEL = os.environ.get("RAG_CHAT_MODEL", "gpt-4o-mini")
COLLECTION = os.environ.get("RAG_COLLECTION", "handbook")
CONTEXT_BUDGET = 3000
FEEDBACK_LOG = Path(os.environ.get("RAG_FEEDBACK_LOG", "/var/log/handbook-rag/feedback.jsonl"))
WORD = re.compile(r"\S+")
TAG = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)
SPACE = re.compile(r"[ \t]+")

openai_client = AsyncOpenAI()
qdrant = AsyncQdrantClient(url=os.environ.get("QDRANT_URL", "http://localhost:6333"))


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    index: int
    text: str
    source: str

    @property
    def point_id(self) -> str:  # expect: plain
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.doc_id}#{self.index}"))


class AskRequest(BaseModel):
    question: str = Field(min_length=3, max_length=2000)
    source: str | None = None


class IngestRequest(BaseModel):
    urls: list[str] = Field(default_factory=list, max_length=50)


class FeedbackRequest(BaseModel):
    question: str
    answer: str
    helpful: bool


# -- text ----------------------------------------------------------------------


def normalise_whitespace(text: str) -> str:  # expect: plain
    lines = (SPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:  # expect: plain
    return normalise_whitespace(TAG.sub(" ", html))


def count_tokens(text: str) -> int:  # expect: plain
    return math.ceil(len(WORD.findall(text)) * 1.3)


def chunk_text(text: str, max_tokens: int = 400, overlap: int = 1) -> list[str]:  # expect: plain
    chunks: list[str] = []
    window: list[str] = []
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    for paragraph in paragraphs:
        if window and count_tokens(" ".join([*window, paragraph])) > max_tokens:
            chunks.append("\n\n".join(window))
            window = window[-overlap:] if overlap else []
        window.append(paragraph)
    if window:
        chunks.append("\n\n".join(window))
    return chunks


def make_chunks(source: str, text: str) -> list[Chunk]:  # expect: plain
    doc_id = hashlib.sha1(source.encode()).hexdigest()[:16]
    return [Chunk(doc_id, i, body, source) for i, body in enumerate(chunk_text(text))]


def fit_to_budget(passages: list[dict[str, Any]], budget: int) -> list[dict]:  # expect: plain
    kept, used = [], 0
    for passage in passages:
        cost = count_tokens(passage["text"])
        if used + cost > budget:
            break
        kept.append(passage)
        used += cost
    return kept


def build_prompt(question: str, passages: list[dict[str, Any]]) -> list[dict]:  # expect: plain
    context = "\n\n".join(f"[{i + 1}] ({p['source']})\n{p['text']}" for i, p in enumerate(passages))
    return [
        {
            "role": "system",
            "content": "Answer from the numbered handbook excerpts only and cite them like [2]. "
            "If they do not contain the answer, say so.",
        },
        {"role": "user", "content": f"Excerpts:\n{context}\n\nQuestion: {question}"},
    ]


def cache_key(question: str, collection: str, source: str | None) -> str:  # expect: plain
    raw = json.dumps([collection, source, " ".join(question.lower().split())])
    return hashlib.sha256(raw.encode()).hexdigest()


# -- documents -----------------------------------------------------------------


async def fetch_page(client: httpx.AsyncClient, url: str) -> str:  # expect: step
    response = await client.get(url, follow_redirects=True, timeout=20)
    response.raise_for_status()
    return html_to_text(response.text)


async def fetch_bytes(client, url: str) -> bytes:  # expect: step
    response = await client.get(url, follow_redirects=True, timeout=60)
    response.raise_for_status()
    return response.content


async def fetch_sitemap(client: httpx.AsyncClient, url: str) -> list[str]:  # expect: step
    response = await client.get(url, timeout=20)
    response.raise_for_status()
    return re.findall(r"<loc>\s*([^<\s]+)\s*</loc>", response.text)


async def download_pdf(client: httpx.AsyncClient, url: str, dest: Path) -> Path:  # expect: step
    target = dest / url.rstrip("/").rsplit("/", 1)[-1]
    async with client.stream("GET", url, follow_redirects=True, timeout=60) as response:
        response.raise_for_status()
        with target.open("wb") as fh:
            async for chunk in response.aiter_bytes():
                fh.write(chunk)
    return target


async def mirror_pdfs(urls: list[str], dest: Path) -> list[Path]:  # expect: workflow
    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(download_pdf(client, url, dest) for url in urls)))


def read_pdf(path: Path) -> str:  # expect: step
    reader = PdfReader(path)
    return normalise_whitespace("\n\n".join(page.extract_text() or "" for page in reader.pages))


def pdf_bytes_to_text(data: bytes) -> str:  # expect: plain
    reader = PdfReader(io.BytesIO(data))
    return normalise_whitespace("\n\n".join(page.extract_text() or "" for page in reader.pages))


async def load_pdf(path: Path) -> str:  # expect: workflow
    return await asyncio.to_thread(read_pdf, path)


def list_pdfs(folder: Path) -> list[Path]:  # expect: step
    return sorted(folder.rglob("*.pdf"))


# -- embeddings and caches -----------------------------------------------------


async def embed_texts(texts: list[str]) -> list[list[float]]:  # expect: step
    response = await openai_client.embeddings.create(model=EMBED_MODEL, input=texts)
    return [item.embedding for item in response.data]


async def embed_in_batches(texts: list[str], batch_size: int = 64) -> list:  # expect: workflow
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        vectors.extend(await embed_texts(texts[start : start + batch_size]))
    return vectors


class EmbeddingMemo:
    """Query embeddings remembered for the life of the process."""

    def __init__(self, max_items: int = 2048) -> None:  # expect: plain
        self.max_items = max_items
        self._items: dict[str, list[float]] = {}

    def get(self, text: str) -> list[float] | None:  # expect: plain
        return self._items.get(text)

    def put(self, text: str, vector: list[float]) -> None:  # expect: plain
        if len(self._items) >= self.max_items:
            self._items.pop(next(iter(self._items)))
        self._items[text] = vector


memo = EmbeddingMemo()


async def embed_query(question: str) -> list[float]:  # expect: workflow
    cached = memo.get(question)
    if cached is not None:
        return cached
    [vector] = await embed_texts([question])
    memo.put(question, vector)
    return vector


@lru_cache(maxsize=1)
def answer_cache() -> diskcache.Cache:  # expect: step
    return diskcache.Cache(os.environ.get("RAG_CACHE_DIR", "/var/cache/handbook-rag"))


def cached_answer(key: str) -> dict[str, Any] | None:  # expect: step
    return answer_cache().get(key)


def store_answer(key: str, answer: dict[str, Any], ttl: int = 6 * 3600) -> None:  # expect: step
    answer_cache().set(key, answer, expire=ttl)


def clear_answer_cache() -> int:  # expect: step
    return answer_cache().clear()


# -- vector store --------------------------------------------------------------


class VectorRepository:
    def __init__(self, client: AsyncQdrantClient, collection: str) -> None:  # expect: plain
        self.client = client
        self.collection = collection

    @staticmethod
    def source_filter(source: str | None) -> Filter | None:  # expect: plain
        if source is None:
            return None
        return Filter(must=[FieldCondition(key="source", match=MatchValue(value=source))])

    @staticmethod
    def to_points(chunks: list[Chunk], vectors: list[list[float]]) -> list:  # expect: plain
        return [
            PointStruct(
                id=chunk.point_id,
                vector=vector,
                payload={"doc_id": chunk.doc_id, "source": chunk.source, "text": chunk.text},
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]

    async def ensure_collection(self, dimension: int) -> None:  # expect: step
        if not await self.client.collection_exists(self.collection):
            vectors = VectorParams(size=dimension, distance=Distance.COSINE)
            await self.client.create_collection(self.collection, vectors_config=vectors)

    async def upsert(self, chunks: list[Chunk], vectors: list[list[float]]) -> None:  # expect: step
        await self.client.upsert(self.collection, points=self.to_points(chunks, vectors))

    async def delete_document(self, doc_id: str) -> None:  # expect: step
        selector = Filter(must=[FieldCondition(key="doc_id", match=MatchValue(value=doc_id))])
        await self.client.delete(self.collection, points_selector=FilterSelector(filter=selector))

    async def search(  # expect: step
        self, vector: list[float], limit: int = 8, source: str | None = None
    ) -> list[dict[str, Any]]:
        response = await self.client.query_points(
            self.collection,
            query=vector,
            limit=limit,
            query_filter=self.source_filter(source),
            with_payload=True,
        )
        return [{**point.payload, "score": point.score} for point in response.points]

    async def count(self) -> int:  # expect: step
        return (await self.client.count(self.collection, exact=True)).count

    async def get_chunk(self, point_id: str) -> dict[str, Any] | None:  # expect: step
        points = await self.client.retrieve(self.collection, ids=[point_id], with_payload=True)
        return points[0].payload if points else None

    async def list_sources(self, page_size: int = 256) -> list[str]:  # expect: step
        sources: set[str] = set()
        offset = None
        while True:
            points, offset = await self.client.scroll(
                self.collection, limit=page_size, offset=offset, with_payload=["source"]
            )
            sources.update(point.payload["source"] for point in points)
            if offset is None:
                return sorted(sources)


def get_repository() -> VectorRepository:  # expect: plain
    return VectorRepository(qdrant, COLLECTION)


# -- ingestion -----------------------------------------------------------------


async def ingest_text(repo: VectorRepository, source: str, text: str) -> int:  # expect: workflow
    chunks = make_chunks(source, text)
    if not chunks:
        return 0
    vectors = await embed_in_batches([chunk.text for chunk in chunks])
    await repo.delete_document(chunks[0].doc_id)
    await repo.upsert(chunks, vectors)
    log.info("ingested %s as %d chunks", source, len(chunks))
    return len(chunks)


async def ingest_url(  # expect: workflow
    repo: VectorRepository, client: httpx.AsyncClient, url: str
) -> int:
    if url.lower().endswith(".pdf"):
        text = await asyncio.to_thread(pdf_bytes_to_text, await fetch_bytes(client, url))
    else:
        text = await fetch_page(client, url)
    return await ingest_text(repo, url, text)


async def ingest_sitemap(repo: VectorRepository, sitemap_url: str) -> dict:  # expect: workflow
    async with httpx.AsyncClient(timeout=30) as client:
        urls = await fetch_sitemap(client, sitemap_url)
    return await ingest_all(repo, urls, [])


async def ingest_pdf(repo: VectorRepository, path: Path) -> int:  # expect: workflow
    return await ingest_text(repo, path.name, await load_pdf(path))


async def ingest_all(  # expect: workflow
    repo: VectorRepository, urls: list[str], pdfs: list[Path]
) -> dict[str, int]:
    headers = {"User-Agent": "handbook-rag/1.4"}
    async with httpx.AsyncClient(headers=headers) as client:
        async with asyncio.TaskGroup() as group:
            tasks = {url: group.create_task(ingest_url(repo, client, url)) for url in urls}
            for path in pdfs:
                tasks[path.name] = group.create_task(ingest_pdf(repo, path))
    return {name: task.result() for name, task in tasks.items()}


async def reindex_folder(repo: VectorRepository, folder: Path) -> dict:  # expect: workflow
    pdfs = await asyncio.to_thread(list_pdfs, folder)
    results = await asyncio.gather(*(ingest_pdf(repo, p) for p in pdfs), return_exceptions=True)
    for path, result in zip(pdfs, results, strict=True):
        if isinstance(result, Exception):
            log.error("could not ingest %s: %s", path, result)
    return {p.name: r for p, r in zip(pdfs, results, strict=True) if isinstance(r, int)}


# -- answering -----------------------------------------------------------------


async def is_flagged(text: str) -> bool:  # expect: step
    result = await openai_client.moderations.create(model="omni-moderation-latest", input=text)
    return result.results[0].flagged


async def generate_answer(messages: list[dict[str, str]]) -> str:  # expect: step
    completion = await openai_client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, temperature=0.1
    )
    return completion.choices[0].message.content or ""


def answered_at() -> str:  # expect: step
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def answer_question(  # expect: workflow
    repo: VectorRepository, question: str, source: str | None = None
) -> dict[str, Any]:
    if await is_flagged(question):
        raise HTTPException(status_code=400, detail="question rejected by moderation")
    key = cache_key(question, repo.collection, source)
    hit = await asyncio.to_thread(cached_answer, key)
    if hit is not None:
        return hit
    passages = await repo.search(await embed_query(question), source=source)
    passages = fit_to_budget(passages, CONTEXT_BUDGET)
    if not passages:
        return {"answer": "I couldn't find that in the handbook.", "sources": []}
    result = {
        "answer": await generate_answer(build_prompt(question, passages)),
        "sources": sorted({p["source"] for p in passages}),
        "answered_at": answered_at(),
    }
    await asyncio.to_thread(store_answer, key, result)
    return result


def append_feedback(path: Path, record: dict[str, Any]) -> None:  # expect: step
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


# -- HTTP ----------------------------------------------------------------------

Repository = Annotated[VectorRepository, Depends(get_repository)]
router = APIRouter(prefix="/qa", tags=["qa"])


@router.post("/ask")
async def ask(body: AskRequest, repo: Repository) -> dict[str, Any]:  # expect: workflow
    return await answer_question(repo, body.question, body.source)


@router.post("/ingest", status_code=202)
async def ingest(body: IngestRequest, repo: Repository) -> dict[str, int]:  # expect: workflow
    if not body.urls:
        raise HTTPException(status_code=422, detail="no URLs given")
    return await ingest_all(repo, body.urls, [])


@router.get("/stats")
async def stats(repo: Repository) -> dict[str, Any]:  # expect: workflow
    return {"collection": repo.collection, "chunks": await repo.count()}


@router.get("/sources")
async def sources(repo: Repository) -> list[str]:  # expect: workflow
    return await repo.list_sources()


@router.get("/chunks/{point_id}")
async def chunk(point_id: str, repo: Repository) -> dict[str, Any]:  # expect: workflow
    payload = await repo.get_chunk(point_id)
    if payload is None:
        raise HTTPException(status_code=404, detail="no such chunk")
    return payload


@router.delete("/cache")
async def clear_cache() -> dict[str, int]:  # expect: workflow
    return {"removed": await asyncio.to_thread(clear_answer_cache)}


@router.post("/feedback", status_code=204)
async def feedback(body: FeedbackRequest) -> None:  # expect: step
    record = {**body.model_dump(), "at": datetime.now(timezone.utc).isoformat()}
    await asyncio.to_thread(append_feedback, FEEDBACK_LOG, record)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:  # expect: workflow
    await get_repository().ensure_collection(EMBED_DIMENSIONS)
    yield


def create_app() -> FastAPI:  # expect: plain
    app = FastAPI(title="Handbook QA", lifespan=lifespan)
    app.include_router(router)
    return app
