"""The crash sweep of the legacy billing job under ``autodurable run`` (SQLAlchemy
sessions passed as parameters, HTTP charges), killed for real at every step
boundary and run again, on each store (`database_url`); its own file, so that
the two longest sweeps run in parallel test processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autodurable.testing import SweepFailure, sweep_program

from ..helpers import child_env
from ._legacy import EXAMPLE, PROGRAMS, service

# Each boundary costs four runs of the program: its children run unmeasured.
pytestmark = pytest.mark.usefixtures("unmeasured_children")


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
    tmp_path, database_url
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
        env = child_env(AUTODURABLE_DATABASE_URL=database_url, **settings(url))

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

        # Every boundary of a run from the seeded database.
        report = sweep_program(program, *args, cwd=folder, env=env, reset=seeded)
    names = [a.name for a in report.attempts]
    assert "add_demo_invoices" not in names and names.count("charge") >= 2
    assert [names[first - 1], names[first]] == ["charge", "mark_paid"]
    assert report.exit_code == 0 and report.cases == 2 * len(report.attempts)
