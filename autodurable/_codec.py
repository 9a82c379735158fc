"""The exact codec: values to JSON text and back, same value and same type.

Invariants:
- ``decode(encode(v)) == v`` and ``type(decode(encode(v))) is type(v)`` for every
  supported value, recursively (tuples stay tuples, sets stay sets, datetimes keep
  their zone, dataclasses and pydantic models come back as themselves).
- JSON-native values are stored as plain JSON, so the tables stay readable with
  SQL; anything else is a tagged object ``{"~": tag, ...}``. A user dict whose
  keys are not all strings, or that has a ``"~"`` key, is itself tagged.
- Decoding never runs arbitrary code: classes are found by import path (which
  imports their module, as recovery imports workflow modules) and are
  only accepted when they are dataclasses, pydantic models, enums, named tuples,
  exceptions or SQLAlchemy-mapped classes (their loaded columns, detached), and
  they are rebuilt field by field; a recorded class reference
  must resolve to a class. Pickle is used only when
  the application opted in (`configure(allow_pickle=True)`), for encoding and
  decoding alike.
- A value that cannot be encoded raises `EncodeError` naming the type and the
  path inside the value, at record time.
- The text is valid UTF-8 for every ``str`` Python can hold: lone surrogates
  (``os.fsdecode(b"caf\\xe9")``) are written as JSON escapes (``"caf\\udce9"``,
  plain JSON, as ``json.dumps`` writes them), which the stores' text columns
  accept and ``json.loads`` reads back. A high surrogate followed by a low one
  is not a character, but JSON would read their two escapes as one: a string
  holding such a pair is tagged, ``{"~": "str", "v": [...]}``, its parts split
  between the two. Values without surrogates are encoded as before.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import pickle
import re
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from ._errors import DecodeError, EncodeError, StepError
from ._names import qualified_name, resolve

TAG = "~"
_JSON_SCALARS = (str, int, float, bool, type(None))
# JSON text of the scalars, exactly as ``json.dumps`` writes them (floats go
# through it for its NaN and infinity spellings).
_SCALAR_TEXT: dict[type, Callable[[Any], str]] = {
    type(None): lambda value: "null",
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,  # ValueError past the int-to-str digit limit, as json
    str: json.encoder.encode_basestring_ascii,  # type: ignore[attr-defined]
    float: json.dumps,
}
# Surrogates: never valid in UTF-8 text; escaped in the JSON text (see the module docstring).
_SURROGATE = re.compile("[\ud800-\udfff]")
# A high surrogate then a low one, which JSON reads back as one character.
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_PAIR_SPLIT = re.compile("(?<=[\ud800-\udbff])(?=[\udc00-\udfff])")
_PATH_TYPES = {
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


class Codec:
    """Encodes values to JSON text and decodes them back exactly."""

    def __init__(self, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle
        self._encoders: dict[type, Callable[[Any, str], Any]] = {
            list: self._enc_list,
            dict: self._enc_dict,
            tuple: self._enc_tuple,
            set: self._enc_set,
            frozenset: self._enc_set,
            bytes: lambda v, p: {TAG: "bytes", "v": base64.b64encode(v).decode()},
            bytearray: lambda v, p: {TAG: "bytearray", "v": base64.b64encode(v).decode()},
            dt.datetime: _enc_datetime,
            dt.date: lambda v, p: {TAG: "date", "v": v.isoformat()},
            dt.time: _enc_time,
            dt.timedelta: lambda v, p: {
                TAG: "timedelta",
                "v": [v.days, v.seconds, v.microseconds],
            },
            decimal.Decimal: lambda v, p: {TAG: "decimal", "v": str(v)},
            uuid.UUID: lambda v, p: {TAG: "uuid", "v": str(v)},
            complex: lambda v, p: {TAG: "complex", "v": [v.real, v.imag]},
            collections.OrderedDict: self._enc_mapping,
            collections.Counter: self._enc_mapping,
            collections.deque: lambda v, p: {
                TAG: "deque",
                "v": self._enc_items(v, p),
                "n": v.maxlen,
            },
        }
        self._decoders: dict[str, Callable[[dict[str, Any]], Any]] = {
            "str": _dec_str,
            "tuple": lambda o: tuple(self._dec(x) for x in o["v"]),
            "set": lambda o: {self._dec(x) for x in o["v"]},
            "frozenset": lambda o: frozenset(self._dec(x) for x in o["v"]),
            "dict": lambda o: {self._dec(k): self._dec(v) for k, v in o["v"]},
            "bytes": lambda o: base64.b64decode(o["v"]),
            "bytearray": lambda o: bytearray(base64.b64decode(o["v"])),
            "datetime": _dec_datetime,
            "date": lambda o: dt.date.fromisoformat(o["v"]),
            "time": _dec_time,
            "timedelta": lambda o: dt.timedelta(*o["v"]),
            "decimal": lambda o: decimal.Decimal(o["v"]),
            "uuid": lambda o: uuid.UUID(o["v"]),
            "complex": lambda o: complex(*o["v"]),
            "path": lambda o: _PATH_TYPES[o["c"]](decode_text(o["v"])),
            "mapping": self._dec_mapping,
            "deque": lambda o: collections.deque((self._dec(x) for x in o["v"]), o["n"]),
            "enum": self._dec_enum,
            "namedtuple": self._dec_namedtuple,
            "dataclass": self._dec_dataclass,
            "model": self._dec_model,
            "orm": self._dec_orm,
            "exception": lambda o: self._dec_exception(o)[0],
            "class": lambda o: _checked_class(o["c"], lambda c: True),
            "pickle": self._dec_pickle,
            "unrecorded": _refuse_unrecorded,
        }

    # -- public API -----------------------------------------------------------

    def encode(self, value: Any, what: str = "value") -> str:
        """Encode `value` to JSON text; `what` names the value in errors."""
        try:
            cls = type(value)
            scalar = _SCALAR_TEXT.get(cls)
            # Most step results: spares json.dumps's machinery. A str is written in
            # ASCII (surrogates escaped), unless it holds a surrogate pair.
            if scalar is not None and (cls is not str or value.isascii() or not _has_pair(value)):
                return scalar(value)
            text = json.dumps(self._enc(value, what), separators=(",", ":"), ensure_ascii=False)
            if text.isascii() or _is_utf8(text):
                return text
            if _PAIR.search(text):
                text = _PairSafeCodec(self.allow_pickle).encode_pairs(value, what)
            return _escape_surrogates(text)
        except ValueError as exc:  # json refuses ints longer than sys.get_int_max_str_digits()
            raise EncodeError(f"cannot record {what}: {exc}") from None

    def decode(self, text: str) -> Any:
        """Decode JSON text produced by `encode`."""
        return self._dec(_loads(text))

    def encode_error(self, exc: BaseException) -> str:
        """Encode an exception with its type, arguments, message and traceback."""
        text = json.dumps(
            self._enc_exception(exc, "exception"), separators=(",", ":"), ensure_ascii=False
        )
        if text.isascii() or _is_utf8(text):
            return text
        if _PAIR.search(text):
            text = json.dumps(
                _PairSafeCodec(self.allow_pickle)._enc_exception(exc, "exception"),
                separators=(",", ":"),
                ensure_ascii=False,
            )
        return _escape_surrogates(text)  # a pair left in a name: read back as one character

    def decode_error(self, text: str) -> BaseException:
        """Re-create a recorded exception: same type and message where possible."""
        raw = _loads(text)
        try:
            return self._dec_exception(raw)[0]
        except (KeyError, TypeError, IndexError) as exc:
            raise DecodeError(f"malformed recorded exception: missing or wrong {exc}") from exc

    @staticmethod
    def error_summary(text: str) -> tuple[str, str, str]:
        """Return (type name, message, traceback) of a recorded exception."""
        raw = _loads(text)
        return raw["c"], decode_text(raw.get("m", "")), decode_text(raw.get("tb", ""))

    # -- encoding -------------------------------------------------------------

    def _enc(self, value: Any, path: str) -> Any:
        cls = type(value)
        if cls in _JSON_SCALARS:
            return value
        encoder = self._encoders.get(cls)
        if encoder is not None:
            return encoder(value, path)
        return self._enc_other(value, path)

    def _enc_items(self, items: Any, path: str) -> list[Any]:
        return [self._enc(x, f"{path}[{i}]") for i, x in enumerate(items)]

    def _enc_list(self, value: list[Any], path: str) -> list[Any]:
        return self._enc_items(value, path)

    def _enc_tuple(self, value: tuple[Any, ...], path: str) -> dict[str, Any]:
        return {TAG: "tuple", "v": self._enc_items(value, path)}

    def _enc_set(self, value: set[Any] | frozenset[Any], path: str) -> dict[str, Any]:
        tag = "set" if type(value) is set else "frozenset"
        return {TAG: tag, "v": self._enc_items(value, path)}

    def _enc_dict(self, value: dict[Any, Any], path: str) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: self._enc(v, f"{path}[{k!r}]") for k, v in value.items()}
        return {TAG: "dict", "v": self._enc_pairs(value, path)}

    def _enc_pairs(self, value: dict[Any, Any], path: str) -> list[list[Any]]:
        return [
            [self._enc(k, f"{path}(key)"), self._enc(v, f"{path}[{k!r}]")] for k, v in value.items()
        ]

    def _enc_mapping(self, value: dict[Any, Any], path: str) -> dict[str, Any]:
        return {TAG: "mapping", "c": qualified_name(type(value)), "v": self._enc_pairs(value, path)}

    def _enc_other(self, value: Any, path: str) -> Any:
        cls = type(value)
        if isinstance(value, enum.Enum):
            return {
                TAG: "enum",
                "c": self._class_path(cls, path),
                "v": self._enc(value.value, path),
            }
        if isinstance(value, pathlib.PurePath) and cls.__name__ in _PATH_TYPES:
            return {TAG: "path", "c": cls.__name__, "v": _enc_text(str(value))}
        if isinstance(value, tuple) and hasattr(cls, "_fields"):
            return {
                TAG: "namedtuple",
                "c": self._class_path(cls, path),
                "v": self._enc_items(value, path),
            }
        if dataclasses.is_dataclass(value):
            fields = {
                f.name: self._enc(getattr(value, f.name), f"{path}.{f.name}")
                for f in dataclasses.fields(value)
                if hasattr(value, f.name)
            }
            return {TAG: "dataclass", "c": self._class_path(cls, path), "v": fields}
        if isinstance(value, BaseModel):
            return self._enc_model(value, path)
        if hasattr(cls, "__mapper__") and hasattr(value, "_sa_instance_state"):
            return self._enc_orm(value, path)
        if isinstance(value, BaseException):
            return self._enc_exception(value, path)
        if isinstance(value, type):
            return {TAG: "class", "c": self._class_path(value, path)}
        if self.allow_pickle:
            try:
                data = pickle.dumps(value)
            except Exception as exc:
                raise EncodeError(_cannot(value, path, f"pickle also failed: {exc}")) from exc
            return {TAG: "pickle", "v": base64.b64encode(data).decode()}
        raise EncodeError(_cannot(value, path))

    def _enc_model(self, value: BaseModel, path: str) -> dict[str, Any]:
        cls = type(value)
        fields = {
            name: self._enc(getattr(value, name), f"{path}.{name}")
            for name in cls.model_fields
            if hasattr(value, name)
        }
        extra = value.__pydantic_extra__ or {}
        for name, item in extra.items():
            fields[name] = self._enc(item, f"{path}.{name}")
        return {
            TAG: "model",
            "c": self._class_path(cls, path),
            "v": fields,
            "s": sorted(value.model_fields_set),
        }

    def _enc_orm(self, value: Any, path: str) -> dict[str, Any]:
        """An instance of a SQLAlchemy-mapped class: its loaded column values.

        Only what is loaded is read (an expired or deferred column would be a
        query); relationships are left out. It comes back detached, holding them.
        """
        from sqlalchemy import inspect  # imported already: the value's class is mapped

        state = inspect(value)
        loaded = state.dict
        fields = {
            attr.key: self._enc(loaded[attr.key], f"{path}.{attr.key}")
            for attr in state.mapper.column_attrs
            if attr.key in loaded
        }
        return {TAG: "orm", "c": self._class_path(type(value), path), "v": fields}

    def _enc_exception(self, exc: BaseException, path: str) -> dict[str, Any]:
        try:
            args: Any = self._enc_items(exc.args, path)
        except EncodeError:
            args = None  # rebuilt from the message on decode
        out = {
            TAG: "exception",
            "c": qualified_name(type(exc)),
            "a": args,
            "m": _enc_text(_message(exc)),
            "tb": _enc_text("".join(traceback.format_exception(exc))),
        }
        attributes = getattr(exc, "__dict__", None)
        # Attributes that cannot be recorded are left out; type and message stay.
        with contextlib.suppress(EncodeError):
            if attributes:
                out["d"] = {k: self._enc(v, f"{path}.{k}") for k, v in attributes.items()}
        return out

    @staticmethod
    def _class_path(cls: type, path: str) -> str:
        name = qualified_name(cls)
        if "<locals>" in name:
            raise EncodeError(
                f"cannot record {path}: its class {name} is defined inside a function, "
                "so it could not be found again on replay. Move the class to module level."
            )
        return name

    # -- decoding -------------------------------------------------------------

    def _dec(self, raw: Any) -> Any:
        cls = type(raw)
        if cls is list:
            return [self._dec(x) for x in raw]
        if cls is dict:
            tag = raw.get(TAG)
            if tag is None:
                return {k: self._dec(v) for k, v in raw.items()}
            decoder = self._decoders.get(tag)
            if decoder is None:
                raise DecodeError(f"unknown tag {tag!r} in recorded value")
            try:
                return decoder(raw)
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                raise DecodeError(f"malformed recorded {tag!r} value: {exc!r}") from exc
        return raw

    def _dec_mapping(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(
            raw["c"], lambda c: c in (collections.OrderedDict, collections.Counter)
        )
        return cls({self._dec(k): self._dec(v) for k, v in raw["v"]})

    def _dec_enum(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(raw["c"], lambda c: issubclass(c, enum.Enum))
        return cls(self._dec(raw["v"]))

    def _dec_namedtuple(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(raw["c"], lambda c: issubclass(c, tuple) and hasattr(c, "_fields"))
        return cls._make(self._dec(x) for x in raw["v"])

    def _dec_dataclass(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(raw["c"], dataclasses.is_dataclass)
        obj = cls.__new__(cls)
        for name, item in raw["v"].items():
            # object.__setattr__ also fills frozen dataclasses, without running __init__.
            object.__setattr__(obj, name, self._dec(item))
        return obj

    def _dec_orm(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(raw["c"], lambda c: hasattr(c, "__mapper__"))
        from sqlalchemy.orm import configure_mappers
        from sqlalchemy.orm.attributes import set_committed_value

        configure_mappers()  # a fresh process may not have used the class yet
        obj = cls.__mapper__.class_manager.new_instance()  # no __init__ runs
        for name, item in raw["v"].items():
            set_committed_value(obj, name, self._dec(item))
        return obj

    def _dec_model(self, raw: dict[str, Any]) -> Any:
        cls = _checked_class(raw["c"], lambda c: issubclass(c, BaseModel))
        values = {name: self._dec(item) for name, item in raw["v"].items()}
        return cls.model_construct(_fields_set=set(raw.get("s", values)), **values)

    def _dec_exception(self, raw: dict[str, Any]) -> tuple[BaseException, str]:
        name, message = raw["c"], decode_text(raw.get("m", ""))
        args = tuple(self._dec(x) for x in raw["a"]) if raw.get("a") is not None else (message,)
        try:
            cls = _checked_class(name, lambda c: issubclass(c, BaseException))
        except DecodeError:
            return StepError(name, message), name
        try:
            exc = cls(*args)
        except Exception:
            exc = cls.__new__(cls)
            exc.args = args
        for key, item in raw.get("d", {}).items():
            with contextlib.suppress(AttributeError):  # read-only: the constructor set it
                setattr(exc, key, self._dec(item))
        return exc, name

    def _dec_pickle(self, raw: dict[str, Any]) -> Any:
        if not self.allow_pickle:
            raise DecodeError(
                "the recorded value was pickled, and pickle is off. Pickle can run "
                "arbitrary code; enable it only for databases you trust, with "
                "autodurable.configure(allow_pickle=True)."
            )
        return pickle.loads(base64.b64decode(raw["v"]))


class _PairSafeCodec(Codec):
    """The encoder for the rare value holding a str with a surrogate pair.

    It tags such strings (and dicts with such keys, as dicts with keys that are
    not strings), so that JSON does not join the pair into one character; the
    `Codec` decodes the result. Kept apart so that the common path checks
    nothing per string.
    """

    def encode_pairs(self, value: Any, what: str) -> str:
        """JSON text of `value` with every surrogate pair kept apart (surrogates raw)."""
        text = json.dumps(self._enc(value, what), separators=(",", ":"), ensure_ascii=False)
        found = _PAIR.search(text)
        if found is not None:  # in a field or attribute name: no place for a tag
            raise EncodeError(
                f"cannot record {what}: a name in it holds the surrogate pair "
                f"{found[0]!r}, which JSON would read back as one character"
            )
        return text

    def _enc(self, value: Any, path: str) -> Any:
        if type(value) is str:
            return _enc_text(value)
        return super()._enc(value, path)

    def _enc_dict(self, value: dict[Any, Any], path: str) -> Any:
        if any(type(k) is str and _has_pair(k) for k in value):
            return {TAG: "dict", "v": self._enc_pairs(value, path)}
        return super()._enc_dict(value, path)


def _is_utf8(text: str) -> bool:
    """Whether `text` has no surrogate (UTF-8's encoder finds them faster than a regex)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_pair(value: str) -> bool:
    """Whether `value` holds a high surrogate followed by a low one."""
    return not value.isascii() and not _is_utf8(value) and _PAIR.search(value) is not None


def _enc_text(value: str) -> Any:
    """`value` as JSON data: itself, or tagged if it holds a surrogate pair."""
    if not _has_pair(value):
        return value
    return {TAG: "str", "v": _PAIR_SPLIT.split(value)}


def _dec_str(raw: dict[str, Any]) -> str:
    parts = raw["v"]
    if type(parts) is not list or not all(type(part) is str for part in parts):
        raise TypeError("the parts of a recorded str must be a list of strings")
    return "".join(parts)


def decode_text(raw: Any) -> Any:
    """A text field of a tagged value (an exception's message, a path) as the codec wrote
    it: a plain string, or a tagged str if it holds a surrogate pair (see `_enc_text`)."""
    if type(raw) is dict and raw.get(TAG) == "str":
        try:
            return _dec_str(raw)
        except (KeyError, TypeError) as exc:
            raise DecodeError(f"malformed recorded 'str' value: {exc!r}") from exc
    return raw


def _escape_surrogates(text: str) -> str:
    """JSON text with its (lone) surrogates written as escapes: valid UTF-8, same JSON."""
    return _SURROGATE.sub(lambda found: f"\\u{ord(found[0]):04x}", text)


def _refuse_unrecorded(raw: dict[str, Any]) -> Any:
    raise DecodeError(
        "this result could not be recorded when it was produced (its type is not supported), "
        "so it cannot be returned again; return plain data to make it recordable"
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"recorded value is not valid JSON: {exc}") from exc


def _cannot(value: Any, path: str, extra: str = "") -> str:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    hint = (
        "Return plain data instead (str, int, float, bool, None, bytes, list, tuple, "
        "dict, set, datetime, Decimal, UUID, Enum, Path, a dataclass or a pydantic "
        "model), or opt in to pickle with autodurable.configure(allow_pickle=True)."
    )
    return f"cannot record {path}: values of type {name} are not supported. {hint} {extra}".strip()


def _checked_class(name: str, accept: Callable[[type], bool]) -> Any:
    try:
        cls = resolve(name)
    except LookupError as exc:
        raise DecodeError(f"recorded class {name} cannot be found: {exc}") from exc
    if not isinstance(cls, type) or not accept(cls):
        raise DecodeError(f"refusing to decode {name}: it is not a class of the recorded kind")
    return cls


def _enc_datetime(value: dt.datetime, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    _add_zone(out, value.tzinfo, value.fold)
    return out


def _enc_time(value: dt.time, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "time", "v": value.isoformat()}
    _add_zone(out, value.tzinfo, value.fold)
    return out


def _add_zone(out: dict[str, Any], tz: dt.tzinfo | None, fold: int) -> None:
    if isinstance(tz, ZoneInfo):
        out["z"] = tz.key
    elif type(tz) is dt.timezone:
        # Exactly, since isoformat rounds sub-minute offsets and drops the name.
        offset = tz.utcoffset(None)
        out["o"] = [offset.days, offset.seconds, offset.microseconds]
        if tz.tzname(None) != dt.timezone(offset).tzname(None):
            out["n"] = _enc_text(tz.tzname(None))
    if fold:
        out["f"] = fold


def _dec_datetime(raw: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw["v"])
    return _with_zone(value, raw)


def _dec_time(raw: dict[str, Any]) -> dt.time:
    value = dt.time.fromisoformat(raw["v"])
    return _with_zone(value, raw)


def _with_zone(value: Any, raw: dict[str, Any]) -> Any:
    if "z" in raw:
        value = value.replace(tzinfo=ZoneInfo(raw["z"]))
    elif "o" in raw:
        offset = dt.timedelta(*raw["o"])
        zone = dt.timezone(offset, decode_text(raw["n"])) if "n" in raw else dt.timezone(offset)
        value = value.replace(tzinfo=zone)
    if "f" in raw:
        value = value.replace(fold=raw["f"])
    return value


def _message(exc: BaseException) -> str:
    """``str(exc)``, or what Python's own traceback prints when that fails: recording a
    failure must never replace the program's exception with one of its own."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"
