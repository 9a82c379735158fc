"""Records: small data classes that cost next to nothing to declare.

`dataclasses` builds each class from many generated functions and imports
`inspect` to do it: 0.4 to 0.8 ms per class, which for the two dozen records of
the store and the runtime was a sixth of `autodurable run`'s start-up. A
`Record` subclass declares its fields as annotated class attributes (a value is
the field's default) and gets what the code here used of dataclasses:

- ``__slots__`` of its fields, and an ``__init__`` that takes them by position
  or by keyword, in the order declared (a field with a default after one
  without is refused, as in a dataclass);
  the package's own records take that ``__init__`` compiled ahead, from
  `autodurable._record_inits` (its bytecode cached as any module's), and others
  compile theirs when the class is made;
- ``__repr__``, ``__eq__`` (same class, equal fields; anything else is
  ``NotImplemented``) and ``__match_args__``;
- with ``frozen=True`` in the class statement, assignments and deletions raise
  `FrozenRecord` and ``__hash__`` hashes the fields; without it the record is
  unhashable, as an eq-comparing dataclass is;
- `fields_of` and `replace` in place of ``dataclasses.fields`` and
  ``dataclasses.replace``.

Invariants: a default is shared by every instance, so only immutable defaults
are accepted (a list, dict or set default is refused at declaration); a
record's fields are its own and its record bases' (bases first); declaring a
record imports nothing.
"""

from __future__ import annotations

import itertools
from types import FunctionType
from typing import Any, ClassVar, TypeVar, dataclass_transform

from ._record_inits import INITS

_MUTABLE = (list, dict, set, bytearray)


