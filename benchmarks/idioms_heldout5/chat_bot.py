"""Support assistant for Slack: answers mentions in threads with Claude and a few tools."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import anthropic
import redis
import requests
from anthropic import AsyncAnthropic
from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

MODEL = os.environ.get("BOT_MODEL", "claude-3-5-sonnet-latest")
DOCS_SEARCH_URL = os.environ.get("DOCS_SEARCH_URL", "http://docs-search.internal/api/search")
ONCALL_CHANNEL = os.environ.get("ONCALL_CHANNEL", "C0ONCALL")
MAX_TOKENS = 1024
HISTORY_TURNS = 20
HISTORY_KEY = "bot:history:{channel}:{thread}"
SLACK_LIMIT = 3900
GREETINGS = ("Hi!", "Hello there!", "Hey, how can I help?", "Morning! What do you need?")
MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
BOLD = re.compile(r"\*\*(.+?)\*\*")
LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)]+)\)")
UNITS = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344, ("kg", "lb"): 2.204623}

SYSTEM_TEMPLATE = """You are the support assistant in the #{channel} Slack channel.
Answer briefly, in Slack-friendly markdown. Use a tool when it helps.
Tools available: {tools}."""


# -- clients -------------------------------------------------------------------


def build_slack_client(token: str | None = None) -> WebClient:  # expect: plain
    return WebClient(token=token or os.environ["SLACK_BOT_TOKEN"], timeout=15)


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:  # expect: plain
    return redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


@lru_cache(maxsize=1)
def get_llm() -> anthropic.Anthropic:  # expect: plain
    return anthropic.Anthropic(max_retries=3)


# -- conversation memory -------------------------------------------------------


class ConversationMemory:
    def __init__(self, client: redis.Redis, ttl_seconds: int = 86_400) -> None:  # expect: plain
        self.client = client
        self.ttl = ttl_seconds

    def load(self, channel: str, thread_ts: str) -> list[dict[str, str]]:  # expect: step
        key = HISTORY_KEY.format(channel=channel, thread=thread_ts)
        return [json.loads(item) for item in self.client.lrange(key, -HISTORY_TURNS * 2, -1)]

    def append(self, channel: str, thread_ts: str, role: str, content: str) -> None:  # expect: step
        key = HISTORY_KEY.format(channel=channel, thread=thread_ts)
        pipe = self.client.pipeline()
        pipe.rpush(key, json.dumps({"role": role, "content": content}))
        pipe.expire(key, self.ttl)
        pipe.execute()

    def touch(self, channel: str, thread_ts: str) -> bool:  # expect: step
        key = HISTORY_KEY.format(channel=channel, thread=thread_ts)
        return bool(self.client.expire(key, self.ttl))

    def forget(self, channel: str, thread_ts: str) -> None:  # expect: step
        self.client.delete(HISTORY_KEY.format(channel=channel, thread=thread_ts))

    def active_threads(self, channel: str) -> list[str]:  # expect: step
        prefix = HISTORY_KEY.format(channel=channel, thread="")
        keys = self.client.scan_iter(match=prefix + "*", count=500)
        return sorted(key.decode().removeprefix(prefix) for key in keys)


def record_usage(user_id: str, input_tokens: int, output_tokens: int) -> None:  # expect: step
    pipe = get_redis().pipeline()
    pipe.hincrby(f"bot:usage:{user_id}", "input", input_tokens)
    pipe.hincrby(f"bot:usage:{user_id}", "output", output_tokens)
    pipe.execute()


# -- tools ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Callable[..., str]

    def spec(self) -> dict[str, Any]:  # expect: plain
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def current_time() -> str:  # expect: step
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def roll_dice(sides: int = 6, count: int = 1) -> str:  # expect: step
    rolls = [random.randint(1, sides) for _ in range(max(1, min(count, 10)))]
    return ", ".join(map(str, rolls))


def lookup_ticket(ticket_id: str) -> str:  # expect: step
    ticket = get_redis().hgetall(f"ticket:{ticket_id}")
    if not ticket:
        return f"No ticket {ticket_id}."
    status, owner = ticket[b"status"].decode(), ticket[b"owner"].decode()
    return f"Ticket {ticket_id}: {status} (owner {owner})"


def search_docs(query: str, limit: int = 3) -> str:  # expect: step
    response = requests.get(DOCS_SEARCH_URL, params={"q": query, "size": limit}, timeout=10)
    response.raise_for_status()
    hits = response.json()["hits"]
    return "\n".join(f"- {hit['title']}: {hit['url']}" for hit in hits) or "Nothing found."


def convert_units(value: float, unit_from: str, unit_to: str) -> str:  # expect: plain
    factor = UNITS.get((unit_from.lower(), unit_to.lower()))
    if factor is None:
        return f"I can't convert {unit_from} to {unit_to}."
    return f"{value:g} {unit_from} = {value * factor:.2f} {unit_to}"


NUMBER, INTEGER, STRING = {"type": "number"}, {"type": "integer"}, {"type": "string"}
TOOLS: list[Tool] = [
    Tool("current_time", "The current date and time in UTC.", {"type": "object"}, current_time),
    Tool(
        "roll_dice",
        "Roll dice.",
        {"type": "object", "properties": {"sides": INTEGER, "count": INTEGER}},
        roll_dice,
    ),
    Tool(
        "lookup_ticket",
        "Status and owner of a support ticket.",
        {"type": "object", "properties": {"ticket_id": STRING}, "required": ["ticket_id"]},
        lookup_ticket,
    ),
    Tool(
        "search_docs",
        "Search the internal documentation.",
        {"type": "object", "properties": {"query": STRING}, "required": ["query"]},
        search_docs,
    ),
    Tool(
        "convert_units",
        "Convert between km/mi and kg/lb.",
        {
            "type": "object",
            "properties": {"value": NUMBER, "unit_from": STRING, "unit_to": STRING},
            "required": ["value", "unit_from", "unit_to"],
        },
        convert_units,
    ),
]


def tool_table(tools: list[Tool]) -> dict[str, Callable[..., str]]:  # expect: plain
    return {tool.name: tool.handler for tool in tools}


def run_tool(name: str, arguments: dict[str, Any]) -> str:  # expect: workflow
    handler = tool_table(TOOLS).get(name)
    if handler is None:
        return f"Unknown tool {name!r}."
    try:
        return handler(**arguments)
    except TypeError as exc:
        return f"Bad arguments for {name}: {exc}"


# -- prompts and formatting ----------------------------------------------------


def build_messages(history: list[dict[str, str]], text: str) -> list[dict]:  # expect: plain
    messages: list[dict[str, Any]] = []
    for turn in [*history, {"role": "user", "content": text}]:
        if messages and messages[-1]["role"] == turn["role"]:
            messages[-1]["content"] += "\n\n" + turn["content"]
        else:
            messages.append(dict(turn))
    if messages and messages[0]["role"] != "user":
        messages.pop(0)
    return messages


def extract_text(response: anthropic.types.Message) -> str:  # expect: plain
    return "".join(block.text for block in response.content if block.type == "text").strip()


def chunk_for_slack(text: str, limit: int = SLACK_LIMIT) -> list[str]:  # expect: plain
    text = LINK.sub(r"<\2|\1>", BOLD.sub(r"*\1*", text))
    parts: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        if current and len(current) + len(paragraph) + 2 > limit:
            parts.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph[:limit]
    if current:
        parts.append(current)
    return parts


def render_digest(channel: str, summaries: dict[str, str]) -> str:  # expect: plain
    lines = [f"*Daily digest for #{channel}*"]
    lines += [f"• <thread {ts}>: {summary}" for ts, summary in sorted(summaries.items())]
    return "\n".join(lines)


def pick_greeting(name: str | None = None) -> str:  # expect: step
    greeting = random.choice(GREETINGS)
    return f"{greeting} <@{name}>" if name else greeting


def greeting_for_day(day_number: int) -> str:  # expect: plain
    return random.Random(day_number).choice(GREETINGS)


# -- rate limiting -------------------------------------------------------------


class RateLimiter:
    def __init__(  # expect: step
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def allow(self) -> bool:  # expect: step
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class UserLimits:
    def __init__(self, rate: float, burst: int) -> None:  # expect: plain
        self.rate = rate
        self.burst = burst
        self.limiters: dict[str, RateLimiter] = {}

    def allow(self, user_id: str) -> bool:  # expect: workflow
        limiter = self.limiters.get(user_id)
        if limiter is None:
            limiter = self.limiters[user_id] = RateLimiter(self.rate, self.burst)
        return limiter.allow()


# -- Slack handler -------------------------------------------------------------


class SlackHandler:
    def __init__(  # expect: plain
        self, slack: WebClient, memory: ConversationMemory, limits: UserLimits
    ) -> None:
        self.slack = slack
        self.memory = memory
        self.limits = limits

    def post(self, channel: str, text: str, thread_ts: str | None = None) -> None:  # expect: step
        for part in chunk_for_slack(text):
            self.slack.chat_postMessage(channel=channel, text=part, thread_ts=thread_ts)

    def post_placeholder(self, channel: str, thread_ts: str) -> str:  # expect: step
        response = self.slack.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=":thought_balloon: thinking..."
        )
        return response["ts"]

    def update_message(self, channel: str, ts: str, text: str) -> None:  # expect: step
        parts = chunk_for_slack(text)
        self.slack.chat_update(channel=channel, ts=ts, text=parts[0] if parts else text)
        for part in parts[1:]:
            self.slack.chat_postMessage(channel=channel, text=part)

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:  # expect: step
        self.slack.chat_postEphemeral(channel=channel, user=user, text=text)

    def react(self, channel: str, ts: str, emoji: str) -> None:  # expect: step
        self.slack.reactions_add(channel=channel, timestamp=ts, name=emoji)

    def channel_name(self, channel_id: str) -> str:  # expect: step
        info = self.slack.conversations_info(channel=channel_id)
        return info["channel"]["name"]

    def user_display_name(self, user_id: str) -> str:  # expect: step
        profile = self.slack.users_info(user=user_id)["user"]["profile"]
        return profile.get("display_name") or profile.get("real_name", user_id)

    def upload_transcript(self, channel: str, thread_ts: str, text: str) -> None:  # expect: step
        self.slack.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            content=text,
            filename=f"transcript-{thread_ts}.txt",
            title="Conversation transcript",
        )

    def ask_model(self, messages: list[dict[str, Any]], system: str):  # expect: step
        return get_llm().messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            system=system,
            messages=messages,
            tools=[tool.spec() for tool in TOOLS],
        )

    def complete(self, user: str, messages: list[dict], system: str) -> str:  # expect: workflow
        for _ in range(5):
            response = self.ask_model(messages, system)
            record_usage(user, response.usage.input_tokens, response.usage.output_tokens)
            if response.stop_reason != "tool_use":
                return extract_text(response)
            messages.append({"role": "assistant", "content": response.content})
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": block.id,
                    "content": run_tool(block.name, block.input),
                }
                for block in response.content
                if block.type == "tool_use"
            ]
            messages.append({"role": "user", "content": results})
        return "Sorry, I couldn't finish that one."

    def timed_complete(  # expect: step
        self, user: str, messages: list[dict[str, Any]], system: str
    ) -> str:
        started = time.monotonic()
        reply = self.complete(user, messages, system)
        log.info("completion for %s took %.2fs", user, time.monotonic() - started)
        return reply

    def handle_mention(self, event: dict[str, Any]) -> None:  # expect: workflow
        channel, user = event["channel"], event["user"]
        thread_ts = event.get("thread_ts") or event["ts"]
        if not self.limits.allow(user):
            self.react(channel, event["ts"], "hourglass_flowing_sand")
            return
        text = MENTION.sub("", event["text"]).strip()
        if not text:
            self.post(channel, pick_greeting(user), thread_ts)
            return
        placeholder = self.post_placeholder(channel, thread_ts)
        messages = build_messages(self.memory.load(channel, thread_ts), text)
        tools = ", ".join(tool.name for tool in TOOLS)
        system = SYSTEM_TEMPLATE.format(channel=self.channel_name(channel), tools=tools)
        reply = self.timed_complete(user, messages, system)
        self.memory.append(channel, thread_ts, "user", text)
        self.memory.append(channel, thread_ts, "assistant", reply)
        self.update_message(channel, placeholder, reply)

    def _commands(self) -> dict[str, Callable[[dict[str, str]], str]]:  # expect: plain
        return {"/forget": self._forget, "/roll": self._roll, "/transcript": self._transcript}

    def _forget(self, payload: dict[str, str]) -> str:  # expect: workflow
        self.memory.forget(payload["channel_id"], payload.get("thread_ts", ""))
        return "Okay, I've forgotten this conversation."

    def _roll(self, payload: dict[str, str]) -> str:  # expect: workflow
        sides = int(payload.get("text") or 6)
        return f"You rolled {roll_dice(sides)}."

    def _transcript(self, payload: dict[str, str]) -> str:  # expect: workflow
        channel, thread_ts = payload["channel_id"], payload.get("thread_ts", "")
        turns = self.memory.load(channel, thread_ts)
        if not turns:
            return "There is nothing to export in this thread."
        text = "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in turns)
        self.upload_transcript(channel, thread_ts, text)
        return f"Uploaded {len(turns)} messages."

    def handle_command(self, payload: dict[str, str]) -> dict[str, str]:  # expect: workflow
        handler = self._commands().get(payload["command"])
        if handler is None:
            return {"response_type": "ephemeral", "text": "I don't know that command."}
        return {"response_type": "in_channel", "text": handler(payload)}


def build_handler() -> SlackHandler:  # expect: plain
    return SlackHandler(
        build_slack_client(), ConversationMemory(get_redis()), UserLimits(rate=0.2, burst=3)
    )


def route_event(handler: SlackHandler, envelope: dict[str, Any]) -> None:  # expect: workflow
    event = envelope.get("event", {})
    if event.get("bot_id") or event.get("subtype") == "message_changed":
        return
    if event.get("type") == "app_mention":
        handler.handle_mention(event)
    elif event.get("type") == "member_joined_channel":
        name = handler.user_display_name(event["user"])
        handler.post_ephemeral(event["channel"], event["user"], f"{pick_greeting()} {name}")


class Outbox:
    """Replies collected while a batch of events is handled, posted afterwards."""

    def __init__(self) -> None:  # expect: plain
        self._pending: deque[tuple[str, str]] = deque()

    def send(self, channel: str, text: str) -> None:  # expect: plain
        self._pending.append((channel, text))

    def flush(self, handler: SlackHandler) -> int:  # expect: workflow
        sent = 0
        while self._pending:
            channel, text = self._pending.popleft()
            handler.post(channel, text)
            sent += 1
        return sent


# -- async digest --------------------------------------------------------------

async_llm = AsyncAnthropic()


async def fetch_thread(slack: AsyncWebClient, channel: str, ts: str) -> list[str]:  # expect: step
    response = await slack.conversations_replies(channel=channel, ts=ts, limit=200)
    return [message.get("text", "") for message in response["messages"]]


async def summarise_thread(  # expect: step
    lines: list[str], llm: AsyncAnthropic = async_llm
) -> str:
    transcript = "\n".join(f"- {line}" for line in lines)
    response = await llm.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=[{"role": "user", "content": f"Summarise this thread in one line:\n{transcript}"}],
    )
    return extract_text(response)


async def summarise_threads(slack, channel: str, threads: list[str]) -> dict:  # expect: workflow
    async def one(ts: str) -> str:  # expect: workflow
        return await summarise_thread(await fetch_thread(slack, channel, ts))

    summaries = await asyncio.gather(*(one(ts) for ts in threads))
    return dict(zip(threads, summaries, strict=True))


async def post_digest(slack: AsyncWebClient, channel: str, text: str) -> None:  # expect: step
    await slack.chat_postMessage(channel=channel, text=text)


async def notify_oncall(slack: AsyncWebClient, text: str) -> None:  # expect: step
    await slack.chat_postMessage(channel=ONCALL_CHANNEL, text=f":rotating_light: {text}")


async def daily_digest(channel: str, name: str, threads: list[str]) -> None:  # expect: workflow
    slack = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"])
    try:
        summaries = await summarise_threads(slack, channel, threads)
    except anthropic.APIError as exc:
        await notify_oncall(slack, f"digest for #{name} failed: {exc}")
        raise
    await post_digest(slack, channel, render_digest(name, summaries))
