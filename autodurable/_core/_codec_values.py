"""Single values the codec writes specially: texts JSON cannot hold as they are,
dates and times with their zones, paths, and the codec's own messages.

Invariants:
- A str holding a surrogate pair is written as its parts (tagged ``"str"``), so
  that JSON does not join the pair into one character; lone surrogates are
  escaped in the JSON text (`escape_surrogates`), which stays valid UTF-8.
- A zone is recorded exactly: an IANA key, or a fixed offset (days, seconds,
  microseconds) with its name when that is not the default one.
- Decoding here reads fields and builds values; it imports and calls nothing
  else (the security rules of `_codec`).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import DecodeError
from . import _codec_shapes as shapes

if TYPE_CHECKING:
    import datetime as dt

TAG = "~"
# How deeply values may nest (lists, dicts, tuples, tagged values: one level each).
MAX_DEPTH = 200
# Surrogates: never valid in UTF-8 text; escaped in the JSON text.
# (Patterns compiled on first use, by re's own cache: texts that need them are rare,
# and compiling three costs every start-up half a millisecond.)
_SURROGATE = "[\ud800-\udfff]"
# A high surrogate then a low one, which JSON reads back as one character.
_PAIR = "[\ud800-\udbff][\udc00-\udfff]"
_PAIR_SPLIT = "(?<=[\ud800-\udbff])(?=[\udc00-\udfff])"
PATH_TYPES = {
    cls.__name__: cls
    for cls in (
        pathlib.Path,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        pathlib.PurePath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
    )
}


def is_utf8(text: str) -> bool:
    """Whether `text` has no surrogate (UTF-8's encoder finds them faster than a regex)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def find_pair(text: str) -> re.Match[str] | None:
    """The first surrogate pair in `text`: a high surrogate, then a low one."""
    return re.search(_PAIR, text)


def has_pair(value: str) -> bool:
    """Whether `value` holds a high surrogate followed by a low one."""
    return not value.isascii() and not is_utf8(value) and find_pair(value) is not None


def enc_text(value: str) -> Any:
    """`value` as JSON data: itself, or tagged if it holds a surrogate pair."""
    if not has_pair(value):
        return value
    return {TAG: "str", "v": re.split(_PAIR_SPLIT, value)}


def dec_str(raw: dict[str, Any]) -> str:
    parts = raw["v"]
    if type(parts) is not list or not all(type(part) is str for part in parts):
        raise TypeError("the parts of a recorded str must be a list of strings")
    return "".join(parts)


def decode_text(raw: Any) -> Any:
    """A text field of a tagged value (an exception's message, a path) as the codec wrote
    it: a plain string, or a tagged str if it holds a surrogate pair (see `enc_text`)."""
    if type(raw) is dict and raw.get(TAG) == "str":
        try:
            return dec_str(raw)
        except (KeyError, TypeError) as exc:
            raise DecodeError(f"malformed recorded 'str' value: {exc!r}") from exc
    return raw


def escape_surrogates(text: str) -> str:
    """JSON text with its (lone) surrogates written as escapes: valid UTF-8, same JSON."""
    return re.sub(_SURROGATE, lambda found: f"\\u{ord(found[0]):04x}", text)


def refuse_unrecorded(raw: dict[str, Any], depth: int) -> Any:
    raise DecodeError(
        "this result could not be recorded when it was produced (its type is not supported), "
        "so it cannot be returned again; return plain data to make it recordable"
    )


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"recorded value is not valid JSON: {exc}") from exc
    except RecursionError:
        raise DecodeError(f"recorded value: {too_deep()}") from None


def too_deep() -> str:
    return (
        f"it is nested more than {MAX_DEPTH} levels deep (lists, dicts, tuples and "
        "other values inside one another), more than the codec records"
    )


def text_field(raw: dict[str, Any], key: str) -> str:
    """An optional text field written by `enc_text` (empty when absent)."""
    value = decode_text(raw.get(key, ""))
    if type(value) is not str:
        raise TypeError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def dec_path(raw: dict[str, Any]) -> pathlib.PurePath:
    name = raw["c"]
    cls = PATH_TYPES.get(name) if type(name) is str else None
    if cls is None:
        raise ValueError(f"{name!r} is not a path class")
    return cls(text_field(raw, "v"))


def cannot(value: Any, path: str, extra: str = "") -> str:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    hint = (
        "Return plain data instead (str, int, float, bool, None, bytes, list, tuple, "
        "dict, set, datetime, Decimal, UUID, Enum, Path, a dataclass or a pydantic "
        "model), or opt in to pickle with autodurable.configure(allow_pickle=True)."
    )
    return f"cannot record {path}: values of type {name} are not supported. {hint} {extra}".strip()


