"""Slack and Discord bot service: signed webhooks, API clients, formatting and a scheduler."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
from fastapi import BackgroundTasks, FastAPI
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, Field, field_validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)

SLACK_SIGNING_SECRET = os.environ.get("SLACK_SIGNING_SECRET", "")
DISCORD_PUBLIC_KEY = os.environ.get("DISCORD_PUBLIC_KEY", "00" * 32)
DISCORD_WEBHOOK_URL = os.environ.get("DISCORD_WEBHOOK_URL", "")
MAX_BLOCK_TEXT = 3000
SLACK_API = "https://slack.com/api"
WELCOME = "Welcome! Type `/oncall` to see who is on call, or `/help` for everything else."

app = FastAPI()
slack = WebClient(token=os.environ.get("SLACK_BOT_TOKEN"))


# --- payloads and models -------------------------------------------------------------


@dataclass
class ChatMessage:
    channel: str
    text: str
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def with_thread(self, ts: str) -> ChatMessage:  # expect: plain
        return ChatMessage(self.channel, self.text, ts, list(self.blocks))

    def to_payload(self) -> dict[str, Any]:  # expect: plain
        payload: dict[str, Any] = {"channel": self.channel, "text": self.text}
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        if self.blocks:
            payload["blocks"] = self.blocks
        return payload


class EventEnvelope(BaseModel):
    type: str
    challenge: str | None = None
    team_id: str | None = None
    event: dict[str, Any] = Field(default_factory=dict)


class SlashCommand(BaseModel):
    command: str
    text: str = ""
    user_id: str
    channel_id: str
    response_url: str

    @field_validator("command")
    @classmethod
    def strip_slash(cls, value: str) -> str:  # expect: plain
        return value.lstrip("/")

    def args(self) -> list[str]:  # expect: plain
        return self.text.split()


class InteractionPayload(BaseModel):
    action_id: str
    user_id: str
    response_url: str


class SlackError(Exception):
    def __init__(self, method: str, error: str) -> None:  # expect: plain
        super().__init__(f"{method} failed: {error}")
        self.method = method
        self.error = error


# --- signatures ------------------------------------------------------------------------


def compute_slack_signature(secret: str, timestamp: str, body: bytes) -> str:  # expect: plain
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def is_fresh(timestamp: str, window: int = 300) -> bool:  # expect: step
    return abs(time.time() - int(timestamp)) <= window


def verify_slack_request(timestamp: str, signature: str, body: bytes) -> bool:  # expect: workflow
    if not is_fresh(timestamp):
        logger.warning("stale slack request at %s", timestamp)
        return False
    expected = compute_slack_signature(SLACK_SIGNING_SECRET, timestamp, body)
    return hmac.compare_digest(expected, signature)


def verify_discord(signature: str, timestamp: str, body: bytes) -> bool:  # expect: plain
    key = VerifyKey(bytes.fromhex(DISCORD_PUBLIC_KEY))
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except BadSignatureError:
        return False
    return True


# --- a Slack Web API client over httpx -------------------------------------------------


class SlackApi:
    """The few Web API methods the bot needs, over a pooled httpx client."""

    def __init__(self, token: str, base_url: str = SLACK_API) -> None:  # expect: plain
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )

    def prepare(self, method: str, payload: dict[str, Any]) -> httpx.Request:  # expect: plain
        return self.http.build_request("POST", f"/{method}", json=payload)

    def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:  # expect: step
        response = self.http.send(self.prepare(method, payload))
        response.raise_for_status()
        data = response.json()
        if not data.get("ok"):
            raise SlackError(method, data.get("error", "unknown"))
        return data

    def post(self, message: ChatMessage) -> str:  # expect: workflow
        return self._call("chat.postMessage", message.to_payload())["ts"]

    def update(self, channel: str, ts: str, text: str) -> None:  # expect: workflow
        self._call("chat.update", {"channel": channel, "ts": ts, "text": text})

    def user_email(self, user_id: str) -> str | None:  # expect: step
        response = self.http.get("/users.info", params={"user": user_id})
        return response.json().get("user", {}).get("profile", {}).get("email")

    def close(self) -> None:  # expect: plain
        self.http.close()


@lru_cache(maxsize=1)
def get_slack_api() -> SlackApi:  # expect: plain
    return SlackApi(os.environ["SLACK_BOT_TOKEN"])


@lru_cache(maxsize=1)
def status_api() -> httpx.Client:  # expect: plain
    return httpx.Client(
        base_url=os.environ.get("STATUS_API_URL", "https://status.example.com/api/v2"),
        headers={"Authorization": f"Token {os.environ.get('STATUS_API_TOKEN', '')}"},
    )


# --- slack_sdk calls -----------------------------------------------------------------


def post_alert(channel: str, text: str) -> str:  # expect: step
    response = slack.chat_postMessage(channel=channel, text=truncate(text, MAX_BLOCK_TEXT))
    return response["ts"]


def add_reaction(client, channel, ts, name="white_check_mark"):  # expect: step
    try:
        client.reactions_add(channel=channel, timestamp=ts, name=name)
    except SlackApiError as exc:
        if exc.response["error"] != "already_reacted":
            raise


def open_dm(client: WebClient, user_id: str) -> str:  # expect: step
    return client.conversations_open(users=[user_id])["channel"]["id"]


def post_with_backoff(client: WebClient, message: ChatMessage, attempts: int = 4):  # expect: step
    for attempt in range(attempts):
        try:
            return client.chat_postMessage(**message.to_payload())["ts"]
        except SlackApiError as exc:
            if exc.response.status_code != 429 or attempt == attempts - 1:
                raise
            time.sleep(float(exc.response.headers.get("Retry-After", "1")))
    raise RuntimeError("no attempts made")


def reply_later(response_url: str, text: str) -> None:  # expect: step
    httpx.post(response_url, json={"text": text, "response_type": "ephemeral"}, timeout=5)


# --- on-call and incidents -------------------------------------------------------------


def current_oncall(client: httpx.Client | None = None) -> list[str]:  # expect: step
    client = client or status_api()
    response = client.get("/oncalls", params={"earliest": "true"})
    response.raise_for_status()
    return [entry["user"]["summary"] for entry in response.json()["oncalls"]]


def acknowledge(incident_id: str, user_id: str) -> None:  # expect: step
    status_api().put(
        f"/incidents/{incident_id}", json={"status": "acknowledged", "by": user_id}
    ).raise_for_status()


def fetch_incidents(client: httpx.Client, since: datetime) -> list[dict[str, Any]]:  # expect: step
    response = client.get("/incidents", params={"since": since.isoformat()})
    response.raise_for_status()
    return response.json()["incidents"]


# --- formatting --------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:  # expect: plain
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(user_id: str) -> str:  # expect: plain
    return f"<@{user_id}>"


def strip_mention(text: str) -> str:  # expect: plain
    return text.split(">", 1)[1].strip() if text.startswith("<@") else text.strip()


def code_block(text: str) -> str:  # expect: plain
    return f"```\n{text}\n```"


def format_duration(seconds: float) -> str:  # expect: plain
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_incident(incident: dict[str, Any]) -> list[dict[str, Any]]:  # expect: plain
    header = f":rotating_light: *{incident['title']}* ({incident['severity']})"
    fields = [
        {"type": "mrkdwn", "text": f"*Service*\n{incident['service']}"},
        {"type": "mrkdwn", "text": f"*Open for*\n{format_duration(incident['age_seconds'])}"},
    ]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": header}},
        {"type": "section", "fields": fields},
    ]


def format_digest(incidents: list[dict[str, Any]], since: datetime) -> str:  # expect: plain
    if not incidents:
        return f"No incidents since {since:%a %H:%M} UTC. :tada:"
    lines = [f"• {i['title']} ({i['severity']}, {i['status']})" for i in incidents]
    return f"{len(incidents)} incident(s) since {since:%a %H:%M} UTC:\n" + "\n".join(lines)


def oncall_text(names: list[str]) -> str:  # expect: plain
    return "On call: " + ", ".join(names) if names else "Nobody is on call right now."


def help_text() -> str:  # expect: plain
    return "\n".join(["`/oncall`: who is on call", "`/ack <incident>`: acknowledge an incident"])


def answer_for(question: str) -> str:  # expect: plain
    if "runbook" in question.lower():
        return "Runbooks live at https://wiki.example.com/runbooks"
    return "I did not understand that. " + help_text()


def discord_payload(content: str, embeds: list[dict] | None = None) -> dict:  # expect: plain
    payload: dict[str, Any] = {
        "content": truncate(content, 2000),
        "allowed_mentions": {"parse": []},
    }
    if embeds:
        payload["embeds"] = embeds[:10]
    return payload


def build_embed(title: str, fields: dict[str, str], colour: int = 0xE01E5A):  # expect: plain
    return {
        "title": truncate(title, 256),
        "color": colour,
        "fields": [{"name": k, "value": v, "inline": True} for k, v in fields.items()],
    }


# --- Discord ---------------------------------------------------------------------------------


def send_discord(content: str, embeds: list[dict[str, Any]] | None = None) -> None:  # expect: step
    response = httpx.post(DISCORD_WEBHOOK_URL, json=discord_payload(content, embeds), timeout=5)
    response.raise_for_status()


class DiscordClient:
    api = "https://discord.com/api/v10"

    def __init__(self, token: str, http: httpx.Client | None = None) -> None:  # expect: plain
        self.http = http or httpx.Client(headers={"Authorization": f"Bot {token}"}, timeout=10)

    def send(self, channel_id: str, payload: dict[str, Any]) -> str:  # expect: step
        response = self.http.post(f"{self.api}/channels/{channel_id}/messages", json=payload)
        response.raise_for_status()
        return response.json()["id"]

    def send_embed(self, channel_id: str, title: str, fields: dict[str, str]):  # expect: workflow
        return self.send(channel_id, discord_payload("", [build_embed(title, fields)]))


async def broadcast(webhook_urls: list[str], content: str) -> list[int]:  # expect: step
    async with httpx.AsyncClient(timeout=5) as client:
        responses = await asyncio.gather(
            *(client.post(url, json=discord_payload(content)) for url in webhook_urls)
        )
    return [response.status_code for response in responses]


async def notify_channels(channels: list[str], text: str) -> None:  # expect: workflow
    await asyncio.gather(*(asyncio.to_thread(post_alert, channel, text) for channel in channels))


# --- event handlers --------------------------------------------------------------------------


def on_mention(event: dict[str, Any]) -> None:  # expect: workflow
    question = strip_mention(event.get("text", ""))
    reply = ChatMessage(event["channel"], answer_for(question), thread_ts=event.get("ts"))
    get_slack_api().post(reply)


def on_reaction(event: dict[str, Any]) -> None:  # expect: workflow
    if event.get("reaction") == "rotating_light":
        item = event["item"]
        add_reaction(slack, item["channel"], item["ts"], "eyes")


def on_join(event: dict[str, Any]) -> None:  # expect: step
    channel = open_dm(slack, event["user"])
    slack.chat_postMessage(channel=channel, text=WELCOME)


def event_handlers() -> dict[str, Callable[[dict[str, Any]], None]]:  # expect: plain
    return {
        "app_mention": on_mention,
        "reaction_added": on_reaction,
        "member_joined_channel": on_join,
    }


def dispatch_event(event: dict[str, Any]) -> None:  # expect: workflow
    handler = event_handlers().get(event.get("type", ""))
    if handler is None:
        logger.debug("ignored event %s", event.get("type"))
        return
    handler(event)


@app.post("/slack/events")
def slack_events(envelope: EventEnvelope) -> dict[str, Any]:  # expect: workflow
    if envelope.type == "url_verification":
        return {"challenge": envelope.challenge}
    dispatch_event(envelope.event)
    return {"ok": True}


@app.post("/slack/commands")
def slash_command(command: SlashCommand) -> dict[str, Any]:  # expect: workflow
    if command.command == "oncall":
        return {"response_type": "in_channel", "text": oncall_text(current_oncall())}
    if command.command == "ack" and command.args():
        acknowledge(command.args()[0], command.user_id)
        return {"text": f"Acknowledged by {mention(command.user_id)}"}
    return {"text": help_text()}


@app.post("/slack/interactions")
def interactions(payload: InteractionPayload, background: BackgroundTasks):  # expect: workflow
    background.add_task(reply_later, payload.response_url, "Working on it…")
    return {}


# --- a small scheduler -----------------------------------------------------------------------


@dataclass
class Job:
    name: str
    every: timedelta
    action: Callable[[], None]
    last_run: float | None = None

    def due(self, now: float) -> bool:  # expect: plain
        return self.last_run is None or now - self.last_run >= self.every.total_seconds()


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:  # expect: plain
        self.clock = clock
        self.jobs: list[Job] = []

    def every(self, interval: timedelta, name: str) -> Callable:  # expect: plain
        def register(action: Callable[[], None]) -> Callable[[], None]:  # expect: plain
            self.jobs.append(Job(name, interval, action))
            return action

        return register

    def run_pending(self) -> int:  # expect: step
        now = self.clock()
        ran = 0
        for job in self.jobs:
            if job.due(now):
                try:
                    job.action()
                except Exception:
                    logger.exception("job %s failed", job.name)
                job.last_run = now
                ran += 1
        return ran

    def run_forever(self, stop: threading.Event, tick: float = 1.0) -> None:  # expect: step
        while not stop.is_set():
            started = time.monotonic()
            self.run_pending()
            stop.wait(max(0.0, tick - (time.monotonic() - started)))


scheduler = Scheduler()


def next_weekday_at(after: datetime, weekday: int, hour: int) -> datetime:  # expect: plain
    candidate = after.replace(hour=hour, minute=0, second=0, microsecond=0)
    candidate += timedelta(days=(weekday - candidate.weekday()) % 7)
    return candidate if candidate > after else candidate + timedelta(days=7)


def seconds_until(target: datetime) -> float:  # expect: step
    return max(0.0, (target - datetime.now(UTC)).total_seconds())


@scheduler.every(timedelta(days=1), "standup reminder")
def post_standup_reminder() -> None:  # expect: workflow
    post_alert("#team", "Standup in 10 minutes. Post your update in the thread.")


@scheduler.every(timedelta(days=1), "incident digest")
def daily_digest() -> None:  # expect: step
    since = datetime.now(UTC) - timedelta(days=1)
    incidents = fetch_incidents(status_api(), since)
    post_alert("#incidents", format_digest(incidents, since))
