"""Checked, frozen records (`autodurable._core._fields`): what options and settings are made of."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping
from typing import Any

import pytest

from autodurable import CallOptions, Retry
from autodurable._core._config import LimitSettings, ScheduleSettings, Settings
from autodurable._core._fields import (
    REQUIRED,
    Invalid,
    InvalidFields,
    Record,
    field,
    integer,
    number,
    optional,
    record,
    table,
    text,
)


class Inner(Record):
    """A record used inside another."""

    size: int = field(default=1, check=integer(ge=1))


class Outer(Record):
    """A record with a required field, a nested record and a table of records."""

    name: str = field(check=text(min_length=1))
    ratio: float | None = field(default=None, check=optional(number(gt=0, le=1)))
    inner: Inner = field(default=Inner(), check=record(Inner))
    more: dict[str, Inner] = field(default={}, check=table(record(Inner)))

    def check_whole(self, values: Mapping[str, Any]) -> None:
        if values["name"] == "none" and values["ratio"] is not None:
            raise Invalid("a ratio needs a real name")


def test_every_problem_is_reported_at_once_with_its_path_and_value():
    with pytest.raises(InvalidFields) as info:
        Outer(ratio=2, inner={"size": 0}, more={"a": {"size": "x"}, "b": {"bogus": 1}}, extra=3)
    problems = {".".join(p.path): (p.message, p.value) for p in info.value.problems}
    assert problems == {
        "extra": ("unknown field; the fields are name, ratio, inner, more", 3),
        "name": ("missing: it must be given", REQUIRED),
        "ratio": ("must be at most 1", 2),
        "inner.size": ("must be at least 1", 0),
        "more.a.size": ("must be a whole number", "x"),
        "more.b.bogus": ("unknown field; the fields are size", 1),
    }
    message = info.value.describe("the test's values")
    assert message.startswith("invalid the test's values: ")
    assert "inner.size: must be at least 1 (got 0)" in message
    assert "name: missing: it must be given;" in message  # nothing was given to show


def test_a_check_of_the_whole_runs_once_every_field_passed():
    with pytest.raises(InvalidFields, match="a ratio needs a real name"):
        Outer(name="none", ratio=0.5)
    with pytest.raises(InvalidFields) as info:  # a bad field: the whole is not checked
        Outer(name="none", ratio=5)
    assert [p.path for p in info.value.problems] == [("ratio",)]


def test_values_are_kept_as_checked_and_containers_are_not_shared():
    made = Outer(name="a", ratio=1, inner={"size": 3})
    assert made.ratio == 1.0 and isinstance(made.ratio, float)
    assert made.inner == Inner(size=3)
    first, second = Outer(name="a"), Outer(name="b")
    assert first.more == {} and first.more is not second.more


@pytest.mark.parametrize("bad", [True, "1", 1.5, None])
def test_numbers_refuse_bools_and_strings(bad):
    with pytest.raises(InvalidFields):
        Inner(size=bad)
    with pytest.raises(InvalidFields):
        Retry(initial_interval=True)


def test_fields_set_is_what_was_given_and_replace_checks_and_adds():
    made = Outer(name="a", ratio=None)
    assert made.fields_set == {"name", "ratio"}
    changed = made.replace(inner={"size": 2})
    assert changed.inner == Inner(size=2) and changed.fields_set == {"name", "ratio", "inner"}
    assert made.inner == Inner()  # the original is unchanged
    assert changed.replace(name="b").name == "b"  # a given field, given again
    with pytest.raises(InvalidFields, match=r"inner\.size"):
        made.replace(inner={"size": -1})


def test_records_are_frozen_compare_by_value_and_hash():
    made = Inner(size=2)
    with pytest.raises(AttributeError, match="frozen"):
        made.size = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del made.size
    assert made == Inner(size=2) != Inner(size=3)
    assert made != Outer(name="x") and hash(made) == hash(Inner(size=2))
    assert repr(made) == "Inner(size=2)"


def test_records_pickle_and_copy_with_their_fields_set():
    made = CallOptions(retries=Retry(max_attempts=4, non_retryable=(KeyError,)), timeout=3)
    for back in (pickle.loads(pickle.dumps(made)), copy.copy(made), copy.deepcopy(made)):
        assert back == made and back.fields_set == {"retries", "timeout"}


def test_trusted_records_take_values_as_they_are():
    made = CallOptions.trusted({"timeout": 2.0}, {"timeout"})
    assert made.timeout == 2.0 and made.fields_set == {"timeout"} and made.name is None


def test_a_field_must_be_declared_with_field():
    with pytest.raises(TypeError, match=r"Bad\.size: declare it with field"):

        class Bad(Record):
            size: int = 3


def test_settings_name_the_path_of_a_nested_problem():
    with pytest.raises(InvalidFields) as info:
        Settings(limits={"openai.*": {"concurrency": 0}}, schedules={"n": {"cron": "* * * * *"}})
    paths = sorted(".".join(p.path) for p in info.value.problems)
    assert paths == ["limits.openai.*.concurrency", "schedules.n.workflow"]
    with pytest.raises(InvalidFields, match="a limit needs concurrency"):
        LimitSettings()
    assert ScheduleSettings(workflow="app:nightly", cron="0 3 * * *").catch_up == "latest"
