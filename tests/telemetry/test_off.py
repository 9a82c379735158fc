"""Telemetry off costs nothing and imports nothing; on, it is configured from pyproject,
the environment or `configure`, and refused with the fix when OpenTelemetry is missing."""

from __future__ import annotations

import sys

import pytest

import autodurable
from autodurable._core._config import load_settings
from autodurable._core._runtime import get_runtime
from autodurable._errors import ConfigError

from ..helpers import child_env, run_python, write_script

OFF = """
import sys
import autodurable

@autodurable.step
def one():
    return 1

@autodurable.workflow
def flow():
    return one() + one()

q = autodurable.Queue("off")
assert flow() == 2
assert autodurable.get_workflow(q.enqueue(flow).workflow_id).workflow_id
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
print(loaded)
"""


def test_with_telemetry_off_running_workflows_imports_no_opentelemetry(tmp_path, database):
    script = write_script(tmp_path, "off.py", OFF)
    done = run_python(script, env=child_env(AUTODURABLE_DATABASE_URL=database))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_off_by_default_and_the_fast_path_is_kept():
    runtime = get_runtime()
    assert runtime.telemetry is None
    assert runtime.steps_watched is False
    assert runtime.settings.telemetry.active is False


def test_configure_turns_it_on_with_the_general_step_path():
    autodurable.configure(telemetry=True)
    runtime = get_runtime()
    assert runtime.telemetry is not None
    assert runtime.steps_watched is True
    autodurable.configure(telemetry={"metrics": False})
    assert get_runtime().telemetry.metrics is None  # type: ignore[union-attr]
    autodurable.configure(telemetry=False)
    assert get_runtime().telemetry is None


def test_pyproject_and_environment(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.autodurable.telemetry]\nmetrics = false\n", encoding="utf-8"
    )
    settings = load_settings(cwd=tmp_path).telemetry
    assert (settings.active, settings.traces, settings.metrics) == (True, True, False)
    monkeypatch.setenv("AUTODURABLE_TELEMETRY", "0")
    assert load_settings(cwd=tmp_path).telemetry.active is False
    (tmp_path / "pyproject.toml").write_text(
        "[tool.autodurable]\ntelemetry = false\n", encoding="utf-8"
    )
    monkeypatch.setenv("AUTODURABLE_TELEMETRY", "yes")
    assert load_settings(cwd=tmp_path).telemetry.active is True
    monkeypatch.setenv("AUTODURABLE_TELEMETRY", "maybe")
    with pytest.raises(ConfigError, match="AUTODURABLE_TELEMETRY='maybe'"):
        load_settings(cwd=tmp_path)


def test_on_without_opentelemetry_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'autodurable\[otel\]'"):
        autodurable.configure(telemetry=True)
    assert get_runtime().telemetry is None  # the configuration is unchanged
