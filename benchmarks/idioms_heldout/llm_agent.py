"""A research agent: tools registered in a dict by a decorator, an LLM client
built by a factory and kept on the agent, a module-level httpx client for the
web tools, a Chroma collection for notes, and thread and asyncio fan-outs."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import json
import operator
import os
import random
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chromadb
import httpx
from anthropic import Anthropic, AsyncAnthropic
from chromadb.api import ClientAPI
from openai import OpenAI

HTTP = httpx.Client(
    timeout=20.0, headers={"User-Agent": "research-agent/1.0"}, follow_redirects=True
)
SEARCH_URL = os.environ.get("SEARCH_URL", "https://search.example.com/v1/search")
TOOLS: dict[str, Callable[..., Any]] = {}
EXAMPLES = {
    "sql": ["select 1", "select count(*) from orders"],
    "regex": [r"^\d{4}-\d{2}-\d{2}$", r"[A-Z]{3}"],
}
_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
}


def tool(fn: Callable[..., Any]) -> Callable[..., Any]:  # expect: plain
    TOOLS[fn.__name__] = fn
    return fn


@tool
def web_search(query: str, k: int = 5) -> list[dict]:  # expect: step
    """Search the web; returns titles, urls and snippets."""
    response = HTTP.get(SEARCH_URL, params={"q": query, "n": k})
    response.raise_for_status()
    return response.json()["results"][:k]


@tool
def read_page(url: str, max_chars: int = 4000) -> str:  # expect: step
    """The visible text of a web page."""
    with httpx.Client(timeout=15.0, follow_redirects=True) as client:
        html = client.get(url).text
    return strip_tags(html)[:max_chars]


def strip_tags(html: str) -> str:  # expect: plain
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()


def _evaluate(node: ast.AST) -> float:  # expect: plain
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("unsupported expression")


@tool
def calculator(expression: str) -> float:  # expect: plain
    """Evaluate an arithmetic expression."""
    return _evaluate(ast.parse(expression, mode="eval").body)


@tool
def local_time(timezone: str = "UTC") -> str:  # expect: step
    """The current time in a time zone."""
    return datetime.now(ZoneInfo(timezone)).isoformat(timespec="seconds")


@tool
def example_of(topic: str) -> str:  # expect: step
    """An example snippet for a topic."""
    return random.choice(EXAMPLES.get(topic, ["no example"]))


@tool
def search_notes(query: str, k: int = 4) -> list[str]:  # expect: step
    """Passages from the team's notes that match the query."""
    hits = notes_collection().query(query_embeddings=embed([query]), n_results=k)
    return hits["documents"][0]


def tool_schema(fn: Callable[..., Any]) -> dict[str, Any]:  # expect: plain
    params = inspect.signature(fn).parameters
    properties = {
        name: {"type": "number" if p.annotation in ("int", "float") else "string"}
        for name, p in params.items()
    }
    required = [name for name, p in params.items() if p.default is inspect.Parameter.empty]
    return {
        "type": "function",
        "function": {
            "name": fn.__name__,
            "description": (fn.__doc__ or "").strip(),
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def tool_schemas(names: list[str] | None = None) -> list[dict[str, Any]]:  # expect: plain
    return [tool_schema(TOOLS[name]) for name in (names or sorted(TOOLS))]


def research_tools() -> dict[str, Callable[..., Any]]:  # expect: plain
    return {"web_search": web_search, "read_page": read_page, "calculator": calculator}


def make_llm(provider: str | None = None) -> OpenAI | Anthropic:  # expect: plain
    provider = provider or os.environ.get("LLM_PROVIDER", "openai")
    if provider == "anthropic":
        return Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"], max_retries=2)
    return OpenAI(api_key=os.environ.get("OPENAI_API_KEY"), timeout=60.0)


@lru_cache(maxsize=1)
def embedder() -> OpenAI:  # expect: plain
    return OpenAI()


def embed(texts: list[str], client: OpenAI | None = None) -> list[list[float]]:  # expect: step
    result = (client or embedder()).embeddings.create(model="text-embedding-3-small", input=texts)
    return [item.embedding for item in result.data]


@lru_cache(maxsize=1)
def chroma() -> ClientAPI:  # expect: step
    return chromadb.HttpClient(host=os.environ.get("CHROMA_HOST", "localhost"), port=8000)


def notes_collection():  # expect: step
    return chroma().get_or_create_collection("notes", metadata={"hnsw:space": "cosine"})


def chunk(text: str, size: int = 800, overlap: int = 120) -> list[str]:  # expect: plain
    step = size - overlap
    return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]


def chunk_ids(source: str, pieces: list[str]) -> list[str]:  # expect: plain
    return [hashlib.sha1(f"{source}:{i}:{p}".encode()).hexdigest() for i, p in enumerate(pieces)]


def index_text(source: str, text: str) -> int:  # expect: step
    pieces = chunk(text)
    notes_collection().add(
        ids=chunk_ids(source, pieces),
        documents=pieces,
        embeddings=embed(pieces),
        metadatas=[{"source": source}] * len(pieces),
    )
    return len(pieces)


def index_folder(folder: Path) -> int:  # expect: step
    return sum(
        index_text(p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.md"))
    )


def index_many(texts: dict[str, str]) -> int:  # expect: workflow
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(index_text, source, text) for source, text in texts.items()]
        return sum(future.result() for future in futures)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Reply:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)

    def as_message(self) -> dict[str, Any]:  # expect: plain
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message


