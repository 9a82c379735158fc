"""A database transaction is one step with all it holds.

Recorded piece by piece, a transaction would break after a crash: the steps
inside it would be recorded as done while the database rolled their writes
back, and the resumed run would replay them (skip them) and go on with the rest,
so the database would keep half a transaction. The analyser therefore records
a ``with`` block that opens a transaction (``with transaction.atomic():``,
``with session.begin():``, ``with conn:`` on a DB-API connection), and a function
decorated to run in one (``@transaction.atomic``), as one step: a crash inside
it runs the whole transaction again.

The end-to-end test kills a real process (SIGKILL) between the two writes of a
transfer under ``autodurable run``, on each store, and checks the money.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from ..helpers import child_env, write_script

MODELS = """
from django.db import models
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Loan(models.Model):
    returned = models.BooleanField()


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]
"""

SHAPES = """
import sqlite3

from django.db import transaction
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from .models import Account, Loan

SessionLocal = sessionmaker()


def moved(account: int, amount: int):
    return update(Account).where(Account.id == account).values(balance=Account.balance + amount)


def give_back(loan_id: int) -> int:
    return Loan.objects.filter(pk=loan_id).update(returned=True)


def borrow(member_id: int, book_id: int) -> Loan:
    return Loan.objects.create(member_id=member_id, book_id=book_id)


def swap(loan_id: int, member_id: int, book_id: int) -> Loan:
    with transaction.atomic():
        give_back(loan_id)
        return borrow(member_id, book_id)


@transaction.atomic
def swap_all(loan_ids: list[int], member_id: int, book_id: int) -> None:
    for loan_id in loan_ids:
        give_back(loan_id)
    borrow(member_id, book_id)


@transaction.atomic()
def tidy(text: str) -> str:
    return text.strip()


def debit(session: Session, account: int, amount: int) -> None:
    session.execute(moved(account, -amount))


def credit(session: Session, account: int, amount: int) -> None:
    session.execute(moved(account, amount))


def transfer(session: Session, source: int, target: int, amount: int) -> None:
    with session.begin():
        debit(session, source, amount)
        credit(session, target, amount)
    print("moved", amount)


def audit(text: str) -> None:
    with open("audit.log", "a") as log:
        log.write(text + "\\n")


def transfer_inline(source: int, target: int, amount: int) -> None:
    with SessionLocal.begin() as session:
        session.execute(moved(source, -amount))
        session.execute(moved(target, amount))
    audit(f"{source} -> {target}: {amount}")


def log_twice(path: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("insert into log values (1)")
        conn.execute("insert into log values (2)")
    conn.close()
    audit("logged twice")


def transfer_alone(source: int, target: int, amount: int) -> None:
    with SessionLocal.begin() as session:
        session.execute(moved(source, -amount))
        session.execute(moved(target, amount))
"""


def _plans(folder: Path) -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "explain", "--json", "shapes/shapes.py"],
        cwd=folder, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["modules"]
    return {f["qualname"]: f for module in found for f in module["functions"]}


def test_a_transaction_and_all_it_holds_is_recorded_as_one_step(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shapes'\n")
    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "__init__.py").write_text("")
    write_script(tmp_path / "shapes", "models.py", MODELS)
    write_script(tmp_path / "shapes", "shapes.py", SHAPES)
    plans = _plans(tmp_path)

    def shape(name: str) -> tuple[str, str, list[tuple[str, int]]]:
        plan = plans[name]
        return plan["role"], plan["style"], [(s["kind"], s["line"]) for s in plan["sites"]]

    written = (tmp_path / "shapes" / "shapes.py").read_text().splitlines()

    def at(text: str) -> int:  # the line of `text` in the module as written
        return 1 + [line.strip() for line in written].index(text)

    # A block around the steps that runs in one transaction: one block step.
    assert shape("transfer") == ("workflow", "inline", [("block", at("with session.begin():"))])
    assert shape("transfer_inline")[2] == [("block", at("with SessionLocal.begin() as session:"))]
    assert shape("log_twice")[2] == [("block", at("with conn:"))]
    # A transaction block that cannot be moved (a return inside), or a function run in
    # one: the whole function is one step.
    assert shape("swap")[:2] == ("step", "coarse")
    assert shape("swap_all")[:2] == ("step", "coarse")
    assert "one database transaction" in plans["swap_all"]["reason"]
    # Its steps stay steps of their own elsewhere.
    assert shape("give_back")[:2] == ("step", "decorate")
    # A function that is its transaction is a step as before; a decorated one that
    # does nothing but compute stays plain.
    assert shape("transfer_alone") == ("step", "decorate", [])
    assert plans["tidy"]["role"] == "plain"


BANK = """
import os
import signal
import sqlite3
import sys

DB = sys.argv[1]


def debit(conn, account, amount):
    conn.execute("update accounts set balance = balance - ? where id = ?", (amount, account))


def credit(conn, account, amount):
    if os.path.exists("die-inside") and not os.path.exists("died"):
        open("died", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    conn.execute("update accounts set balance = balance + ? where id = ?", (amount, account))


def transfer(source, target, amount):
    conn = sqlite3.connect(DB)
    with conn:
        debit(conn, source, amount)
        credit(conn, target, amount)
    conn.close()


for n in range(3):
    transfer(1, 2, 10)
print("done")
"""


def test_a_kill_inside_a_transaction_runs_it_again_whole(tmp_path, database_url):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'bank'\n")
    write_script(tmp_path, "bank.py", BANK)
    bank = tmp_path / "bank.db"
    with sqlite3.connect(bank) as conn:
        conn.execute("create table accounts (id integer primary key, balance integer)")
        conn.executemany("insert into accounts values (?, ?)", [(1, 100), (2, 0)])
    conn.close()
    (tmp_path / "die-inside").touch()
    command = [sys.executable, "-m", "autodurable", "run", "-q", "bank.py", str(bank)]
    env = child_env(AUTODURABLE_DATABASE_URL=database_url)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    killed = run()
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "died").exists()
    resumed = run()
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "done"
    with sqlite3.connect(bank) as conn:
        balances = dict(conn.execute("select id, balance from accounts"))
    conn.close()
    # Three transfers of 10, each whole: none lost half-way, none made twice.
    assert balances == {1: 70, 2: 30}
