"""Framework injection: FastAPI dependencies (``Depends``, ``Annotated``), Flask, Django views.

The session or client a route uses comes from the framework, not from the
route's own code. Providers that only create and close a session do no I/O
of their own; see README.md.
"""

# ruff: noqa: B008

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from typing import Annotated, Any

import httpx
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from flask import Flask, g, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from pydantic import BaseModel, ConfigDict
from sqlalchemy import create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from .messaging import send_email
from .orms import Customer, User, create_user, find_by_email, recent_orders
from .web_clients import http

engine = create_engine("postgresql+psycopg://app@db/app", pool_pre_ping=True)
SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
async_engine = create_async_engine("postgresql+asyncpg://app@db/app")
AsyncSessionLocal = async_sessionmaker(async_engine, expire_on_commit=False)
oauth2 = OAuth2PasswordBearer(tokenUrl="token")
api = FastAPI()
router = APIRouter(prefix="/users")


# --- FastAPI providers ------------------------------------------------------------


def get_db() -> Iterator[Session]:  # expect: plain
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def get_tx() -> Iterator[Session]:  # expect: step
    with SessionLocal.begin() as session:
        yield session


async def get_async_db() -> AsyncIterator[AsyncSession]:  # expect: plain
    async with AsyncSessionLocal() as session:
        yield session


def get_http() -> httpx.Client:  # expect: plain
    return http


class Settings(BaseModel):
    support_email: str = "support@example.com"
    page_size: int = 50


@lru_cache
def get_settings() -> Settings:  # expect: plain
    return Settings()


DbSession = Annotated[Session, Depends(get_db)]
TxSession = Annotated[Session, Depends(get_tx)]
Http = Annotated[httpx.Client, Depends(get_http)]


class UserIn(BaseModel):
    email: str
    name: str


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str


def to_out(user: User) -> UserOut:  # expect: plain
    return UserOut.model_validate(user)


# --- FastAPI routes ---------------------------------------------------------------


@router.get("/{user_id}")
def read_user(user_id: int, db: Session = Depends(get_db)) -> UserOut:  # expect: step
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="user not found")
    return to_out(user)


@router.get("/")
def list_users(db: Annotated[Session, Depends(get_db)], limit: int = 50):  # expect: step
    return [to_out(user) for user in db.scalars(select(User).limit(limit))]


@router.post("/")
def signup(body: UserIn, db: DbSession) -> UserOut:  # expect: workflow
    user = find_by_email(db, body.email) or create_user(db, body.email, body.name)
    send_email(body.email, "Welcome", f"Hello {body.name}")
    return to_out(user)


@router.delete("/{user_id}", status_code=204)
def remove_user(user_id: int, db: TxSession) -> None:  # expect: step
    user = db.get(User, user_id)
    if user is not None:
        db.delete(user)


@router.get("/{user_id}/async")
async def read_user_async(user_id: int, db: AsyncSession = Depends(get_async_db)):  # expect: step
    result = await db.execute(select(User).where(User.id == user_id))
    return result.scalar_one_or_none()


def current_user(token: Annotated[str, Depends(oauth2)], db: DbSession) -> User:  # expect: step
    user = db.scalars(select(User).where(User.api_token == token)).first()
    if user is None:
        raise HTTPException(status_code=401, detail="invalid token")
    return user


@router.get("/me")
def me(user: Annotated[User, Depends(current_user)]) -> UserOut:  # expect: plain
    return to_out(user)


@router.get("/{user_id}/avatar")
def avatar(user_id: int, client: Http) -> bytes:  # expect: step
    return client.get(f"/avatars/{user_id}.png").content


@router.get("/limits")
def limits(settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, int]:  # expect: plain
    return {"page_size": settings.page_size}


class UserService:
    def __init__(self, db: Session) -> None:  # expect: plain
        self.db = db

    def rename(self, user_id: int, name: str) -> User:  # expect: step
        user = self.db.get(User, user_id)
        user.name = name
        self.db.commit()
        return user

    def contact(self, user: User, settings: Settings) -> None:  # expect: workflow
        send_email(user.email, "Account updated", f"Questions? {settings.support_email}")


def get_service(db: DbSession) -> UserService:  # expect: plain
    return UserService(db)


Service = Annotated[UserService, Depends(get_service)]


@router.patch("/{user_id}")
def rename_user(user_id: int, name: str, service: Service) -> UserOut:  # expect: workflow
    user = service.rename(user_id, name)
    service.contact(user, get_settings())
    return to_out(user)


@api.get("/health")
def health() -> dict[str, str]:  # expect: plain
    return {"status": "ok"}


# --- Flask ---------------------------------------------------------------------------


flask_app = Flask(__name__)
db = SQLAlchemy()


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(500), nullable=False)


def note_json(note: Note) -> dict[str, Any]:  # expect: plain
    return {"id": note.id, "text": note.text}


@flask_app.get("/notes")
def notes_index():  # expect: step
    notes = db.session.execute(db.select(Note).order_by(Note.id)).scalars()
    return jsonify([note_json(note) for note in notes])


@flask_app.post("/notes")
def notes_create():  # expect: step
    note = Note(text=request.get_json()["text"])
    db.session.add(note)
    db.session.flush()
    body = note_json(note)
    db.session.commit()
    return jsonify(body), 201


@flask_app.get("/notes/<int:note_id>")
def notes_show(note_id: int):  # expect: step
    return jsonify(note_json(db.get_or_404(Note, note_id)))


@flask_app.get("/notes/count")
def notes_count():  # expect: step
    return jsonify(count=Note.query.count())


@flask_app.post("/notes/<int:note_id>/share")
def notes_share(note_id: int):  # expect: workflow
    send_email(request.args["to"], "A note for you", f"https://notes.example.com/{note_id}")
    return jsonify(sent=True)


@flask_app.get("/ping")
def ping():  # expect: plain
    return "pong"


def get_conn() -> sqlite3.Connection:  # expect: step
    if "conn" not in g:
        g.conn = sqlite3.connect("tags.db")
    return g.conn


@flask_app.teardown_appcontext
def close_conn(exc: BaseException | None) -> None:  # expect: plain
    conn = g.pop("conn", None)
    if conn is not None:
        conn.close()


@flask_app.get("/tags")
def tags():  # expect: step
    rows = get_conn().execute("SELECT name FROM tags ORDER BY name").fetchall()
    return jsonify([name for (name,) in rows])


# --- Django views ------------------------------------------------------------------


def customer_detail(request: HttpRequest, pk: int) -> JsonResponse:  # expect: step
    customer = get_object_or_404(Customer, pk=pk)
    return JsonResponse({"id": customer.pk, "email": customer.email})


def customer_orders(request: HttpRequest, pk: int) -> JsonResponse:  # expect: step
    customer = Customer.objects.get(pk=pk)
    return JsonResponse({"orders": [o.pk for o in recent_orders(customer)]})


def version(request: HttpRequest) -> JsonResponse:  # expect: plain
    return JsonResponse({"version": "1.4.2"})