# Modules whose types have encoders here, added to a codec's table when a value of
# one of them is first met: a program that never imports them never pays for them,
# and a value of one of their types exists only once the module is loaded.
LATE_MODULES = frozenset({"datetime", "decimal", "uuid"})


def late_encoders(module: str) -> dict[type, Callable[[Any, str, int], Any]]:
    """The encoders of the types of `module` (one of `LATE_MODULES`, already loaded)."""
    if module == "datetime":
        import datetime as dt

        return {
            dt.datetime: enc_datetime,
            dt.date: lambda v, p, d: {TAG: "date", "v": v.isoformat()},
            dt.time: enc_time,
            dt.timedelta: lambda v, p, d: {
                TAG: "timedelta",
                "v": [v.days, v.seconds, v.microseconds],
            },
        }
    if module == "decimal":
        import decimal

        return {decimal.Decimal: lambda v, p, d: {TAG: "decimal", "v": str(v)}}
    import uuid

    return {uuid.UUID: lambda v, p, d: {TAG: "uuid", "v": str(v)}}


def dec_decimal(raw: dict[str, Any]) -> Any:
    """A recorded decimal number."""
    import decimal

    return decimal.Decimal(shapes.str_field(raw, "v"))


def dec_uuid(raw: dict[str, Any]) -> Any:
    """A recorded UUID."""
    import uuid

    return uuid.UUID(shapes.str_field(raw, "v"))


def enc_datetime(value: dt.datetime, path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    _add_zone(out, value.tzinfo, value.fold)
    return out


def enc_time(value: dt.time, path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "time", "v": value.isoformat()}
    _add_zone(out, value.tzinfo, value.fold)
    return out


def _add_zone(out: dict[str, Any], tz: dt.tzinfo | None, fold: int) -> None:
    import datetime as dt  # loaded: the value being encoded is one of its types

    zoneinfo = sys.modules.get("zoneinfo")  # without it, no zone is a ZoneInfo
    if zoneinfo is not None and isinstance(tz, zoneinfo.ZoneInfo):
        out["z"] = tz.key
    elif type(tz) is dt.timezone:
        # Exactly, since isoformat rounds sub-minute offsets and drops the name.
        offset = tz.utcoffset(None)
        out["o"] = [offset.days, offset.seconds, offset.microseconds]
        if tz.tzname(None) != dt.timezone(offset).tzname(None):
            out["n"] = enc_text(tz.tzname(None))
    if fold:
        out["f"] = fold


def dec_datetime(raw: dict[str, Any]) -> dt.datetime:
    """A recorded datetime, with its zone."""
    import datetime as dt  # the standard library's, loaded when a value needs it

    return with_zone(dt.datetime.fromisoformat(shapes.str_field(raw, "v")), raw)  # type: ignore[no-any-return]


def dec_date(raw: dict[str, Any]) -> dt.date:
    """A recorded date."""
    import datetime as dt

    return dt.date.fromisoformat(shapes.str_field(raw, "v"))


def dec_time(raw: dict[str, Any]) -> dt.time:
    """A recorded time of day, with its zone."""
    import datetime as dt

    return with_zone(dt.time.fromisoformat(shapes.str_field(raw, "v")), raw)  # type: ignore[no-any-return]


def dec_timedelta(raw: dict[str, Any]) -> dt.timedelta:
    """A recorded duration."""
    import datetime as dt

    return dt.timedelta(*shapes.ints_field(raw, "v", 3))


def with_zone(value: Any, raw: dict[str, Any]) -> Any:
    import datetime as dt

    if "z" in raw:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(shapes.str_field(raw, "z")))
    elif "o" in raw:
        offset = dt.timedelta(*shapes.ints_field(raw, "o", 3))
        zone = dt.timezone(offset, text_field(raw, "n")) if "n" in raw else dt.timezone(offset)
        value = value.replace(tzinfo=zone)
    if "f" in raw:
        value = value.replace(fold=shapes.ints_field({"f": [raw["f"]]}, "f", 1)[0])
    return value


def format_traceback(exc: BaseException) -> str:
    """The traceback Python would print for `exc`."""
    import traceback  # loaded when the first failure is recorded, not by every run

    return "".join(traceback.format_exception(exc))


def message(exc: BaseException) -> str:
    """``str(exc)``, or what Python's own traceback prints when that fails: recording a
    failure must never replace the program's exception with one of its own."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"
