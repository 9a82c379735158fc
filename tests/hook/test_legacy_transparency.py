"""Ordinary programs made durable by `autodurable run` alone (examples/legacy/).

Three programs written the way teams write them, with nothing for autodurable
in them, each exercising what a newcomer's code is made of:

- billing_job.py: SQLAlchemy 2.0 repository functions that take the one
  ``session: Session`` created in ``main`` (the analyser must follow the
  annotation to see their I/O), charges through an HTTP payments service;
- downloader.py: a ``ThreadPoolExecutor(max_workers=4)`` with ``pool.map`` for
  the downloads, then ``submit`` + ``as_completed`` for the checksums;
- crawler.py: one ``httpx.AsyncClient`` opened in its ``async def main`` and passed
  to the coroutines (``client: httpx.AsyncClient``), ``asyncio.gather`` over the
  category pages, an ``asyncio.TaskGroup`` (four at a time) over the item pages.

Each runs as ``python -m autodurable run SCRIPT`` in a fresh folder (a fresh state
database), once without a crash for reference; then, for each kill point, it is
SIGKILLed (its whole process group) while requests are in flight at its local
service, and the same command is run again to completion. The outcome must equal
the reference: the same stdout (the resumed run replays what was recorded and
prints it all again), the same files, the same database, and at the service:

- a request answered before the kill ("done") was made exactly once in all: its
  step was recorded and the resumed run replays it;
- a request in flight at the kill (received by the service, not answered: its
  step cannot have been recorded) was made once or twice: the resumed run may ask
  again, once;
- a request the killed run never made was made exactly once.

"Answered before the kill" is exact, not a matter of timing. The services count
a request's answer before writing it (so no client holds an answer that is not
counted yet), and every kill point waits until as many requests are in flight as
the program has workers (1 for the billing job, the pool's 4 threads, the
crawler's gather over 3 pages or its 4 TaskGroup slots). Each worker then waits on
a request it sent after finishing its previous one, and a step's result is
recorded before the step returns to its worker: so every answered request's step
was recorded when the kill was decided. The services answer only after ``--delay``
seconds, so the kill, a few milliseconds later, lands with those requests still
in flight; a request answered or received between the decision and the kill
counts as in flight (the checks read the counters again after the kill).

Plain ``python SCRIPT`` runs are checked too: the same output, no autodurable.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..helpers import ROOT, child_env, run_command, serving

EXAMPLE = ROOT / "examples" / "legacy"
DELAY = 0.5  # seconds the services wait before answering, in the runs that are killed

Stats = dict[str, Any]


# -- running things ------------------------------------------------------------------------


@contextmanager
def service(folder: Path, script: str, delay: float = 0.0) -> Iterator[str]:
    """A local example service (fresh counters); killed and reaped on exit."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / script), "--port", "0", "--delay", str(delay)],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    with serving(process) as url:
        yield url


def stats(url: str) -> Stats:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return json.load(response)


def env_for(**settings: str) -> dict[str, str]:
    # Unbuffered, so that a killed run's stdout shows how far it got.
    return child_env(PYTHONUNBUFFERED="1", **settings)


def durable(script: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "autodurable", "run", str(EXAMPLE / script), *args]


def plain(script: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLE / script), *args]


