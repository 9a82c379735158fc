"""Frozen records of options and settings, checked by plain code.

A `Record` subclass declares its fields as annotated class attributes set to
`field(default=..., check=...)`; ``Retry(max_attempts=5)`` checks what it is
given and keeps it. This replaces a validation library on the paths that every
program and every CLI command takes (importing one costs more than the rest of
a run's start-up).

Invariants:
- A record is immutable; two records are equal when they are of the same class
  with equal field values. `Record.fields_set` is the set of fields given when
  it was made: a layer of options overrides exactly those.
- Making a record checks every given field (a field declared without a
  default must be given), then the record as a whole
  (`Record.check_whole`), and reports every problem at once in one
  `InvalidFields` (a ``ValueError``), each named by its dotted path, with the
  problem and the value given. An unknown field is a problem that lists the
  known ones. Defaults are never checked: they are written here.
- A nested record is made from a table (a dict) or given as itself; its
  problems carry the path through the outer field.
- Decoding nothing, importing nothing: only the standard library is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast, dataclass_transform


class Problem:
    """One refused value: where (field names, outermost first), why, and what was given.

    A plain class: a ``NamedTuple`` compiles its annotations and its constructor when
    the class is made, and a process's first `compile` costs 1.5 ms of start-up.
    """

    __slots__ = ("message", "path", "value")

    def __init__(self, path: tuple[str, ...], message: str, value: Any) -> None:
        self.path = path
        self.message = message
        self.value = value

    def under(self, name: str) -> Problem:
        """The same problem, placed under the field `name`."""
        return Problem((name, *self.path), self.message, self.value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Problem:
            return NotImplemented
        return (self.path, self.message, self.value) == (other.path, other.message, other.value)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable

    def __repr__(self) -> str:
        return f"Problem(path={self.path!r}, message={self.message!r}, value={self.value!r})"


class Invalid(ValueError):
    """A check's refusal of one value (or the problems of a nested record)."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems

    def at(self, name: str, value: Any) -> list[Problem]:
        """The problems, placed under the field `name` that was given `value`."""
        if self.problems:
            return [problem.under(name) for problem in self.problems]
        return [Problem((name,), self.message, value)]


class InvalidFields(ValueError):
    """Every problem found in the values given to one record."""

    def __init__(self, record: str, problems: list[Problem]) -> None:
        self.record = record
        self.problems = tuple(problems)
        super().__init__(self.describe(record))

    def describe(self, where: str) -> str:
        """One message naming `where` the values came from and each bad field."""
        parts = [
            f"{'.'.join(p.path) or '(value)'}: {p.message}"
            + ("" if p.value is REQUIRED else f" (got {p.value!r})")
            for p in self.problems
        ]
        return f"invalid {where}: " + "; ".join(parts)


class FrozenRecord(AttributeError):
    """An assignment to a field of a record (records are immutable)."""


class Check:
    """A callable that returns the value to keep, or raises `Invalid`; `text` is its rule."""

    __slots__ = ("function", "text")

    def __init__(self, function: Callable[[Any], Any], text: str = "") -> None:
        self.function = function
        self.text = text

    def __call__(self, value: Any) -> Any:
        return self.function(value)

    def then(self, function: Callable[[Any], Any]) -> Check:
        """This check, then `function` on what it keeps (a rule of the field's own)."""
        return Check(lambda value: function(self.function(value)), self.text)


class Field:
    """A declared field: its default, its check, and (once declared) its name and type text."""

    __slots__ = ("annotation", "check", "default", "name")

    def __init__(self, default: Any, check: Check | None) -> None:
        self.default = default
        self.check = check
        self.name = ""
        self.annotation = ""

    def fresh_default(self) -> Any:
        """The default, copied when it is a container (instances never share one)."""
        return dict(self.default) if isinstance(self.default, dict) else self.default


REQUIRED: Any = object()  # the default of a field that must be given


