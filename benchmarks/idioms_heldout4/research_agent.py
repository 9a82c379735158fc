"""A research agent: an OpenAI chat model that calls tools (web search, page reading,
a vector memory, a calculator, the time) dispatched through a table of callables, with
an httpx client passed to the tools and an async variant that reads pages in a TaskGroup."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import operator
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import httpx
import openai
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

ToolFn = Callable[..., Any]
MEMORY_NAMESPACE = uuid.UUID("0b8f5d3e-8a51-4c8e-b1f4-93a0f6a2d7c4")
TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.DOTALL | re.IGNORECASE)
SPACES = re.compile(r"\s+")
OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
}


@dataclass(frozen=True)
class AgentSettings:
    model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    search_url: str = "https://search.internal.example/api/search"
    vector_url: str = "http://vectors.internal.example:6333"
    max_turns: int = 8

    @classmethod
    def from_env(cls) -> AgentSettings:  # expect: plain
        return cls(
            model=os.environ.get("AGENT_MODEL", cls.model),
            search_url=os.environ.get("SEARCH_URL", cls.search_url),
            vector_url=os.environ.get("VECTOR_URL", cls.vector_url),
            max_turns=int(os.environ.get("AGENT_MAX_TURNS", "8")),
        )


# -- clients ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def openai_client() -> openai.OpenAI:  # expect: plain
    return openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"], max_retries=0, timeout=60.0)


class VectorStore:
    """A thin client for a vector search service's REST API."""

    def __init__(self, http: httpx.Client, collection: str) -> None:  # expect: plain
        self.http = http
        self.collection = collection

    def path(self, suffix: str) -> str:  # expect: plain
        return f"/collections/{self.collection}/{suffix.lstrip('/')}"

    def upsert(self, ids: list[str], vectors: list, texts: list[str]) -> None:  # expect: step
        points = [
            {"id": i, "vector": v, "payload": {"text": t}}
            for i, v, t in zip(ids, vectors, texts, strict=True)
        ]
        self.http.put(self.path("points"), json={"points": points}).raise_for_status()

    def query(self, vector: list[float], limit: int = 5) -> list[dict[str, Any]]:  # expect: step
        body = {"vector": vector, "limit": limit, "with_payload": True}
        resp = self.http.post(self.path("points/search"), json=body)
        resp.raise_for_status()
        return resp.json()["result"]


def make_vector_store(settings: AgentSettings) -> VectorStore:  # expect: plain
    return VectorStore(httpx.Client(base_url=settings.vector_url, timeout=10.0), "research")


def embed(texts: list[str], model: str = "text-embedding-3-small") -> list:  # expect: step
    resp = openai_client().embeddings.create(model=model, input=texts)
    return [item.embedding for item in resp.data]


# -- tools --------------------------------------------------------------------------


@retry(
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.5, max=8),
    retry=retry_if_exception_type(httpx.TransportError),
)
def web_search(query: str, http: httpx.Client, url: str, limit: int = 5) -> list:  # expect: step
    resp = http.get(url, params={"q": query, "count": limit})
    resp.raise_for_status()
    return [
        {"title": r.get("title", ""), "url": r["url"], "snippet": r.get("snippet", "")}
        for r in resp.json().get("results", [])
    ]


def strip_html(html: str) -> str:  # expect: plain
    return SPACES.sub(" ", TAGS.sub(" ", html)).strip()


def read_page(url: str, http) -> str:  # expect: step
    resp = http.get(url, follow_redirects=True, timeout=20.0)
    resp.raise_for_status()
    return strip_html(resp.text)[:8000]


def evaluate_node(node: ast.AST) -> float:  # expect: plain
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](evaluate_node(node.left), evaluate_node(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](evaluate_node(node.operand))
    raise ValueError("unsupported expression")


def calculator(expression: str) -> float:  # expect: plain
    return evaluate_node(ast.parse(expression, mode="eval").body)


def current_time() -> str:  # expect: step
    return datetime.now(UTC).isoformat(timespec="seconds")


def recall(query: str, store: VectorStore, limit: int = 5) -> list[str]:  # expect: workflow
    [vector] = embed([query])
    return [hit["payload"]["text"] for hit in store.query(vector, limit)]


def remember(note: str, store: VectorStore) -> str:  # expect: workflow
    note_id = str(uuid.uuid5(MEMORY_NAMESPACE, note))
    store.upsert([note_id], embed([note]), [note])
    return note_id


def ingest_notes(notes: list[str], store: VectorStore) -> list[str]:  # expect: workflow
    ids = [str(uuid.uuid5(MEMORY_NAMESPACE, note)) for note in notes]
    for start in range(0, len(notes), 64):
        batch = notes[start : start + 64]
        store.upsert(ids[start : start + 64], embed(batch), batch)
    return ids


def build_tools(settings: AgentSettings, http: httpx.Client, store: VectorStore):  # expect: plain
    return {
        "web_search": partial(web_search, http=http, url=settings.search_url),
        "read_page": partial(read_page, http=http),
        "recall": partial(recall, store=store),
        "remember": partial(remember, store=store),
        "calculator": calculator,
        "current_time": current_time,
    }


def tool_schema(name: str, description: str, **params: str) -> dict[str, Any]:  # expect: plain
    properties = {key: {"type": kind} for key, kind in params.items()}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(params)},
        },
    }


def tool_schemas() -> list[dict[str, Any]]:  # expect: plain
    return [
        tool_schema("web_search", "Search the web.", query="string"),
        tool_schema("read_page", "Read a web page as text.", url="string"),
        tool_schema("recall", "Search earlier notes.", query="string"),
        tool_schema("remember", "Save a note for later.", note="string"),
        tool_schema("calculator", "Evaluate arithmetic.", expression="string"),
        tool_schema("current_time", "The current UTC time."),
    ]


