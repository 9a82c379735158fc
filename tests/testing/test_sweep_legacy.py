"""The crash sweep of the other legacy programs under ``autodurable run``, each killed
for real at every step boundary and run again (`sweep_program`), against its local
service: the weather report (HTTP GETs, files, one POST), the billing job
(SQLAlchemy sessions passed as parameters, HTTP charges), the downloader (a
thread pool) and the crawler (asyncio with an HTTP client passed around).

Each program is copied into a folder of its own (inside the repository, its
project would be the repository). A boundary costs four runs of a program, so
these sweep a sample of the boundaries (the first attempt of every step, and
every fifth one), on SQLite; the store-specific part of resuming is swept on
both stores by tests/testing/test_sweep_examples.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from autodurable.testing import Attempt, SweepFailure, sweep_program

from ..helpers import ROOT, child_env, serving

EXAMPLE = ROOT / "examples" / "legacy"


@contextmanager
def service(folder: Path, script: str, *args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / script), "--port", "0", *args],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    with serving(process) as url:
        yield url


# Each boundary costs four runs of a program: their children run unmeasured.
pytestmark = pytest.mark.usefixtures("unmeasured_children")

PROGRAMS = {
    # program, its arguments, its service (script, arguments), the environment naming
    # it, and what it leaves in its folder (removed before each run that starts afresh)
    "weather_report": ("weather_report.py", ["Oslo", "Rome"], ("weather_service.py",
                       ["--state", "weather.json"]), lambda url: {"WEATHER_URL": url},
                       "weather"),
    "billing_job": ("billing_job.py", ["billing.db"], ("payments_service.py", []),
                    lambda url: {"PAYMENTS_URL": url}, "billing.db"),
    "downloader": ("downloader.py", [], ("files_service.py", []),
                   lambda url: {"FILES_URL": url}, "downloads"),
    "crawler": ("crawler.py", [], ("files_service.py", []),
                lambda url: {"SHOP_URL": url + "/shop/"}, "catalogue.json"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - {"billing_job"}))
def test_a_legacy_program_resumes_after_a_kill_at_every_boundary(tmp_path, name):
    program, args, (service_script, service_args), settings, output = PROGRAMS[name]
    folder = tmp_path / name
    folder.mkdir()
    (folder / program).write_text((EXAMPLE / program).read_text())

    def reset() -> None:  # the program's own output: a fresh world for each run
        shutil.rmtree(folder / output, ignore_errors=True)
        (folder / output).unlink(missing_ok=True) if (folder / output).is_file() else None

    with service(tmp_path, service_script, *service_args) as url:
        env = child_env(AUTODURABLE_DATABASE_URL=f"sqlite:///{tmp_path / 'state.db'}",
                        **settings(url))  # fmt: skip
        # Every boundary costs four runs: a sample of them, every step kind included
        # (the first attempt of each name) and some of each concurrent stretch.
        seen: set[str] = set()

        def sample(attempt: Attempt) -> bool:
            first = attempt.name not in seen
            seen.add(attempt.name)
            return first or attempt.index % 5 == 0

        report = sweep_program(program, *args, cwd=folder, env=env, reset=reset, select=sample)
    assert report.exit_code == 0 and len(report.attempts) >= 3
    assert 2 * len({a.name for a in report.attempts}) <= report.cases < 2 * len(report.attempts)


SEED = """
import sys
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
import billing_job
engine = create_engine(f"sqlite:///{sys.argv[1]}")
billing_job.Base.metadata.create_all(engine)
with Session(engine) as session:
    billing_job.add_demo_invoices(session)
    session.commit()
"""


def test_the_billing_job_sweep_finds_its_seeding_step_and_passes_from_a_seeded_database(
    tmp_path,
):
    """Killed after its demo invoices were inserted but before that step was recorded,
    the billing job inserts them again on resume and stops on the UNIQUE constraint:
    the one boundary of the program where a step's effect is not idempotent, which
    the sweep names. From a database seeded beforehand, every boundary resumes."""
    program, args, (script, service_args), settings, output = PROGRAMS["billing_job"]
    folder = tmp_path / "billing_job"
    folder.mkdir()
    (folder / program).write_text((EXAMPLE / program).read_text())
    with service(tmp_path, script, *service_args) as url:
        env = child_env(AUTODURABLE_DATABASE_URL=f"sqlite:///{tmp_path / 'state.db'}",
                        **settings(url))  # fmt: skip

        def empty() -> None:
            (folder / output).unlink(missing_ok=True)

        with pytest.raises(SweepFailure) as failure:  # the steps up to the seeding
            sweep_program(program, *args, cwd=folder, env=env, reset=empty,
                          select=lambda a: a.index <= 3)  # fmt: skip
        assert "crashed after step 3 'add_demo_invoices'" in str(failure.value)
        assert "UNIQUE constraint failed: invoices.number" in str(failure.value)

        first = 4  # the first charge, after the schema, the count and the invoices read

        def seeded() -> None:
            empty()
            done = subprocess.run([sys.executable, "-c", SEED, output], cwd=folder, env=env,
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr

        # The boundaries of the first invoice's steps (a charge and its payment): the
        # other invoices repeat the same steps, and each boundary costs four runs.
        report = sweep_program(program, *args, cwd=folder, env=env, reset=seeded,
                               select=lambda a: a.index in (first, first + 1))  # fmt: skip
    names = [a.name for a in report.attempts]
    assert "add_demo_invoices" not in names and names.count("charge") >= 2
    assert [names[first - 1], names[first]] == ["charge", "mark_paid"]
    assert report.exit_code == 0 and report.cases == 4