def field(*, default: Any = REQUIRED, check: Check | None = None) -> Any:
    """Declare a field of a `Record` with its default (none: it must be given) and its check."""
    return Field(default, check)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Record:
    """Base of frozen, checked records (see the module's invariants)."""

    __slots__ = ("__dict__", "_fields_set")
    declared: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = dict(cls.declared)
        # The class's own annotations, as inspect.get_annotations returns them for a
        # class; importing inspect costs milliseconds of every start-up.
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in dict(own).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            spec = cls.__dict__.get(name)
            if not isinstance(spec, Field):
                raise TypeError(f"{cls.__name__}.{name}: declare it with field(default=...)")
            spec.name, spec.annotation = name, str(annotation)
            declared[name] = spec
            delattr(cls, name)  # the instance's value is found in its __dict__
        cls.declared = declared

    def __init__(self, **values: Any) -> None:
        declared = self.declared
        problems = [
            Problem((name,), f"unknown field; the fields are {', '.join(declared)}", value)
            for name, value in values.items()
            if name not in declared
        ]
        data: dict[str, Any] = {}
        for name, spec in declared.items():
            if name not in values:
                if spec.default is REQUIRED:
                    problems.append(Problem((name,), "missing: it must be given", REQUIRED))
                data[name] = spec.fresh_default()
            elif spec.check is None:
                data[name] = values[name]
            else:
                try:
                    data[name] = spec.check(values[name])
                except Invalid as exc:
                    problems += exc.at(name, values[name])
        if not problems:
            try:
                self.check_whole(data)
            except Invalid as exc:
                problems.append(Problem((), exc.message, values))
        if problems:
            raise InvalidFields(type(self).__name__, problems)
        self.__dict__.update(data)
        object.__setattr__(self, "_fields_set", frozenset(values))

    def check_whole(self, values: Mapping[str, Any]) -> None:
        """Refuse a combination of values with `Invalid` (after each field passed)."""

    @classmethod
    def trusted(cls: type[R], values: Mapping[str, Any], fields_set: Iterable[str]) -> R:
        """A record of values that were checked before (the defaults for the others)."""
        record = cls.__new__(cls)
        record.__dict__.update(
            {name: values[name] if name in values else spec.fresh_default()
             for name, spec in cls.declared.items()}
        )  # fmt: skip
        object.__setattr__(record, "_fields_set", frozenset(fields_set))
        return record

    @property
    def fields_set(self) -> frozenset[str]:
        """The fields given when this record was made."""
        # A slot, not a field: read past the type checker's view of the fields.
        return cast("frozenset[str]", object.__getattribute__(self, "_fields_set"))

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes` checked and set (they join `fields_set`)."""
        # The fields not given hold their defaults: making the record again from the
        # given ones and the changes checks the changes and the whole.
        given = {name: self.__dict__[name] for name in self.fields_set}
        return type(self)(**{**given, **changes})

    def as_dict(self) -> dict[str, Any]:
        """The field values by name."""
        return dict(self.__dict__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenRecord(f"{type(self).__name__} is frozen: make a new one with .replace()")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecord(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.__dict__.values())))

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"{type(self).__name__}({values})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__), tuple(self.fields_set)))


R = TypeVar("R", bound=Record)  # the class, not its name, which typing would compile


def _rebuild(cls: type[R], values: dict[str, Any], fields_set: tuple[str, ...]) -> R:
    """Unpickle and copy a record (its values were checked when it was made)."""
    return cls.trusted(values, fields_set)


# -- checks ----------------------------------------------------------------------------


def _bounds(value: float, gt: float | None, ge: float | None, le: float | None) -> None:
    if gt is not None and not value > gt:
        raise Invalid(f"must be greater than {gt}")
    if ge is not None and not value >= ge:
        raise Invalid(f"must be at least {ge}")
    if le is not None and not value <= le:
        raise Invalid(f"must be at most {le}")


def _rule(gt: float | None = None, ge: float | None = None, le: float | None = None) -> str:
    """The bounds as documentation: ``>= 0, <= 1``."""
    bounds = ((">", gt), (">=", ge), ("<=", le))
    return ", ".join(f"{symbol} {bound}" for symbol, bound in bounds if bound is not None)


def integer(*, ge: int | None = None) -> Check:
    """A whole number (not a bool), at least `ge`."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("must be a whole number")
        _bounds(value, None, ge, None)
        return value

    return Check(check, _rule(ge=ge))


def number(*, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Check:
    """A number (int or float, not a bool), kept as a float, within the bounds."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid("must be a number")
        _bounds(value, gt, ge, le)
        return float(value)

    return Check(check, _rule(gt, ge, le))


def text(*, min_length: int | None = None, max_length: int | None = None) -> Check:
    """A string of `min_length` to `max_length` characters."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if min_length is not None and len(value) < min_length:
            raise Invalid("must not be empty" if min_length == 1 else f"needs {min_length}+ chars")
        if max_length is not None and len(value) > max_length:
            raise Invalid(f"must be at most {max_length} characters")
        return value

    rules = [("min length", min_length), ("max length", max_length)]
    return Check(check, ", ".join(f"{rule} {n}" for rule, n in rules if n is not None))


def flag() -> Check:
    """True or False."""

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false")
        return value

    return Check(check)


def one_of(*choices: str) -> Check:
    """One of the `choices`."""

    def check(value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            raise Invalid(f"must be one of {', '.join(map(repr, choices))}")
        return value

    return Check(check)


def optional(inner: Check) -> Check:
    """None, or what `inner` accepts."""
    return Check(lambda value: None if value is None else inner(value), inner.text)


def items(inner: Check, what: str) -> Check:
    """A list or tuple of values that `inner` accepts, kept as a tuple."""

    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise Invalid(f"must be a list of {what}")
        kept = []
        for index, item in enumerate(value):
            try:
                kept.append(inner(item))
            except Invalid as exc:
                raise Invalid(f"item {index}: {exc.message}") from None
        return tuple(kept)

    return Check(check)


def exception_type() -> Check:
    """An exception class."""

    def check(value: Any) -> type[BaseException]:
        if not (isinstance(value, type) and issubclass(value, BaseException)):
            raise Invalid("must be an exception class")
        return value

    return Check(check)


def a_function() -> Check:
    """Anything callable."""

    def check(value: Any) -> Callable[..., Any]:
        if not callable(value):
            raise Invalid("must be a function")
        return cast("Callable[..., Any]", value)

    return Check(check)


def table(values: Check | None = None) -> Check:
    """A table (dict) with string keys, each value accepted by `values`."""

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid("must be a table")
        kept: dict[str, Any] = {}
        problems: list[Problem] = []
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem((repr(key),), "keys must be strings", key))
            elif values is None:
                kept[key] = item
            else:
                try:
                    kept[key] = values(item)
                except Invalid as exc:
                    problems += exc.at(key, item)
        if problems:
            raise Invalid(problems[0].message, tuple(problems))
        return kept

    return Check(check)


def record(cls: type[R]) -> Check:
    """A `cls` record, or a table of its fields."""

    def check(value: Any) -> R:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise Invalid(f"must be a table of {cls.__name__} fields")
        try:
            return cls(**value)
        except InvalidFields as exc:
            raise Invalid(exc.problems[0].message, exc.problems) from None

    return Check(check)
