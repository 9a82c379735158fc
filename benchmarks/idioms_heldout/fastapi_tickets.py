"""A ticket service on FastAPI: async SQLAlchemy sessions from providers, a
repository injected with Annotated[..., Depends(...)], a notifier built once by
an lru_cache getter, a Redis rate limit as a callable dependency, background
tasks, and asyncio fan-outs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from pydantic_settings import BaseSettings
from redis.asyncio import Redis
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

AUDIT_LOG = os.environ.get("AUDIT_LOG", "/var/log/tickets/audit.log")


class Settings(BaseSettings):
    database_url: str = "postgresql+asyncpg://tickets@localhost/tickets"
    notify_url: str = "https://chat.example.com/api"
    notify_token: str = ""
    redis_url: str = "redis://localhost:6379/0"


@lru_cache
def get_settings() -> Settings:  # expect: plain
    return Settings()


engine = create_async_engine(get_settings().database_url, pool_pre_ping=True)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
redis = Redis.from_url(get_settings().redis_url)


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    status: Mapped[str] = mapped_column(default="open")
    assignee: Mapped[str | None]
    updated_at: Mapped[datetime]

    def is_open(self) -> bool:  # expect: plain
        return self.status == "open"

    def touch(self, now: datetime) -> None:  # expect: plain
        self.updated_at = now


class TicketIn(BaseModel):
    title: str
    assignee: str | None = None


class TicketOut(BaseModel):
    id: int
    title: str
    status: str

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:  # expect: plain
        return cls(id=ticket.id, title=ticket.title, status=ticket.status)


async def get_session() -> AsyncIterator[AsyncSession]:  # expect: plain
    async with SessionLocal() as session:
        yield session


async def get_transaction() -> AsyncIterator[AsyncSession]:  # expect: step
    async with SessionLocal.begin() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:  # expect: plain
        self.session = session

    def open_query(self, assignee: str | None = None) -> Select:  # expect: plain
        stmt = select(Ticket).where(Ticket.status == "open")
        if assignee:
            stmt = stmt.where(Ticket.assignee == assignee)
        return stmt.order_by(Ticket.updated_at.desc())

    async def get(self, ticket_id: int) -> Ticket | None:  # expect: step
        return await self.session.get(Ticket, ticket_id)

    async def list_open(self, assignee: str | None = None) -> list[Ticket]:  # expect: step
        result = await self.session.scalars(self.open_query(assignee))
        return list(result)

    def add(self, ticket: Ticket) -> Ticket:  # expect: plain
        self.session.add(ticket)
        return ticket

    async def commit(self) -> None:  # expect: step
        await self.session.commit()

    async def counts(self) -> dict[str, int]:  # expect: step
        stmt = select(Ticket.status, func.count()).group_by(Ticket.status)
        rows = await self.session.execute(stmt)
        return {status: n for status, n in rows.all()}


def get_repository(session: SessionDep) -> TicketRepository:  # expect: plain
    return TicketRepository(session)


RepoDep = Annotated[TicketRepository, Depends(get_repository)]


class Notifier:
    def __init__(self, base_url: str, token: str) -> None:  # expect: plain
        self._http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
        )

    def message(self, ticket_id: int, event: str) -> dict[str, str]:  # expect: plain
        return {"text": f"ticket #{ticket_id} {event}"}

    async def send(self, ticket_id: int, event: str) -> None:  # expect: step
        response = await self._http.post("/messages", json=self.message(ticket_id, event))
        response.raise_for_status()

    async def aclose(self) -> None:  # expect: plain
        await self._http.aclose()


@lru_cache
def get_notifier() -> Notifier:  # expect: plain
    settings = get_settings()
    return Notifier(settings.notify_url, settings.notify_token)


NotifierDep = Annotated[Notifier, Depends(get_notifier)]


class RateLimit:
    def __init__(self, per_minute: int, client: Redis = redis) -> None:  # expect: plain
        self.per_minute = per_minute
        self.client = client

    def key(self, request: Request) -> str:  # expect: plain
        host = request.client.host if request.client else "anonymous"
        return f"rate:{request.url.path}:{host}"

    async def __call__(self, request: Request) -> None:  # expect: step
        key = self.key(request)
        count = await self.client.incr(key)
        if count == 1:
            await self.client.expire(key, 60)
        if count > self.per_minute:
            raise HTTPException(429, "too many requests")


def append_audit(path: str, line: str) -> None:  # expect: step
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def audit_line(action: str, ticket_id: int, actor: str) -> str:  # expect: plain
    return f"{actor} {action} ticket={ticket_id}"


router = APIRouter(prefix="/tickets", dependencies=[Depends(RateLimit(120))])


@router.get("/{ticket_id}")
async def read_ticket(ticket_id: int, repo: RepoDep) -> TicketOut:  # expect: workflow
    ticket = await repo.get(ticket_id)
    if ticket is None:
        raise HTTPException(404, "no such ticket")
    return TicketOut.of(ticket)


@router.get("")
async def list_tickets(  # expect: workflow
    repo: RepoDep, assignee: str | None = None
) -> list[TicketOut]:
    return [TicketOut.of(t) for t in await repo.list_open(assignee)]


@router.post("", status_code=201)
async def create_ticket(  # expect: step
    payload: TicketIn, repo: RepoDep, notifier: NotifierDep, background: BackgroundTasks
) -> TicketOut:
    now = datetime.now(UTC)
    ticket = repo.add(Ticket(title=payload.title, assignee=payload.assignee, updated_at=now))
    await repo.commit()
    background.add_task(notifier.send, ticket.id, "created")
    return TicketOut.of(ticket)


@router.post("/{ticket_id}/assign")
async def assign_ticket(  # expect: step
    ticket_id: int, assignee: str, session: Annotated[AsyncSession, Depends(get_transaction)]
) -> dict[str, object]:
    stmt = update(Ticket).where(Ticket.id == ticket_id).values(assignee=assignee)
    await session.execute(stmt)
    return {"id": ticket_id, "assignee": assignee}


@router.post("/{ticket_id}/close")
async def close_ticket(  # expect: workflow
    ticket_id: int, repo: RepoDep, notifier: NotifierDep, background: BackgroundTasks
) -> TicketOut:
    ticket = await repo.get(ticket_id)
    if ticket is None:
        raise HTTPException(404, "no such ticket")
    ticket.status = "closed"
    await repo.commit()
    background.add_task(notifier.send, ticket.id, "closed")
    return TicketOut.of(ticket)


@router.post("/{ticket_id}/audit")
def audit_ticket(  # expect: workflow
    ticket_id: int, action: str, background: BackgroundTasks
) -> dict[str, bool]:
    background.add_task(append_audit, AUDIT_LOG, audit_line(action, ticket_id, "api"))
    return {"queued": True}


@router.get("/stats/summary")
async def stats(  # expect: workflow
    session: AsyncSession = Depends(get_session),  # noqa: B008
) -> dict[str, int]:
    return await TicketRepository(session).counts()


def render_pdf(ticket: dict, path: str) -> str:  # expect: step
    with open(path, "wb") as out:
        out.write(pdf_bytes(ticket))
    return path


def pdf_bytes(ticket: dict) -> bytes:  # expect: plain
    return f"%PDF-1.4\n% ticket {ticket['id']}: {ticket['title']}\n%%EOF\n".encode()


@router.get("/{ticket_id}/pdf")
async def export_pdf(ticket_id: int, repo: RepoDep) -> dict[str, str]:  # expect: workflow
    ticket = await repo.get(ticket_id)
    if ticket is None:
        raise HTTPException(404, "no such ticket")
    data = TicketOut.of(ticket).model_dump()
    path = await asyncio.to_thread(render_pdf, data, f"/tmp/ticket-{ticket_id}.pdf")
    return {"path": path}


async def fetch_profile(client: httpx.AsyncClient, user: str) -> dict:  # expect: step
    response = await client.get(f"/users/{user}")
    response.raise_for_status()
    return response.json()


async def fetch_profiles(users: list[str]) -> dict[str, dict]:  # expect: workflow
    base_url = os.environ.get("DIRECTORY_URL", "http://directory.internal")
    async with httpx.AsyncClient(base_url=base_url) as client:
        profiles = await asyncio.gather(*(fetch_profile(client, user) for user in users))
    return dict(zip(users, profiles, strict=True))


def stale_before(now: datetime, days: int) -> datetime:  # expect: plain
    return now - timedelta(days=days)


async def close_stale(  # expect: step
    days: int = 30, factory: async_sessionmaker = SessionLocal
) -> int:
    cutoff = stale_before(datetime.now(UTC), days)
    async with factory() as session:
        result = await session.execute(
            update(Ticket)
            .where(Ticket.status == "open", Ticket.updated_at < cutoff)
            .values(status="stale")
        )
        await session.commit()
    return result.rowcount


async def nightly_maintenance(users: list[str]) -> None:  # expect: workflow
    async with asyncio.TaskGroup() as group:
        group.create_task(close_stale())
        group.create_task(fetch_profiles(users))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:  # expect: step
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await get_notifier().aclose()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(router)


@app.middleware("http")
async def server_timing(request: Request, call_next):  # expect: step
    started = time.perf_counter()
    response = await call_next(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


@app.get("/healthz")
async def healthz() -> dict[str, str]:  # expect: plain
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(session: SessionDep) -> dict[str, str]:  # expect: step
    await session.execute(select(1))
    return {"database": "ok"}
