"""Filtering workflows by recorded version and error type, from Python and in the
stores (parameterised SQL), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import pytest

import autodurable
from autodurable._control._operations import matching_workflows, workflow_filter
from autodurable._core._runtime import get_runtime
from autodurable._errors import AutodurableError
from autodurable._store import FAILED, PENDING, WorkflowFilter, WorkflowRecord

pytestmark = pytest.mark.usefixtures("database")


class Declined(Exception):
    pass


@autodurable.step
def fail_with(kind: str) -> None:
    raise {"value": ValueError, "declined": Declined}[kind](kind)


@autodurable.workflow
def job(kind: str) -> str:
    if kind == "ok":
        return "ok"
    fail_with(kind)
    return "unreachable"


def ids(**filters) -> list[str]:
    return [info.workflow_id for info in autodurable.list_workflows(**filters)]


def test_list_workflows_filters_by_app_version_and_error_type():
    autodurable.configure(app_version="v1")
    autodurable.options(job, workflow_id="a")("ok")
    with pytest.raises(ValueError):
        autodurable.options(job, workflow_id="b")("value")
    autodurable.configure(app_version="v2")
    with pytest.raises(Declined):
        autodurable.options(job, workflow_id="c")("declined")
    with pytest.raises(ValueError):
        autodurable.options(job, workflow_id="d")("value")

    assert ids(app_version="v1") == ["b", "a"]
    assert ids(app_version="v2", status="failed") == ["d", "c"]
    assert ids(error_type="ValueError") == ["d", "b"]
    assert ids(error_type="builtins:ValueError", app_version="v1") == ["b"]
    assert ids(error_type="builtins.ValueError") == ["d", "b"]
    assert ids(error_type="Declined") == ["c"]
    assert ids(error_type=f"{__name__}:Declined") == ["c"]
    assert ids(error_type=f"{__name__}.Declined") == ["c"]
    assert ids(error_type="Error") == [] and ids(error_type="%") == []  # no pattern matching
    assert ids(error_type="ValueError", limit=1, offset=1) == ["b"]
    with pytest.raises(AutodurableError, match="error_type must be a non-empty string"):
        autodurable.list_workflows(error_type="  ")

    where = workflow_filter(["failed"], "*:job", app_version="v2")
    assert [info.workflow_id for info in matching_workflows(where)] == ["d", "c"]


def test_the_stores_match_error_types_safely_and_page():
    store = get_runtime().store
    now = time.time()
    errors = {
        "json": '{"~":"exception","c":"builtins:KeyError","m":"k"}',
        "quote": '{"~":"exception","c":"x:Y\' OR \'1\'=\'1","m":""}',
        "text": "not JSON at all",
        "list": '["c"]',
        "none": None,
    }
    for number, (workflow_id, error) in enumerate(errors.items()):
        store.create_workflow(
            WorkflowRecord(workflow_id, "m:f", FAILED if error else PENDING, "{}", None, error,
                           None, now + number, now + number, "v")
        )  # fmt: skip

    def found(**fields) -> list[str]:
        return [r.workflow_id for r in store.find_workflows(WorkflowFilter(**fields), 10)]

    assert found(error_type="KeyError") == ["json"]
    assert found(error_type="x:Y' OR '1'='1") == ["quote"]  # a parameter, not SQL
    assert found(error_type="Y' OR '1'='1") == ["quote"]
    assert found(error_type="not JSON at all") == []
    assert found(statuses=()) == []
    assert found(statuses=(PENDING,), app_version="v") == ["none"]
    assert [r.workflow_id for r in store.find_workflows(WorkflowFilter(), 2, 1)] == [
        "list",
        "text",
    ]
