"""Document summarisation and retrieval pipeline: an OpenAI client built by a factory and
held on a class, an Anthropic classifier, embeddings in Qdrant, answers cached on disk as
JSON, retries with sleep.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import anthropic
from openai import OpenAI, RateLimitError
from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from .media_job import s3

EMBED_MODEL = "text-embedding-3-small"
EMBED_DIM = 1536

vectors = QdrantClient(url=os.environ.get("QDRANT_URL", "http://localhost:6333"))


# --- pure: prompts, keys, parsing ---------------------------------------------------------


def cache_key(model: str, messages: list[dict[str, str]]) -> str:  # expect: plain
    blob = json.dumps({"model": model, "messages": messages}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def chunk_text(text: str, size: int = 1200, overlap: int = 200) -> list[str]:  # expect: plain
    if size <= overlap:
        raise ValueError("size must exceed overlap")
    step = size - overlap
    return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]


def build_summary_prompt(title: str, text: str) -> list[dict[str, str]]:  # expect: plain
    return [
        {"role": "system", "content": "You write three-sentence summaries for an ops team."},
        {"role": "user", "content": f"Title: {title}\n\n{text[:12000]}"},
    ]


def build_classify_prompt(text: str, labels: list[str]) -> str:  # expect: plain
    options = ", ".join(labels)
    return f"Classify the text into any of: {options}. Reply with a comma list.\n\n{text}"


def build_answer_prompt(question: str, context: list[str]) -> list[dict[str, str]]:  # expect: plain
    joined = "\n---\n".join(context)
    return [
        {"role": "system", "content": "Answer only from the context. Say so if it is missing."},
        {"role": "user", "content": f"Context:\n{joined}\n\nQuestion: {question}"},
    ]


def parse_labels(reply: str, allowed: list[str]) -> list[str]:  # expect: plain
    wanted = {part.strip().lower() for part in reply.split(",")}
    return [label for label in allowed if label.lower() in wanted]


def extract_text(response: Any) -> str:  # expect: plain
    return response.choices[0].message.content or ""


def anthropic_text(message: Any) -> str:  # expect: plain
    return "".join(block.text for block in message.content if block.type == "text")


def to_points(  # expect: plain
    doc_id: str, chunks: list[str], embeddings: list[list[float]]
) -> list[PointStruct]:
    return [
        PointStruct(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}#{i}")),
            vector=vector,
            payload={"doc_id": doc_id, "chunk": i, "text": chunk},
        )
        for i, (chunk, vector) in enumerate(zip(chunks, embeddings, strict=True))
    ]


def cosine(a: list[float], b: list[float]) -> float:  # expect: plain
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm if norm else 0.0


def backoff(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:  # expect: plain
    return min(cap, base * 2**attempt)


def token_estimate(text: str) -> int:  # expect: plain
    return max(1, len(text) // 4)


def embeddings_request(  # expect: plain
    texts: list[str], model: str = EMBED_MODEL
) -> dict[str, Any]:
    return {"model": model, "input": [t.replace("\n", " ") for t in texts]}


def results_path(out_dir: Path, run: str) -> Path:  # expect: plain
    return out_dir / run / "summaries.json"


def sample_for_eval(items: list[Any], k: int, seed: int) -> list[Any]:  # expect: plain
    return random.Random(seed).sample(items, min(k, len(items)))


# --- clients: factories and cached getters --------------------------------------------------


def make_llm_client(settings: dict[str, str]):  # expect: plain
    return OpenAI(
        api_key=settings.get("api_key") or os.environ.get("OPENAI_API_KEY"),
        base_url=settings.get("base_url"),
        max_retries=0,
        timeout=float(settings.get("timeout", "60")),
    )


@lru_cache(maxsize=1)
def openai_client() -> OpenAI:  # expect: plain
    return OpenAI()


# --- I/O: model calls, vector store, disk ---------------------------------------------------


def embed(texts: list[str], model: str = EMBED_MODEL) -> list[list[float]]:  # expect: step
    response = openai_client().embeddings.create(**embeddings_request(texts, model))
    return [item.embedding for item in response.data]


def moderate(client: OpenAI, text: str) -> bool:  # expect: step
    return client.moderations.create(input=text).results[0].flagged


def ensure_collection(  # expect: step
    name: str, dim: int = EMBED_DIM, client: QdrantClient = vectors
) -> None:
    if not client.collection_exists(name):
        client.create_collection(
            collection_name=name, vectors_config=VectorParams(size=dim, distance=Distance.COSINE)
        )


def upsert_chunks(collection: str, points: list[PointStruct]) -> None:  # expect: step
    vectors.upsert(collection_name=collection, points=points, wait=True)


def search_similar(client, collection, query_vector, k=5):  # expect: step
    hits = client.query_points(collection_name=collection, query=query_vector, limit=k).points
    return [hit.payload for hit in hits]


def read_doc(path: Path) -> str:  # expect: step
    return path.read_text(encoding="utf-8")


def write_results(path: Path, results: dict[str, str]) -> None:  # expect: step
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True), encoding="utf-8")


def load_transcript(key: str) -> str:  # expect: step
    obj = s3.get_object(Bucket=os.environ.get("MEDIA_BUCKET", "media"), Key=key)
    return obj["Body"].read().decode("utf-8")


def run_id() -> str:  # expect: step
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def shuffle_batch(items: list[Any]) -> list[Any]:  # expect: step
    batch = list(items)
    random.shuffle(batch)
    return batch


class DiskCache:
    """JSON files under a root folder, one per key."""

    def __init__(self, root: Path) -> None:  # expect: plain
        self.root = root

    def path_for(self, key: str) -> Path:  # expect: plain
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:  # expect: step
        path = self.path_for(key)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def put(self, key: str, value: dict[str, Any]) -> None:  # expect: step
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


class Summariser:
    def __init__(  # expect: plain
        self, settings: dict[str, str], cache: DiskCache, model: str = "gpt-4o-mini"
    ) -> None:
        self.client = make_llm_client(settings)
        self.cache = cache
        self.model = model

    def _complete(self, messages: list[dict[str, str]], attempts: int = 5) -> str:  # expect: step
        for attempt in range(attempts):
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0
                )
                return extract_text(response)
            except RateLimitError:
                time.sleep(backoff(attempt))
        raise RuntimeError(f"rate limited {attempts} times")

    def summarise(self, title: str, text: str) -> str:  # expect: workflow
        messages = build_summary_prompt(title, text)
        key = cache_key(self.model, messages)
        hit = self.cache.get(key)
        if hit is not None:
            return hit["text"]
        summary = self._complete(messages)
        self.cache.put(key, {"text": summary})
        return summary

    def summarise_many(self, docs: list[tuple[str, str]]) -> dict[str, str]:  # expect: workflow
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {title: pool.submit(self.summarise, title, text) for title, text in docs}
        return {title: future.result() for title, future in futures.items()}

    def prompt_preview(self, title: str, text: str) -> str:  # expect: plain
        return "\n\n".join(m["content"] for m in build_summary_prompt(title, text))


class Classifier:
    def __init__(  # expect: plain
        self, labels: list[str], model: str = "claude-3-5-haiku-latest"
    ) -> None:
        self.client = anthropic.Anthropic()
        self.labels = labels
        self.model = model

    def classify(self, text: str) -> list[str]:  # expect: step
        message = self.client.messages.create(
            model=self.model,
            max_tokens=100,
            messages=[{"role": "user", "content": build_classify_prompt(text, self.labels)}],
        )
        return parse_labels(anthropic_text(message), self.labels)

    def classify_batch(self, texts: list[str]) -> list[list[str]]:  # expect: workflow
        return [self.classify(text) for text in texts]


# --- pipeline -------------------------------------------------------------------------------


def index_document(doc_id: str, text: str, collection: str = "docs") -> int:  # expect: workflow
    chunks = chunk_text(text)
    points = to_points(doc_id, chunks, embed(chunks))
    upsert_chunks(collection, points)
    return len(points)


def retrieve_context(  # expect: workflow
    question: str, collection: str = "docs", k: int = 5
) -> list[str]:
    [query_vector] = embed([question])
    return [hit["text"] for hit in search_similar(vectors, collection, query_vector, k)]


def answer(  # expect: step
    question: str, client: OpenAI | None = None, collection: str = "docs"
) -> str:
    context = retrieve_context(question, collection)
    response = (client or openai_client()).chat.completions.create(
        model="gpt-4o-mini", messages=build_answer_prompt(question, context)
    )
    return extract_text(response)


def summarise_transcript(key: str, summariser: Summariser) -> str:  # expect: workflow
    return summariser.summarise(key, load_transcript(key))


def run_pipeline(  # expect: workflow
    doc_paths: list[Path], out_dir: Path, settings: dict[str, str]
) -> Path:
    summariser = Summariser(settings, DiskCache(out_dir / ".cache"))
    docs = [(path.stem, read_doc(path)) for path in doc_paths]
    results = summariser.summarise_many(docs)
    target = results_path(out_dir, run_id())
    write_results(target, results)
    return target


def index_folder(paths: list[Path], collection: str = "docs") -> int:  # expect: workflow
    ensure_collection(collection)
    return sum(index_document(path.stem, read_doc(path), collection) for path in paths)
