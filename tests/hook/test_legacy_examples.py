"""The legacy examples (examples/legacy/): unmodified scripts made durable by `autodurable run`.

Each script runs as ``python -m autodurable run SCRIPT`` in a fresh folder (so
the state database is fresh), once without a crash for reference, then again
with a SIGKILL from outside at a chosen point followed by the same command to
completion. The outside world is checked: the weather service's request
counters (every GET once, only the request in flight at the kill may repeat),
the files written, and for the audit the database rows and the log.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ..helpers import ROOT, child_env, run_command, serving

EXAMPLE = ROOT / "examples" / "legacy"
CITIES = ["Amsterdam", "Berlin", "Lisbon", "Oslo", "Rome", "Vienna"]  # the script's default
SAMPLE = 5  # items the audit picks


@contextmanager
def weather_service(folder: Path, post_delay: float = 0.0) -> Iterator[str]:
    """A weather service with its own state file; killed and reaped on exit."""
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "weather_service.py"), "--port", "0",
         "--state", str(folder / "service.json"), "--post-delay", str(post_delay)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    with serving(service) as url:
        yield url


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return json.load(response)


def command(script: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "autodurable", "run", str(EXAMPLE / script), *args]


def own_state(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with a state database in `folder`: the examples live in the repository, whose
    own state folder would be shared by tests running at the same time."""
    return {"AUTODURABLE_DATABASE_URL": f"sqlite:///{folder / 'state.db'}", **env}


def run(folder: Path, env: dict[str, str], script: str, *args: str) -> subprocess.CompletedProcess:
    """Run the script durably in `folder` to completion."""
    env = own_state(folder, env)
    return run_command(command(script, *args), cwd=folder, env=env, timeout=90)


