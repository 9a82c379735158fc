"""The crash sweep of the other legacy programs under ``autodurable run``, each killed
for real at every step boundary and run again (`sweep_program`), against its local
service: the weather report (HTTP GETs, files, one POST), the downloader (a
thread pool) and the crawler (asyncio with an HTTP client passed around). The
billing job's sweep is in test_sweep_billing.py.

Each program is copied into a folder of its own (inside the repository, its
project would be the repository). Every boundary of every program is swept, on
each store (`database_url`); a boundary costs four runs of a program."""

from __future__ import annotations

import shutil

import pytest

from autodurable.testing import sweep_program

from ..helpers import child_env
from ._legacy import EXAMPLE, PROGRAMS, service

# Each boundary costs four runs of a program: their children run unmeasured.
pytestmark = pytest.mark.usefixtures("unmeasured_children")


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - {"billing_job"}))
def test_a_legacy_program_resumes_after_a_kill_at_every_boundary(tmp_path, database_url, name):
    program, args, (service_script, service_args), settings, output = PROGRAMS[name]
    folder = tmp_path / name
    folder.mkdir()
    (folder / program).write_text((EXAMPLE / program).read_text())

    def reset() -> None:  # the program's own output: a fresh world for each run
        shutil.rmtree(folder / output, ignore_errors=True)
        (folder / output).unlink(missing_ok=True) if (folder / output).is_file() else None

    with service(tmp_path, service_script, *service_args) as url:
        env = child_env(AUTODURABLE_DATABASE_URL=database_url, **settings(url))
        report = sweep_program(program, *args, cwd=folder, env=env, reset=reset)
    assert report.exit_code == 0 and len(report.attempts) >= 3
    assert report.cases == 2 * len(report.attempts)  # before and after each effect
