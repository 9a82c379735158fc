"""LLM clients: OpenAI, Anthropic, LiteLLM, LangChain, and agents that hold a client.

Creating a client, a chat model, a prompt or a chain makes no request;
``create``, ``completion``, ``invoke`` and ``parse`` do.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from functools import cache
from typing import Any

import anthropic
import litellm
import openai
from anthropic.types import MessageParam
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from openai import OpenAI
from pydantic import BaseModel

from .web_clients import get_json, http

MODEL = "gpt-4o-mini"
CLAUDE = "claude-3-5-sonnet-latest"


@cache
def openai_client() -> OpenAI:  # expect: plain
    return OpenAI(api_key=os.environ["OPENAI_API_KEY"], max_retries=2, timeout=60)


def claude() -> anthropic.Anthropic:  # expect: plain
    return anthropic.Anthropic()


def user_turn(text: str) -> MessageParam:  # expect: plain
    return {"role": "user", "content": text}


def chat_messages(system: str, history: list[tuple[str, str]]) -> list[dict]:  # expect: plain
    messages = [{"role": "system", "content": system}]
    for question, answer in history:
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    return messages


def complete(prompt: str, model: str = MODEL) -> str:  # expect: step
    response = openai_client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}]
    )
    return response.choices[0].message.content or ""


def embed(texts: list[str]) -> list[list[float]]:  # expect: step
    client = openai_client()
    result = client.embeddings.create(model="text-embedding-3-small", input=texts)
    return [item.embedding for item in result.data]


def ask_claude(question: str, system: str = "") -> str:  # expect: step
    message = claude().messages.create(
        model=CLAUDE, max_tokens=1024, system=system, messages=[user_turn(question)]
    )
    return "".join(block.text for block in message.content if block.type == "text")


def summarise(client: OpenAI, text: str) -> str:  # expect: step
    response = client.responses.create(model=MODEL, input=f"Summarise:\n\n{text}")
    return response.output_text


def classify(client, text, labels):  # expect: step
    prompt = f"Answer with one of {', '.join(labels)}.\n\n{text}"
    reply = client.chat.completions.create(model=MODEL, messages=[user_turn(prompt)])
    return reply.choices[0].message.content.strip()


def lite(prompt: str, model: str = "anthropic/claude-3-haiku-20240307") -> str:  # expect: step
    response = litellm.completion(model=model, messages=[{"role": "user", "content": prompt}])
    return response.choices[0].message.content


async def acomplete(client: openai.AsyncOpenAI, prompt: str) -> str:  # expect: step
    response = await client.chat.completions.create(model=MODEL, messages=[user_turn(prompt)])
    return response.choices[0].message.content or ""


class Invoice(BaseModel):
    number: str
    total: float
    currency: str = "EUR"


def extract_invoice(text: str) -> Invoice:  # expect: step
    completion = openai_client().beta.chat.completions.parse(
        model=MODEL, messages=[user_turn(text)], response_format=Invoice
    )
    return completion.choices[0].message.parsed


def cosine(a: list[float], b: list[float]) -> float:  # expect: plain
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def token_estimate(text: str) -> int:  # expect: plain
    return max(1, len(text) // 4)


# --- LangChain ----------------------------------------------------------------------


def make_llm(temperature: float = 0.0) -> ChatOpenAI:  # expect: plain
    return ChatOpenAI(model=MODEL, temperature=temperature)


def make_chain(llm: ChatOpenAI):  # expect: plain
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Translate the user's text to {lang}."), ("user", "{text}")]
    )
    return prompt | llm


def translate(text: str, lang: str) -> str:  # expect: step
    chain = make_chain(make_llm())
    return chain.invoke({"text": text, "lang": lang}).content


def ask(llm: ChatOpenAI, question: str) -> str:  # expect: step
    return llm.invoke(question).content


# --- agents holding clients --------------------------------------------------------


class ToolAgent:
    def __init__(self, client: OpenAI, tools: dict[str, Callable]) -> None:  # expect: plain
        self.client = client
        self.tools = tools

    def schemas(self) -> list[dict[str, Any]]:  # expect: plain
        return [
            {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
            for name in self.tools
        ]

    def think(self, messages: list[Any]):  # expect: step
        return self.client.chat.completions.create(
            model=MODEL, messages=messages, tools=self.schemas()
        )

    def act(self, call) -> str:  # expect: workflow
        tool = self.tools[call.function.name]
        return json.dumps(tool(**json.loads(call.function.arguments)))

    def run(self, task: str, max_turns: int = 5) -> str:  # expect: workflow
        messages: list[Any] = [user_turn(task)]
        for _ in range(max_turns):
            reply = self.think(messages).choices[0].message
            if not reply.tool_calls:
                return reply.content
            messages.append(reply)
            for call in reply.tool_calls:
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": self.act(call)}
                )
        return "no answer within the turn limit"


def search_docs(query: str) -> list[dict[str, Any]]:  # expect: workflow
    return get_json(http, f"/docs/search?q={query}")["hits"]


def lookup_order(order_id: str) -> dict[str, Any]:  # expect: step
    return http.get(f"/orders/{order_id}").json()


def build_agent() -> ToolAgent:  # expect: plain
    return ToolAgent(openai_client(), {"search_docs": search_docs, "lookup_order": lookup_order})


def answer(question: str) -> str:  # expect: workflow
    return build_agent().run(question)


class Reviewer:
    def __init__(self, client: anthropic.Anthropic | None = None) -> None:  # expect: plain
        self.client = client or claude()

    def review(self, diff: str) -> str:  # expect: step
        message = self.client.messages.create(
            model=CLAUDE, max_tokens=2048, messages=[user_turn(f"Review this diff:\n{diff}")]
        )
        return message.content[0].text

    def review_all(self, diffs: list[str]) -> list[str]:  # expect: workflow
        return [self.review(diff) for diff in diffs if token_estimate(diff) < 50_000]


class Pipeline:
    def __init__(self, llm: ChatOpenAI | None = None) -> None:  # expect: plain
        self.llm = llm or make_llm()

    def headline(self, article: str) -> str:  # expect: step
        return self.llm.invoke(f"Write a headline for:\n{article}").content

    def tags(self, article: str) -> list[str]:  # expect: step
        reply = self.llm.invoke(f"Five comma-separated tags for:\n{article}").content
        return [tag.strip() for tag in reply.split(",")]

    def enrich(self, article: str) -> dict[str, Any]:  # expect: workflow
        return {"headline": self.headline(article), "tags": self.tags(article)}


# --- workflows -------------------------------------------------------------------------


def route(text: str) -> str:  # expect: workflow
    return classify(openai_client(), text, ["billing", "bug", "other"])


def rag_answer(question: str, docs: list[str]) -> str:  # expect: workflow
    question_vector, *doc_vectors = embed([question, *docs])
    best = max(range(len(docs)), key=lambda i: cosine(question_vector, doc_vectors[i]))
    return complete(f"Context:\n{docs[best]}\n\nQuestion: {question}")


def second_opinion(question: str) -> dict[str, str]:  # expect: workflow
    return {"openai": complete(question), "claude": ask_claude(question), "lite": lite(question)}


def triage(ticket: str) -> dict[str, Any]:  # expect: workflow
    return {"summary": summarise(openai_client(), ticket), "team": route(ticket)}