class FrozenRecord(AttributeError):
    """An assignment to, or deletion of, a field of a frozen record."""


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenRecord(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenRecord(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
    return f"{type(self).__qualname__}({shown})"


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__record_fields__)


def _eq(self: Any, other: object) -> Any:  # a bool, or NotImplemented
    if type(other) is not type(self):
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    # Copies and pickles restore fields through here, past a frozen record's refusal.
    for name, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def _own_fields(name: str, namespace: dict[str, Any]) -> list[str]:
    annotations = namespace.get("__annotations__", {})
    own = [
        field
        for field, annotation in annotations.items()
        if not str(annotation).startswith(("ClassVar", "typing.ClassVar"))
    ]
    for field in own:
        if isinstance(namespace.get(field), _MUTABLE):
            raise TypeError(f"{name}.{field}: a mutable default would be shared; use None")
    return own


def _check_order(name: str, fields: tuple[str, ...], defaults: dict[str, Any]) -> None:
    for earlier, field in itertools.pairwise(fields):
        if earlier in defaults and field not in defaults:
            raise TypeError(f"{name}.{field}: a field without a default follows one with a default")


def init_source(
    fields: tuple[str, ...], frozen: bool, name: str = "__init__", annotated: bool = False
) -> str:
    """The source of the ``__init__`` of records with `fields`: defaults are given to
    the function made from it (`_make_init`), so the source depends on the fields
    and `frozen` only (`annotated` adds ``Any`` annotations, for type checkers: the
    function's code is the same)."""
    typed = ": Any" if annotated else ""
    parameters = ", ".join(f"{parameter}{typed}" for parameter in ("self", *fields))
    body = [
        f"_set(self, {field!r}, {field})" if frozen else f"self.{field} = {field}"
        for field in fields
    ]
    returns = " -> None" if annotated else ""
    return f"def {name}({parameters}){returns}:\n    " + "\n    ".join(body or ["pass"]) + "\n"


def _compiled(fields: tuple[str, ...], frozen: bool) -> Any:
    """The compiled ``__init__`` for `fields`: the package's own are compiled ahead
    (`_record_inits`, loaded from its bytecode); any other is compiled here."""
    init = INITS.get((fields, frozen))
    if init is None:
        scope: dict[str, Any] = {"_set": object.__setattr__}
        exec(init_source(fields, frozen), scope)
        init = scope["__init__"]
    return init


def _make_init(name: str, fields: tuple[str, ...], defaults: dict[str, Any], frozen: bool) -> Any:
    compiled = _compiled(fields, frozen)
    # The defaults are the function's own: `_check_order` keeps them last.
    init = FunctionType(
        compiled.__code__,
        compiled.__globals__,
        "__init__",
        tuple(defaults[field] for field in fields if field in defaults) or None,
    )
    init.__qualname__ = f"{name}.__init__"
    return init


class _RecordType(type):
    """Builds a record class: slots, ``__init__`` and the methods the module promises."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], frozen: bool = False
    ) -> _RecordType:
        inherited: tuple[str, ...] = ()
        defaults: dict[str, Any] = {}
        for base in bases:
            inherited += getattr(base, "__record_fields__", ())
            defaults.update(getattr(base, "__record_defaults__", {}))
        own = _own_fields(name, namespace)
        for field in own:
            if field in namespace:
                defaults[field] = namespace.pop(
                    field
                )  # a slot and a class value cannot share a name
        fields = inherited + tuple(f for f in own if f not in inherited)
        namespace["__slots__"] = tuple(f for f in own if f not in inherited)
        namespace["__record_fields__"] = fields
        namespace["__record_defaults__"] = defaults
        _check_order(name, fields, defaults)
        if "__init__" not in namespace:
            # Compiled now, while the class is made (at import): compiling later, in
            # whatever thread first makes a record, could meet another thread's compile,
            # which CPython before 3.11.8 does not survive (an AST recursion SystemError).
            namespace["__init__"] = _make_init(
                namespace.get("__qualname__", name), fields, defaults, frozen
            )
        namespace["__getstate__"] = _values
        namespace["__setstate__"] = _setstate
        namespace.setdefault("__repr__", _repr)
        namespace.setdefault("__eq__", _eq)
        namespace["__match_args__"] = fields
        if frozen:
            namespace["__setattr__"] = _frozen_setattr
            namespace["__delattr__"] = _frozen_delattr
            namespace.setdefault("__hash__", _hash)
        else:
            namespace.setdefault("__hash__", None)
        return super().__new__(mcls, name, bases, namespace)

    def __init__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], frozen: bool = False
    ) -> None:
        super().__init__(name, bases, namespace)


@dataclass_transform(eq_default=True)
class Record(metaclass=_RecordType):
    """Base of records (see the module's invariants); ``frozen=True`` in the class statement."""

    __slots__ = ()
    __record_fields__: ClassVar[tuple[str, ...]] = ()
    __record_defaults__: ClassVar[dict[str, Any]] = {}


# Bound to the class itself, not to its name: a name is a forward reference, which
# typing compiles, and a process's first `compile` costs 1.5 ms of start-up.
R = TypeVar("R", bound=Record)


def inits_module(records: list[type[Record]]) -> str:
    """The text of `autodurable._record_inits` for `records` (the package's own: see
    that module; tests/core/test_records.py compares it with the file)."""
    shapes = sorted(
        {(cls.__record_fields__, cls.__setattr__ is _frozen_setattr) for cls in records}
    )
    lines = [
        '"""The compiled ``__init__`` of each of the package\'s records, by fields and frozenness.',
        "",
        "Generated by `autodurable._records.inits_module`; do not edit. Compiling them when",
        "each record class is made cost 2 to 3 ms of every start-up; read from this",
        "module's bytecode they cost nothing. Invariant: ``INITS`` has an entry for every",
        "record the package declares, made from `autodurable._records.init_source`",
        "(tests/core/test_records.py checks it and prints the new text when a record",
        "changes). Records it lacks are compiled as they are made.",
        '"""',
        "",
        "from typing import Any",
        "",
        "_set = object.__setattr__",
        "",
    ]
    for number, (fields, frozen) in enumerate(shapes):
        lines += ["", init_source(fields, frozen, f"_init_{number}", annotated=True)]
    lines += ["", "INITS: dict[tuple[tuple[str, ...], bool], Any] = {"]
    for number, (fields, frozen) in enumerate(shapes):
        lines.append(f"    ({fields!r}, {frozen}): _init_{number},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def fields_of(record: type[Record] | Record) -> tuple[str, ...]:
    """The names of a record's fields, in the order declared."""
    return record.__record_fields__


def replace(record: R, **changes: Any) -> R:
    """A copy of `record` with the fields in `changes` set (unknown names are refused)."""
    unknown = set(changes) - set(record.__record_fields__)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    values = {name: getattr(record, name) for name in record.__record_fields__}
    return type(record)(**{**values, **changes})
