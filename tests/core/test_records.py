"""`autodurable._records`: the store's and the runtime's records without dataclasses."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
from types import CodeType
from typing import ClassVar

import pytest

import autodurable
from autodurable._record_inits import INITS
from autodurable._records import FrozenRecord, Record, fields_of, init_source, inits_module, replace
from autodurable._store._protocol import StepRecord, WorkflowFilter


class Point(Record):
    x: int
    y: int = 0
    label: str | None = None
    kind: ClassVar[str] = "point"  # a class attribute, not a field


class Pin(Record, frozen=True):
    name: str
    at: tuple[int, int] = (0, 0)


class Labelled(Pin, frozen=True):
    colour: str = "red"


def test_fields_are_taken_by_position_or_keyword_with_their_defaults() -> None:
    assert fields_of(Point) == ("x", "y", "label")
    point = Point(1, label="a")
    assert (point.x, point.y, point.label) == (1, 0, "a")
    assert Point(x=3, y=4) == Point(3, 4)
    assert Point.kind == "point" and Point.__match_args__ == ("x", "y", "label")
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]


def test_records_have_slots_only() -> None:
    point = Point(1)
    with pytest.raises(AttributeError):
        point.other = 1  # type: ignore[attr-defined]
    assert not hasattr(point, "__dict__")


def test_equality_repr_and_hash_follow_the_fields() -> None:
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2) != (1, 2, None)  # another type is never equal
    assert repr(Point(1, 2, "a")) == "Point(x=1, y=2, label='a')"
    with pytest.raises(TypeError):
        hash(Point(1))  # mutable and compared by value: unhashable, as a dataclass
    assert hash(Pin("a", (1, 2))) == hash(Pin("a", (1, 2)))
    assert len({Pin("a"), Pin("a"), Pin("b")}) == 2


def test_frozen_records_refuse_assignment_and_deletion() -> None:
    pin = Pin("a")
    with pytest.raises(FrozenRecord, match="frozen Pin"):
        pin.name = "b"  # type: ignore[misc]
    with pytest.raises(FrozenRecord):
        del pin.name
    assert isinstance(FrozenRecord("x"), AttributeError)
    assert pin.name == "a"


def test_subclasses_add_fields_after_their_bases() -> None:
    labelled = Labelled("a", (1, 1), "blue")
    assert fields_of(labelled) == ("name", "at", "colour")
    assert repr(labelled) == "Labelled(name='a', at=(1, 1), colour='blue')"
    assert labelled != Pin("a", (1, 1))


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    pin = Pin("a", (1, 2))
    moved = replace(pin, at=(3, 4))
    assert moved == Pin("a", (3, 4)) and pin == Pin("a", (1, 2))
    with pytest.raises(TypeError, match="no field nope"):
        replace(pin, nope=1)


def test_copies_and_pickles_keep_every_field_even_when_frozen() -> None:
    for value in (Pin("a", (1, 2)), Labelled("b"), Point(1, 2, "c")):
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
        assert pickle.loads(pickle.dumps(value)) == value


def test_declarations_that_would_misbehave_are_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Bad(Record):
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="mutable default"):

        class Shared(Record):
            items: list[int] = []


def test_the_store_records_are_records() -> None:
    step = StepRecord(1, "s", "succeeded", "1", None, 1, 0.5, 1.5)
    assert (step.executor_id, step.branch, step.arguments) == (None, "", None)
    assert WorkflowFilter(name="a") == WorkflowFilter(name="a")
    pending = ("pending",)
    assert hash(WorkflowFilter(statuses=pending)) == hash(WorkflowFilter(statuses=pending))


def _package_records() -> list[type[Record]]:
    for module in pkgutil.walk_packages(autodurable.__path__, "autodurable."):
        if not module.name.endswith("__main__"):  # runs the CLI when imported
            importlib.import_module(module.name)
    found: list[type[Record]] = [Record]  # no fields: its __init__ is compiled ahead too
    pending = list(Record.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("autodurable."):
            found.append(cls)
    return found


def _same_code(a: CodeType, b: CodeType) -> bool:
    return (a.co_code, a.co_varnames, a.co_names, a.co_consts) == (
        b.co_code, b.co_varnames, b.co_names, b.co_consts,
    )  # fmt: skip


def test_every_package_record_has_its_init_compiled_ahead() -> None:
    records = _package_records()
    assert len(records) >= 20
    shapes = {(cls.__record_fields__, cls.__setattr__ is not object.__setattr__) for cls in records}
    expected = {}
    for fields, frozen in shapes:
        scope: dict[str, object] = {}
        exec(init_source(fields, frozen), scope)
        expected[(fields, frozen)] = scope["__init__"].__code__  # type: ignore[attr-defined]
    stale = set(INITS) ^ set(expected) or {
        shape for shape, init in INITS.items() if not _same_code(init.__code__, expected[shape])
    }
    assert not stale, (
        f"records changed: write this to autodurable/_record_inits.py (then ruff format it):\n"
        f"{inits_module(records)}"
    )
    # And the classes use them: their __init__ runs the module's code.
    for cls in records:
        shape = (cls.__record_fields__, cls.__setattr__ is not object.__setattr__)
        assert cls.__init__.__code__ is INITS[shape].__code__


def test_a_record_with_new_fields_gets_an_init_compiled_on_the_spot() -> None:
    class Odd(Record):
        first_of_its_kind: int
        second: str = "two"

    assert (("first_of_its_kind", "second"), False) not in INITS
    odd = Odd(first_of_its_kind=1)
    assert (odd.first_of_its_kind, odd.second) == (1, "two")
    assert (
        Odd.__init__.__qualname__
        == "test_a_record_with_new_fields_gets_an_init_compiled_on_the_spot.<locals>.Odd.__init__"
    )
