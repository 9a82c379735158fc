"""What stored values must look like before the codec rebuilds anything from them.

Stored data is input the program did not write (`_codec`'s invariants): each
tag's fields are checked for their JSON type and shape, and a class is
rebuilt only when it is of the recorded kind, with its declared fields.

Invariants: pure checks; each raises `TypeError`/`ValueError` (which the codec
turns into its `DecodeError`) or `DecodeError`; none imports a module or runs
code of the classes it looks at.
"""

from __future__ import annotations

import binascii
import enum
import sys
from typing import Any

from .._errors import DecodeError, WorkflowCancelled
from ._names import qualified_name


def list_field(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw[key]
    if type(value) is not list:
        raise TypeError(f"{key!r} must be a list, not {type(value).__name__}")
    return value


def dict_field(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw[key]
    if type(value) is not dict:
        raise TypeError(f"{key!r} must be an object, not {type(value).__name__}")
    return value


def str_field(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if type(value) is not str:
        raise TypeError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def ints_field(raw: dict[str, Any], key: str, count: int) -> list[int]:
    value = list_field(raw, key)
    if len(value) != count or not all(type(x) is int for x in value):
        raise TypeError(f"{key!r} must be a list of {count} ints")
    return value


def numbers_field(raw: dict[str, Any], key: str, count: int) -> list[float]:
    value = list_field(raw, key)
    if len(value) != count or not all(type(x) in (int, float) for x in value):
        raise TypeError(f"{key!r} must be a list of {count} numbers")
    return value


def pairs_field(raw: dict[str, Any]) -> list[list[Any]]:
    pairs = list_field(raw, "v")
    if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
        raise TypeError("'v' must be a list of [key, value] pairs")
    return pairs


def base64_field(raw: dict[str, Any]) -> bytes:
    try:
        import base64  # loaded by the first recorded bytes value read back

        return base64.b64decode(str_field(raw, "v"), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None


def is_dunder(name: Any) -> bool:
    return type(name) is str and name.startswith("__") and name.endswith("__")


# An exception's __dict__ may hold these (`add_note`); other dunder names are refused.
EXCEPTION_DUNDERS = frozenset({"__notes__"})


def declared_fields(raw: dict[str, Any], declared: set[str], cls: type) -> dict[str, Any]:
    """The recorded field values, refused if any is not a declared field of `cls`."""
    values = dict_field(raw, "v")
    unknown = [name for name in values if name not in declared]
    if unknown:
        raise DecodeError(
            f"refusing to decode {qualified_name(cls)}: {unknown[0]!r} is not one of its fields"
        )
    return values


def is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def is_pydantic_model(cls: type) -> bool:
    """Whether `cls` is a pydantic model class.

    Pydantic is not imported for it: a model class exists only once ``pydantic.main``
    was imported, so without that module no class is one.
    """
    main = sys.modules.get("pydantic.main")
    return main is not None and issubclass(cls, main.BaseModel)


def is_dataclass(cls: type) -> bool:
    """``dataclasses.is_dataclass`` for a class, without importing `dataclasses`."""
    return hasattr(cls, "__dataclass_fields__")


def is_recordable_class(cls: type) -> bool:
    """Whether a class may be recorded, and returned, as a value (the "class" tag)."""
    return (
        is_dataclass(cls)
        or issubclass(cls, enum.Enum | BaseException)
        or is_pydantic_model(cls)
        or is_namedtuple(cls)
    )


def is_recreated_exception(cls: type) -> bool:
    """Whether a recorded exception of this class comes back as itself (else a StepError)."""
    return issubclass(cls, Exception) or cls is WorkflowCancelled


def is_mapped(cls: type) -> bool:
    """Whether `cls` is mapped by SQLAlchemy (never imported for this: it would be already)."""
    if "sqlalchemy.orm" not in sys.modules:
        return False
    from sqlalchemy.orm import Mapper

    mapper = cls.__dict__.get("__mapper__")
    return isinstance(mapper, Mapper) and mapper.class_ is cls