def run_and_kill(
    folder: Path, env: dict[str, str], script: str, args: list[str], ready: Callable[[], bool]
) -> tuple[str, str]:
    """Start the script, SIGKILL it as soon as `ready()`, reap it; its (stdout, stderr)."""
    env = own_state(folder, env)
    child = subprocess.Popen(
        command(script, *args), cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert child.poll() is None, f"it finished before the kill: {child.communicate()}"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    return out, err


# -- weather_report.py: HTTP GETs, files, one POST ---------------------------------------


def weather_env(url: str) -> dict[str, str]:
    return child_env(WEATHER_URL=url, WEATHER_OUTPUT="weather", WEATHER_PAUSE="0.5")


def gets(url: str) -> dict[str, int]:
    counts = stats(url)["requests"]
    return {city: counts.get(f"/weather/{city}", 0) for city in CITIES}


def weather_files(folder: Path) -> dict[str, str]:
    """The output folder, with the report's "Generated <time>" line blanked."""
    files = {p.name: p.read_text() for p in sorted((folder / "weather").iterdir())}
    files["report.md"] = re.sub(r"(?m)^Generated .*$", "Generated <time>", files["report.md"])
    return files


@pytest.fixture(scope="module")
def weather_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files of a run that never crashed."""
    folder = tmp_path_factory.mktemp("weather-reference")
    with weather_service(folder) as url:
        done = run(folder, weather_env(url), "weather_report.py")
        assert done.returncode == 0, done.stderr
        assert "new run" in done.stderr
        assert gets(url) == dict.fromkeys(CITIES, 1)
        [report] = stats(url)["reports"]
        assert report["markdown"] == (folder / "weather" / "report.md").read_text()
    files = weather_files(folder)
    assert sorted(files) == sorted([f"{c.lower()}.json" for c in CITIES] + ["report.md"])
    assert "| Vienna |" in files["report.md"] and "Coldest: " in files["report.md"]
    return files


@pytest.mark.usefixtures("unmeasured_children")  # one of several kills of one program
@pytest.mark.parametrize(
    ("when", "fetched"),
    [("between", 1), ("fetching", 4), ("publishing", len(CITIES))],
    ids=["between cities 1 and 2", "while fetching city 4", "while publishing"],
)
def test_weather_report_killed_then_resumed(
    tmp_path: Path, weather_reference: dict[str, str], when: str, fetched: int
) -> None:
    publishing = when == "publishing"
    with weather_service(tmp_path, post_delay=2.0 if publishing else 0.0) as url:
        env = weather_env(url)

        def ready() -> bool:
            if publishing:  # the report is stored, the answer is not sent yet
                return len(stats(url)["reports"]) == 1
            if sum(gets(url).values()) < fetched:
                return False
            if when == "between":  # the city is saved: wait a little, into the pause
                saved = (tmp_path / "weather" / f"{CITIES[fetched - 1].lower()}.json").exists()
                time.sleep(0.15 if saved else 0)
                return saved
            return True  # at once: its fetch step may not be recorded yet

        out, _ = run_and_kill(tmp_path, env, "weather_report.py", [], ready)
        assert "published" not in out
        assert not publishing or "wrote weather/report.md" in out

        resumed = run(tmp_path, env, "weather_report.py")
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming run" in resumed.stderr
        assert resumed.stdout.splitlines()[-1].startswith("published report #")

        counts, service = gets(url), stats(url)
    # Every city was fetched once; only the one in flight at the kill may have been
    # fetched again (its result was not recorded yet).
    in_flight = CITIES[fetched - 1] if when == "fetching" else None
    assert all(n == 1 for city, n in counts.items() if city != in_flight), counts
    assert in_flight is None or counts[in_flight] in (1, 2), counts
    # The report was posted once, or twice if the kill came while it was in flight.
    posts = service["requests"]["/reports"]
    assert (posts == 1) if not publishing else (1 <= posts <= 2), service["requests"]
    assert len(service["reports"]) == posts
    report_md = (tmp_path / "weather" / "report.md").read_text()
    assert all(report["markdown"] == report_md for report in service["reports"])
    assert weather_files(tmp_path) == weather_reference


# -- inventory_audit.py: sqlite3, random, clocks, a log ---------------------------------

SAMPLE_LINE = re.compile(r"^auditing (\d+) of (\d+) items: (.*)$", re.M)
LOG_LINE = re.compile(r"^(\S+) (\S+) expected=(\d+) counted=(-?\d+)$")


def audit_env() -> dict[str, str]:
    return child_env(AUDIT_LOG="audit.log", AUDIT_SAMPLE=str(SAMPLE), AUDIT_PAUSE="0.5")


def audits(folder: Path) -> list[tuple[str, str, int, int]]:
    """(counted_at, sku, expected, counted) of every audit row, in order."""
    if not (folder / "inventory.db").exists():
        return []
    with sqlite3.connect(folder / "inventory.db") as conn:
        try:
            return conn.execute(
                "SELECT counted_at, sku, expected, counted FROM audits ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:  # the table does not exist yet
            return []


def log_lines(folder: Path) -> list[tuple[str, str, int, int]]:
    path = folder / "audit.log"
    lines = path.read_text().splitlines() if path.exists() else []
    parsed = [LOG_LINE.match(line) for line in lines]
    assert all(parsed), lines
    return [(m[1], m[2], int(m[3]), int(m[4])) for m in parsed if m]


def check_audit(folder: Path, stdout: str) -> list[str]:
    """An audit that ran to the end is consistent with itself; returns the sampled skus."""
    [(size, total, listed)] = SAMPLE_LINE.findall(stdout)
    sample = listed.split(", ")
    assert (int(size), int(total), len(sample)) == (SAMPLE, 12, SAMPLE)
    rows = audits(folder)
    assert [row[1] for row in rows] == sample  # every sampled item audited exactly once
    assert log_lines(folder) == rows  # the log and the table agree, timestamps included
    with sqlite3.connect(folder / "inventory.db") as conn:
        on_hand = dict(conn.execute("SELECT sku, on_hand FROM items").fetchall())
    assert all(expected == on_hand[sku] for _, sku, expected, _ in rows)
    differences = [f"{sku} {counted - expected:+d}" for _, sku, expected, counted in rows
                   if counted != expected]  # fmt: skip
    lines = stdout.splitlines()
    assert lines[-2].endswith(f": {SAMPLE} items counted"), lines
    assert lines[-1] == f"differences: {', '.join(differences) or 'none'}"
    return sample


def test_inventory_audit_uncrashed(tmp_path: Path) -> None:
    done = run(tmp_path, child_env(AUDIT_LOG="audit.log", AUDIT_SAMPLE=str(SAMPLE)),
               "inventory_audit.py", "inventory.db")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "new run" in done.stderr
    assert "has no items: adding the demo stock list" in done.stdout
    check_audit(tmp_path, done.stdout)


@pytest.mark.usefixtures("unmeasured_children")  # one of several kills of one program
@pytest.mark.parametrize("killed_after", [1, 3])
def test_inventory_audit_killed_then_resumed(tmp_path: Path, killed_after: int) -> None:
    env = audit_env()

    def ready() -> bool:  # the item is in the table and the log: the script is pausing
        if len(audits(tmp_path)) >= killed_after and len(log_lines(tmp_path)) >= killed_after:
            time.sleep(0.1)
            return True
        return False

    out, _ = run_and_kill(tmp_path, env, "inventory_audit.py", ["inventory.db"], ready)
    before = audits(tmp_path)
    assert len(before) == killed_after

    resumed = run(tmp_path, env, "inventory_audit.py", "inventory.db")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stderr
    sample = check_audit(tmp_path, resumed.stdout)
    # The resumed run reused the recorded random choices: the same sample, and the same
    # counts for the items counted before the kill (which were not counted again).
    assert SAMPLE_LINE.findall(out)[0][2] == ", ".join(sample)
    item_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(item_lines) == killed_after
    assert resumed.stdout.splitlines()[1 : 1 + killed_after] == item_lines
    assert audits(tmp_path)[:killed_after] == before