def reply_from_openai(message: Any) -> Reply:  # expect: plain
    calls = [
        ToolCall(c.id, c.function.name, c.function.arguments) for c in (message.tool_calls or [])
    ]
    return Reply(message.content or "", calls)


def reply_from_claude(response: Any) -> Reply:  # expect: plain
    text = "".join(b.text for b in response.content if b.type == "text")
    calls = [
        ToolCall(b.id, b.name, json.dumps(b.input))
        for b in response.content
        if b.type == "tool_use"
    ]
    return Reply(text, calls)


class Agent:
    def __init__(  # expect: plain
        self,
        llm: Any = None,
        model: str = "gpt-4o-mini",
        tools: dict[str, Callable[..., Any]] | None = None,
        max_turns: int = 6,
    ) -> None:
        self.llm = llm or make_llm("openai")
        self.model = model
        self.tools = tools if tools is not None else TOOLS
        self.max_turns = max_turns
        self.transcript: list[Reply] = []

    def system_prompt(self) -> str:  # expect: plain
        names = ", ".join(sorted(self.tools))
        return f"You are a careful research assistant. Tools: {names}. Cite sources."

    def complete(self, messages: list[dict[str, Any]]) -> Reply:  # expect: step
        response = self.llm.chat.completions.create(
            model=self.model, messages=messages, tools=tool_schemas(sorted(self.tools))
        )
        return reply_from_openai(response.choices[0].message)

    def call_tool(self, name: str, arguments: str) -> str:  # expect: workflow
        fn = self.tools.get(name)
        if fn is None:
            return json.dumps({"error": f"unknown tool {name}"})
        return json.dumps(fn(**json.loads(arguments or "{}")), default=str)

    def run(self, question: str) -> str:  # expect: workflow
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_prompt()},
            {"role": "user", "content": question},
        ]
        for _ in range(self.max_turns):
            reply = self.complete(messages)
            self.transcript.append(reply)
            if not reply.tool_calls:
                return reply.content
            messages.append(reply.as_message())
            for call in reply.tool_calls:
                result = self.call_tool(call.name, call.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return "I could not finish within the turn budget."

    def reset(self) -> None:  # expect: plain
        self.transcript.clear()


class ClaudeAgent(Agent):
    def __init__(  # expect: plain
        self, model: str = "claude-3-5-sonnet-latest", **kwargs: Any
    ) -> None:
        super().__init__(llm=make_llm("anthropic"), model=model, **kwargs)

    def complete(self, messages: list[dict[str, Any]]) -> Reply:  # expect: step
        tools = [
            {"name": s["function"]["name"], "input_schema": s["function"]["parameters"]}
            for s in tool_schemas(sorted(self.tools))
        ]
        response = self.llm.messages.create(
            model=self.model,
            system=messages[0]["content"],
            messages=messages[1:],
            tools=tools,
            max_tokens=1024,
        )
        return reply_from_claude(response)


def build_agent(provider: str = "openai") -> Agent:  # expect: plain
    return ClaudeAgent() if provider == "anthropic" else Agent(llm=make_llm(provider))


def answer(question: str) -> str:  # expect: workflow
    return build_agent(os.environ.get("LLM_PROVIDER", "openai")).run(question)


def answer_all(questions: list[str], agent: Agent | None = None) -> list[str]:  # expect: workflow
    agent = agent or build_agent()
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(agent.run, questions))


async def summarise(client: AsyncAnthropic, text: str) -> str:  # expect: step
    message = await client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=300,
        messages=[{"role": "user", "content": f"Summarise in three sentences:\n\n{text}"}],
    )
    return message.content[0].text


async def summarise_pages(urls: list[str]) -> list[str]:  # expect: workflow
    pages = await asyncio.gather(*(asyncio.to_thread(read_page, url) for url in urls))
    client = AsyncAnthropic()
    return list(await asyncio.gather(*(summarise(client, page) for page in pages)))


def stream_reply(llm, prompt: str) -> str:  # expect: step
    parts = []
    stream = llm.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True
    )
    for event in stream:
        parts.append(event.choices[0].delta.content or "")
    return "".join(parts)