# -- messages -----------------------------------------------------------------------


def system_prompt(now: str) -> str:  # expect: plain
    return (
        "You are a careful research assistant. Use the tools to find sources, cite the "
        f"URLs you used, and say when you are unsure. The current time is {now}."
    )


def parse_arguments(raw: str | None) -> dict[str, Any]:  # expect: plain
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_message(call_id: str, result: Any) -> dict[str, str]:  # expect: plain
    content = result if isinstance(result, str) else json.dumps(result, default=str)
    return {"role": "tool", "tool_call_id": call_id, "content": content[:12000]}


def seeded_sample(items: Sequence[str], k: int, seed: int) -> list[str]:  # expect: plain
    rng = random.Random(seed)
    return rng.sample(list(items), min(k, len(items)))


def jittered_delay(attempt: int, base: float = 0.5) -> float:  # expect: step
    return base * 2**attempt + random.uniform(0, base)


# -- the agent ----------------------------------------------------------------------


class ResearchAgent:
    def __init__(self, settings: AgentSettings, tools: dict, client=None) -> None:  # expect: plain
        self.settings = settings
        self.tools = tools
        self.client = client or openai_client()
        self.messages: list[dict[str, Any]] = []

    def complete(self) -> Any:  # expect: step
        return self.client.chat.completions.create(
            model=self.settings.model, messages=self.messages, tools=tool_schemas()
        )

    def act(self, call: Any) -> dict[str, str]:  # expect: workflow
        tool = self.tools.get(call.function.name)
        if tool is None:
            return tool_message(call.id, {"error": f"unknown tool {call.function.name}"})
        try:
            result = tool(**parse_arguments(call.function.arguments))
        except Exception as exc:
            result = {"error": str(exc)}
        return tool_message(call.id, result)

    def run(self, question: str) -> str:  # expect: workflow
        self.messages = [
            {"role": "system", "content": system_prompt(current_time())},
            {"role": "user", "content": question},
        ]
        for _ in range(self.settings.max_turns):
            reply = self.complete().choices[0].message
            self.messages.append(reply.model_dump(exclude_none=True))
            if not reply.tool_calls:
                return reply.content or ""
            self.messages.extend(self.act(call) for call in reply.tool_calls)
        return "I could not finish the research in the allowed number of steps."


def ask(settings: AgentSettings, tools: dict, question: str) -> str:  # expect: workflow
    return ResearchAgent(settings, tools).run(question)


def answer_all(settings: AgentSettings, tools: dict, questions: list[str]):  # expect: workflow
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(partial(ask, settings, tools), questions))


def load_questions(path: Path) -> list[str]:  # expect: step
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def save_answers(path: Path, questions: list[str], answers: list[str]) -> None:  # expect: step
    records = [{"question": q, "answer": a} for q, a in zip(questions, answers, strict=True)]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")


def answer_file(settings: AgentSettings, tools: dict, src: Path, dest: Path):  # expect: workflow
    questions = load_questions(src)
    save_answers(dest, questions, answer_all(settings, tools, questions))
    return len(questions)


async def act_in_thread(agent: ResearchAgent, call: Any) -> dict[str, str]:  # expect: workflow
    return await asyncio.to_thread(agent.act, call)


def timed_run(agent: ResearchAgent, question: str) -> tuple[str, float]:  # expect: step
    started = time.perf_counter()
    answer = agent.run(question)
    return answer, time.perf_counter() - started


class AsyncResearcher:
    def __init__(self, client: openai.AsyncOpenAI, http: httpx.AsyncClient):  # expect: plain
        self.client = client
        self.http = http
        self.settings = AgentSettings.from_env()

    async def search(self, query: str) -> list[dict[str, Any]]:  # expect: step
        resp = await self.http.get(self.settings.search_url, params={"q": query, "count": 5})
        resp.raise_for_status()
        return resp.json().get("results", [])

    async def read(self, url: str) -> str:  # expect: step
        resp = await self.http.get(url, follow_redirects=True)
        return strip_html(resp.text)[:6000] if resp.is_success else ""

    async def read_all(self, urls: list[str]) -> list[str]:  # expect: workflow
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self.read(url)) for url in urls]
        return [task.result() for task in tasks]

    async def summarise(self, question: str, pages: list[str]) -> str:  # expect: step
        sources = "\n\n---\n\n".join(pages)
        resp = await self.client.chat.completions.create(
            model=self.settings.model,
            messages=[
                {"role": "system", "content": "Answer from the sources only."},
                {"role": "user", "content": f"{question}\n\nSources:\n{sources}"},
            ],
        )
        return resp.choices[0].message.content or ""

    async def answer(self, question: str) -> str:  # expect: workflow
        hits = await self.search(question)
        pages = await self.read_all([hit["url"] for hit in hits[:3]])
        return await self.summarise(question, [p for p in pages if p])

    async def answer_many(self, questions: list[str]) -> list[str]:  # expect: workflow
        return list(await asyncio.gather(*(self.answer(q) for q in questions)))


def main() -> None:  # expect: workflow
    settings = AgentSettings.from_env()
    with httpx.Client(timeout=20.0, headers={"User-Agent": "research-agent/1.0"}) as http:
        store = make_vector_store(settings)
        agent = ResearchAgent(settings, build_tools(settings, http, store))
        answer = agent.run(" ".join(sys.argv[1:]))
    log.info("answer: %s", answer)