def own_state(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with a state database in `folder`: the examples live in the repository, whose
    own state folder would be shared by tests running at the same time."""
    return {"AUTODURABLE_DATABASE_URL": f"sqlite:///{folder / 'state.db'}", **env}


def run(folder: Path, env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` in `folder` to completion."""
    env = own_state(folder, env)
    return run_command(argv, cwd=folder, env=env, timeout=90)


@dataclass
class Kill:
    stdout: str  # what the killed run printed
    at: Stats  # the service's counters when the kill was decided
    after: Stats  # ... once the killed run was reaped

    def done(self) -> set[str]:
        """Requests answered before the kill: their steps were recorded."""
        return set(self.at["answered"])

    def in_flight(self) -> set[str]:
        """Requests that reached the service but were not answered before the kill."""
        return set(self.after["requests"]) - self.done()


def run_and_kill(
    folder: Path, env: dict[str, str], argv: list[str], url: str, ready: Callable[[Stats], bool]
) -> Kill:
    """Start `argv`, SIGKILL its process group as soon as `ready(stats)`, reap it."""
    env = own_state(folder, env)
    child = subprocess.Popen(
        argv, cwd=folder, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    at: Stats | None = None
    try:
        deadline = time.monotonic() + 60
        while at is None:
            assert child.poll() is None, f"it finished before the kill: {child.communicate()}"
            assert time.monotonic() < deadline, f"the kill point never came: {stats(url)}"
            snapshot = stats(url)
            if ready(snapshot):
                at = snapshot
            else:
                time.sleep(0.01)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    time.sleep(0.2)  # a request already on its way from the dead process arrives now
    return Kill(out, at, stats(url))


def in_flight(snapshot: Stats) -> int:
    return sum(snapshot["requests"].values()) - sum(snapshot["answered"].values())


def in_group(counts: dict[str, int], group: Callable[[str], bool]) -> int:
    return sum(n for path, n in counts.items() if group(path))


def kill_point(group: Callable[[str], bool], answered: int, flying: int) -> Callable[[Stats], bool]:
    """Ready when at least `answered` requests of the group were answered and exactly
    `flying` requests are in flight, all of them in the group."""

    def ready(snapshot: Stats) -> bool:
        group_flying = in_group(snapshot["requests"], group) - in_group(snapshot["answered"], group)
        return (
            in_group(snapshot["answered"], group) >= answered
            and in_flight(snapshot) == flying == group_flying
        )

    return ready


def check_requests(kill: Kill, final: dict[str, int], reference: dict[str, int]) -> None:
    """Done before the kill: once. In flight at the kill: once or twice. Others: once."""
    assert set(reference.values()) == {1}, reference
    assert set(final) == set(reference), "not the same requests as the uncrashed run"
    done, flying = kill.done(), kill.in_flight()
    wrong = {
        path: n
        for path, n in sorted(final.items())
        if not (1 <= n <= 2 if path in flying else n == 1)
    }
    assert not wrong, (
        f"requested too often (in flight at the kill: {sorted(flying)}; "
        f"answered before it, {len(done)}: {sorted(done)}): {wrong}"
    )


def check_resumed(resumed: subprocess.CompletedProcess[str], kill: Kill, reference: str) -> None:
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stderr, resumed.stderr
    assert reference.startswith(kill.stdout), "the killed run printed something else"
    assert kill.stdout != reference, "the killed run had finished"
    assert resumed.stdout == reference, resumed.stderr


# -- billing_job.py: SQLAlchemy sessions as parameters, HTTP charges -----------------------

INVOICES = {  # the open demo invoices: number -> (customer, amount in cents)
    "INV-1002": ("cus_acme", 4500),
    "INV-1003": ("cus_globex", 99000),
    "INV-1004": ("cus_initech", 2350),
    "INV-1006": ("cus_hooli", 48000),
    "INV-1007": ("cus_globex", 1999),
    "INV-1008": ("cus_stark", 250000),
}


def billing_env(url: str) -> dict[str, str]:
    return env_for(PAYMENTS_URL=url)


def charges_by_invoice(snapshot: Stats) -> Stats:
    """The payments service's counters per invoice instead of per path.

    The job charges one invoice at a time, so the first ``answered["/charges"]``
    charges are the answered ones.
    """
    charges = snapshot["charges"]
    answered = snapshot["answered"].get("/charges", 0)
    assert answered <= len(charges) == snapshot["requests"].get("/charges", 0)
    number = [charge["description"].removeprefix("Invoice ") for charge in charges]
    return {
        "requests": dict(Counter(number)),
        "answered": dict(Counter(number[:answered])),
        "charges": charges,
    }


def billing_database(folder: Path) -> dict[str, Any]:
    with sqlite3.connect(folder / "billing.db") as conn:
        invoices = conn.execute(
            "SELECT number, customer, amount_cents, status, charge_id FROM invoices ORDER BY number"
        ).fetchall()
        payments = conn.execute(
            "SELECT i.number, p.charge_id, p.amount_cents FROM payments p"
            " JOIN invoices i ON i.id = p.invoice_id ORDER BY p.id"
        ).fetchall()
    return {"invoices": invoices, "payments": payments}


def check_billing(folder: Path, snapshot: Stats) -> None:
    """Every open invoice paid exactly once, with the service's last charge for it."""
    db = billing_database(folder)
    assert all(status == "paid" for _, _, _, status, _ in db["invoices"]), db["invoices"]
    paid = [number for number, _, _ in db["payments"]]
    assert sorted(paid) == sorted(INVOICES), f"payments recorded: {paid}"
    last_charge = {}
    for charge in snapshot["charges"]:
        number = charge["description"].removeprefix("Invoice ")
        assert (charge["customer"], charge["amount_cents"]) == INVOICES[number], charge
        last_charge[number] = charge["id"]
    for number, charge_id, amount in db["payments"]:
        assert charge_id == last_charge[number], (number, charge_id, snapshot["charges"])
        assert amount == INVOICES[number][1]
    charge_ids = {number: charge_id for number, _, _, _, charge_id in db["invoices"]}
    assert all(charge_ids[number] == last_charge[number] for number in INVOICES)


@pytest.fixture(scope="module")
def billing_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """stdout, database and charges of a billing job that never crashed."""
    folder = tmp_path_factory.mktemp("billing-reference")
    with service(folder, "payments_service.py") as url:
        done = run(folder, billing_env(url), durable("billing_job.py", "billing.db"))
        assert done.returncode == 0, done.stderr
        assert "new run" in done.stderr
        snapshot = stats(url)
    assert done.stdout.splitlines()[-1] == "billed 6 invoice(s), 4,058.49 EUR in total"
    check_billing(folder, snapshot)
    by_invoice = charges_by_invoice(snapshot)["requests"]
    assert by_invoice == dict.fromkeys(INVOICES, 1)
    return {"stdout": done.stdout, "db": billing_database(folder), "charges": by_invoice}


def test_billing_job_plain_python(tmp_path: Path, billing_reference: dict[str, Any]) -> None:
    with service(tmp_path, "payments_service.py") as url:
        done = run(tmp_path, billing_env(url), plain("billing_job.py", "billing.db"))
        assert done.returncode == 0, done.stderr
        snapshot = stats(url)
    assert done.stdout == billing_reference["stdout"]
    assert not (tmp_path / ".autodurable").exists()
    check_billing(tmp_path, snapshot)
    assert billing_database(tmp_path) == billing_reference["db"]  # the same charge ids too


@pytest.mark.usefixtures("unmeasured_children")  # one of several kills of one program
@pytest.mark.parametrize(
    "charged_before",
    [0, 2, 5],
    ids=["while charging invoice 1", "while charging invoice 3", "while charging the last"],
)
def test_billing_job_killed_then_resumed(
    tmp_path: Path, billing_reference: dict[str, Any], charged_before: int
) -> None:
    ready = kill_point(lambda path: path == "/charges", charged_before, 1)
    with service(tmp_path, "payments_service.py", delay=DELAY) as url:
        env = billing_env(url)
        argv = durable("billing_job.py", "billing.db")
        kill = run_and_kill(tmp_path, env, argv, url, ready)
        charged = kill.at["answered"].get("/charges", 0)  # charged_before, unless it was missed
        assert charged_before <= charged < len(INVOICES)
        resumed = run(tmp_path, env, argv)
        final = stats(url)

    # Per invoice: the first `charged` were charged and paid, the next one is in flight.
    per_invoice = Kill(kill.stdout, charges_by_invoice(kill.at), charges_by_invoice(kill.after))
    numbers = list(INVOICES)
    assert per_invoice.done() == set(numbers[:charged])
    assert per_invoice.in_flight() == {numbers[charged]}
    final_counts = charges_by_invoice(final)["requests"]
    check_requests(per_invoice, final_counts, billing_reference["charges"])
    check_resumed(resumed, kill, billing_reference["stdout"])
    check_billing(tmp_path, final)
    # The same invoices and payments as the uncrashed run (the charge ids may differ:
    # a charge in flight at the kill was made twice, and the second one counts).
    db, reference = billing_database(tmp_path), billing_reference["db"]
    assert [row[:4] for row in db["invoices"]] == [row[:4] for row in reference["invoices"]]
    assert [row[::2] for row in db["payments"]] == [row[::2] for row in reference["payments"]]


# -- downloader.py: a thread pool (map, then submit + as_completed) ------------------------

FILES = [f"sales-2024-{month:02d}.csv" for month in range(1, 13)]


def is_file(path: str) -> bool:
    return path.startswith("/files/")


def is_checksum(path: str) -> bool:
    return path.startswith("/checksums/")


def downloads(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((folder / "downloads").iterdir())}


@pytest.fixture(scope="module")
def downloader_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("downloader-reference")
    with service(folder, "files_service.py") as url:
        done = run(folder, env_for(FILES_URL=url), durable("downloader.py"))
        assert done.returncode == 0, done.stderr
        assert "new run" in done.stderr
        requests = stats(url)["requests"]
    assert done.stdout.splitlines()[-1] == "checksums: 12 ok, 0 bad"
    files = downloads(folder)
    assert sorted(files) == sorted([*FILES, "index.json"])
    index = json.loads(files["index.json"])
    assert [entry["name"] for entry in index["files"]] == FILES
    assert all(entry["verified"] for entry in index["files"])
    expected = ["/files", *(f"/files/{n}" for n in FILES), *(f"/checksums/{n}" for n in FILES)]
    assert requests == dict.fromkeys(expected, 1)
    return {"stdout": done.stdout, "files": files, "requests": requests}


def test_downloader_plain_python(tmp_path: Path, downloader_reference: dict[str, Any]) -> None:
    with service(tmp_path, "files_service.py") as url:
        done = run(tmp_path, env_for(FILES_URL=url), plain("downloader.py"))
        assert done.returncode == 0, done.stderr
        assert stats(url)["requests"] == downloader_reference["requests"]
    assert done.stdout == downloader_reference["stdout"]
    assert downloads(tmp_path) == downloader_reference["files"]
    assert not (tmp_path / ".autodurable").exists()


@pytest.mark.usefixtures("unmeasured_children")  # one of several kills of one program
@pytest.mark.parametrize(
    ("group", "answered"),
    [(is_file, 0), (is_file, 8), (is_checksum, 0), (is_checksum, 4)],
    ids=[
        "downloads 1-4 in flight",
        "downloads 9-12 in flight",
        "checksums 1-4 in flight",
        "checksums 5-8 in flight",
    ],
)
def test_downloader_killed_then_resumed(
    tmp_path: Path,
    downloader_reference: dict[str, Any],
    group: Callable[[str], bool],
    answered: int,
) -> None:
    with service(tmp_path, "files_service.py", delay=DELAY) as url:
        env = env_for(FILES_URL=url)
        kill = run_and_kill(tmp_path, env, durable("downloader.py"), url,
                            kill_point(group, answered, 4))  # fmt: skip
        resumed = run(tmp_path, env, durable("downloader.py"))
        final = stats(url)["requests"]
    check_requests(kill, final, downloader_reference["requests"])
    check_resumed(resumed, kill, downloader_reference["stdout"])
    assert downloads(tmp_path) == downloader_reference["files"]


# -- crawler.py: one httpx.AsyncClient passed around; gather, then a TaskGroup -------------

CATEGORIES = {"tools": 5, "garden": 4, "kitchen": 3}


def is_category(path: str) -> bool:
    return path.startswith("/shop/") and path.count("/") == 2 and path != "/shop/"


def is_item(path: str) -> bool:
    return path.startswith("/shop/item/")


@pytest.fixture(scope="module")
def crawler_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("crawler-reference")
    with service(folder, "files_service.py") as url:
        done = run(folder, env_for(SHOP_URL=url + "/shop/"), durable("crawler.py"))
        assert done.returncode == 0, done.stderr
        assert "new run" in done.stderr
        requests = stats(url)["requests"]
    assert done.stdout.splitlines()[-1] == "wrote catalogue.json"
    catalogue = (folder / "catalogue.json").read_text()
    assert len(json.loads(catalogue)["items"]) == sum(CATEGORIES.values())
    assert sum(map(is_category, requests)) == len(CATEGORIES)
    assert sum(map(is_item, requests)) == sum(CATEGORIES.values())
    return {"stdout": done.stdout, "catalogue": catalogue, "requests": requests}


def test_crawler_plain_python(tmp_path: Path, crawler_reference: dict[str, Any]) -> None:
    with service(tmp_path, "files_service.py") as url:
        done = run(tmp_path, env_for(SHOP_URL=url + "/shop/"), plain("crawler.py"))
        assert done.returncode == 0, done.stderr
        assert stats(url)["requests"] == crawler_reference["requests"]
    assert done.stdout == crawler_reference["stdout"]
    assert (tmp_path / "catalogue.json").read_text() == crawler_reference["catalogue"]
    assert not (tmp_path / ".autodurable").exists()


@pytest.mark.usefixtures("unmeasured_children")  # one of several kills of one program
@pytest.mark.parametrize(
    ("group", "answered", "flying"),
    [(is_category, 0, len(CATEGORIES)), (is_item, 0, 4), (is_item, 8, 4)],
    ids=[
        "category pages in flight (gather)",
        "items 1-4 in flight (TaskGroup)",
        "items 9-12 in flight (TaskGroup)",
    ],
)
def test_crawler_killed_then_resumed(
    tmp_path: Path,
    crawler_reference: dict[str, Any],
    group: Callable[[str], bool],
    answered: int,
    flying: int,
) -> None:
    with service(tmp_path, "files_service.py", delay=DELAY) as url:
        env = env_for(SHOP_URL=url + "/shop/")
        kill = run_and_kill(tmp_path, env, durable("crawler.py"), url,
                            kill_point(group, answered, flying))  # fmt: skip
        resumed = run(tmp_path, env, durable("crawler.py"))
        final = stats(url)["requests"]
    check_requests(kill, final, crawler_reference["requests"])
    check_resumed(resumed, kill, crawler_reference["stdout"])
    assert (tmp_path / "catalogue.json").read_text() == crawler_reference["catalogue"]


# -- what the analyser sees ------------------------------------------------------------------


def test_explain_follows_annotated_parameters(tmp_path: Path) -> None:
    """Functions whose I/O goes through an annotated parameter (a SQLAlchemy Session,
    an httpx.AsyncClient) are steps; the functions calling them are workflow code."""
    done = run(
        tmp_path,
        env_for(),
        [sys.executable, "-m", "autodurable", "explain", "--json",
         str(EXAMPLE / "billing_job.py"), str(EXAMPLE / "crawler.py")],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    roles = {
        f"{module['module']}:{function['qualname']}": (function["role"], function["reason"])
        for module in json.loads(done.stdout)["modules"]
        for function in module["functions"]
    }
    expected = {
        "billing_job:count_invoices": "step",
        "billing_job:add_demo_invoices": "step",
        "billing_job:pending_invoices": "step",
        "billing_job:mark_paid": "step",
        "billing_job:charge": "step",
        "billing_job:main": "workflow",
        "crawler:fetch": "step",
        "crawler:item_links": "workflow",
        "crawler:scrape_item": "workflow",
        "crawler:main": "workflow",
    }
    actual = {name: roles[name][0] for name in expected}
    assert actual == expected, {
        name: roles[name] for name in expected if actual[name] != expected[name]
    }
