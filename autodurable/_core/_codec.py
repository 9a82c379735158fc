"""The exact codec: values to JSON text and back, same value and same type.

Invariants:
- ``decode(encode(v)) == v`` and ``type(decode(encode(v))) is type(v)`` for every
  supported value, recursively (tuples stay tuples, sets stay sets, datetimes keep
  their zone, dataclasses and pydantic models come back as themselves).
- JSON-native values are stored as plain JSON, so the tables stay readable with
  SQL; anything else is a tagged object ``{"~": tag, ...}``. A user dict whose
  keys are not all strings, or that has a ``"~"`` key, is itself tagged.
- Stored data is input the program did not write (whoever can write to the
  state database can write it). Decoding never runs arbitrary code and imports
  nothing: a recorded class reference ``"module:qualname"`` is found only in
  modules already imported (`sys.modules`), or in modules named in the codec's
  ``allowed_modules``, and read statically. It must be a class of the recorded
  kind: a dataclass, pydantic model, enum, named tuple, exception or
  SQLAlchemy-mapped class (its loaded columns, detached); the ``"class"`` tag
  returns only dataclasses, pydantic models, enums, named tuples and exceptions.
  Instances are rebuilt field by field, with their declared fields only
  (a pydantic model that allows extra also gets extras that are not dunder
  names; a mapped class only its mapped column keys). Pickle is used only when
  the application opted in (`configure(allow_pickle=True)`), for encoding and
  decoding alike. (The standard modules a tag needs, ``datetime``, ``decimal``,
  ``uuid``, ``zoneinfo``, ``base64`` and, when allowed, ``pickle``, are imported
  when a value first needs them, by this module's choice, never by the data's.)
- A recorded exception that is a `BaseException` but not an `Exception`
  (`SystemExit`, `KeyboardInterrupt`, `GeneratorExit`) comes back as a
  `StepError` with its type name and message, never as itself; only
  autodurable's own `WorkflowCancelled` is re-created among those.
- Malformed stored values (wrong shapes, wrong types inside tags, bad numbers,
  nesting deeper than `MAX_DEPTH` levels) raise `DecodeError`, never another
  exception; values nested deeper than `MAX_DEPTH` are refused by `EncodeError`
  at record time, so whatever is recorded can be decoded.
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

import binascii
import collections
import contextlib
import enum
import json
import pathlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._errors import DecodeError, EncodeError, StepError
from . import _codec_shapes as shapes
from ._codec_values import (
    LATE_MODULES,
    MAX_DEPTH,
    PATH_TYPES,
    TAG,
    cannot,
    dec_date,
    dec_datetime,
    dec_decimal,
    dec_path,
    dec_str,
    dec_time,
    dec_timedelta,
    dec_uuid,
    enc_text,
    escape_surrogates,
    find_pair,
    format_traceback,
    has_pair,
    is_utf8,
    late_encoders,
    loads,
    message,
    refuse_unrecorded,
    text_field,
    too_deep,
)
from ._names import NotLoaded, qualified_name, resolve_loaded

if TYPE_CHECKING:
    from ._large import OutOfLine

_JSON_SCALARS = (str, int, float, bool, type(None))
# JSON text of the scalars, exactly as ``json.dumps`` writes them (floats go
# through it for its NaN and infinity spellings). Keyed by exact type, so `repr`
# is ``int.__repr__`` (a builtin call costs less than the slot's wrapper), and the
# texts of None, True and False are looked up in C rather than made by a lambda.
_SCALAR_TEXT: dict[type, Callable[[Any], str]] = {
    type(None): {None: "null"}.__getitem__,
    bool: {True: "true", False: "false"}.__getitem__,
    int: repr,  # ValueError past the int-to-str digit limit, as json
    str: json.encoder.encode_basestring_ascii,
    float: json.dumps,
}


def _base64(data: bytes | bytearray) -> str:
    """``base64.b64encode(data).decode()``, without importing base64."""
    return binascii.b2a_base64(data, newline=False).decode()


_MAPPINGS = {
    "collections:OrderedDict": collections.OrderedDict,
    "collections:Counter": collections.Counter,
}


class Codec:
    """Encodes values to JSON text and decodes them back exactly.

    `allowed_modules` names modules that decoding may import to find a recorded
    class; any other class must be in a module the program imported already.
    """

    def __init__(self, allow_pickle: bool = False, *, allowed_modules: Iterable[str] = ()) -> None:
        self.allow_pickle = allow_pickle
        if isinstance(allowed_modules, str):
            allowed_modules = (allowed_modules,)
        self.allowed_modules = frozenset(allowed_modules)
        # Values too large for their rows (`_large`); set by the runtime, None to keep
        # every value in its row.
        self.out_of_line: OutOfLine | None = None
        self._encoders: dict[type, Callable[[Any, str, int], Any]] = {
            list: self._enc_list,
            dict: self._enc_dict,
            tuple: self._enc_tuple,
            set: self._enc_set,
            frozenset: self._enc_set,
            bytes: lambda v, p, d: {TAG: "bytes", "v": _base64(v)},
            bytearray: lambda v, p, d: {TAG: "bytearray", "v": _base64(v)},
            complex: lambda v, p, d: {TAG: "complex", "v": [v.real, v.imag]},
            collections.OrderedDict: self._enc_mapping,
            collections.Counter: self._enc_mapping,
            collections.deque: lambda v, p, d: {
                TAG: "deque",
                "v": self._enc_items(v, p, d),
                "n": v.maxlen,
            },
        }
        self._late = set(LATE_MODULES)
        self._decoders: dict[str, Callable[[dict[str, Any], int], Any]] = {
            "str": lambda o, d: dec_str(o),
            "tuple": lambda o, d: tuple(self._dec(x, d) for x in shapes.list_field(o, "v")),
            "set": lambda o, d: {self._dec(x, d) for x in shapes.list_field(o, "v")},
            "frozenset": lambda o, d: frozenset(self._dec(x, d) for x in shapes.list_field(o, "v")),
            "dict": lambda o, d: {
                self._dec(k, d): self._dec(v, d) for k, v in shapes.pairs_field(o)
            },
            "bytes": lambda o, d: shapes.base64_field(o),
            "bytearray": lambda o, d: bytearray(shapes.base64_field(o)),
            "datetime": lambda o, d: dec_datetime(o),
            "date": lambda o, d: dec_date(o),
            "time": lambda o, d: dec_time(o),
            "timedelta": lambda o, d: dec_timedelta(o),
            "decimal": lambda o, d: dec_decimal(o),
            "uuid": lambda o, d: dec_uuid(o),
            "complex": lambda o, d: complex(*shapes.numbers_field(o, "v", 2)),
            "path": lambda o, d: dec_path(o),
            "mapping": self._dec_mapping,
            "deque": self._dec_deque,
            "enum": self._dec_enum,
            "namedtuple": self._dec_namedtuple,
            "dataclass": self._dec_dataclass,
            "model": self._dec_model,
            "orm": self._dec_orm,
            "exception": lambda o, d: self._dec_exception(o, d)[0],
            "class": lambda o, d: self._checked_class(o, shapes.is_recordable_class),
            "pickle": self._dec_pickle,
            "unrecorded": refuse_unrecorded,
            "large": self._dec_large,
        }

    # -- public API -----------------------------------------------------------

    def encode(self, value: Any, what: str = "value") -> str:
        """Encode `value` to JSON text; `what` names the value in errors. A value too
        large for its row is stored out of line and its reference returned (`_large`)."""
        text = self._encode(value, what)
        spill = self.out_of_line
        if spill is not None and len(text) > spill.threshold:
            return spill.spill(text, what)
        return text

    def _encode(self, value: Any, what: str) -> str:
        try:
            cls = type(value)
            scalar = _SCALAR_TEXT.get(cls)
            # Most step results: spares json.dumps's machinery. A str is written in
            # ASCII (surrogates escaped), unless it holds a surrogate pair.
            if scalar is not None and (cls is not str or value.isascii() or not has_pair(value)):
                return scalar(value)
            text = json.dumps(self._enc(value, what), separators=(",", ":"), ensure_ascii=False)
            if text.isascii() or is_utf8(text):
                return text
            if find_pair(text):
                text = _PairSafeCodec(self.allow_pickle).encode_pairs(value, what)
            return escape_surrogates(text)
        except ValueError as exc:  # json refuses ints longer than sys.get_int_max_str_digits()
            raise EncodeError(f"cannot record {what}: {exc}") from None
        except RecursionError:  # the stack was already deep when we were called
            raise EncodeError(f"cannot record {what}: {too_deep()}") from None

    def decode(self, text: str) -> Any:
        """Decode JSON text produced by `encode`."""
        raw = loads(text)
        try:
            return self._dec(raw, 0)
        except RecursionError:  # the stack was already deep when we were called
            raise DecodeError(f"recorded value: {too_deep()}") from None

    def _dec_large(self, reference: dict[str, Any], depth: int) -> Any:
        if self.out_of_line is None:
            raise DecodeError("a reference to a large value, and no store to read it from")
        return self._dec(loads(self.out_of_line.fetch(reference)), depth)

    def encode_error(self, exc: BaseException) -> str:
        """Encode an exception with its type, arguments, message and traceback."""
        text = json.dumps(
            self._enc_exception(exc, "exception", 1), separators=(",", ":"), ensure_ascii=False
        )
        if text.isascii() or is_utf8(text):
            return text
        if find_pair(text):
            text = json.dumps(
                _PairSafeCodec(self.allow_pickle)._enc_exception(exc, "exception", 1),
                separators=(",", ":"),
                ensure_ascii=False,
            )
        return escape_surrogates(text)  # a pair left in a name: read back as one character

    def decode_error(self, text: str) -> BaseException:
        """Re-create a recorded exception: same type and message where possible.

        A `BaseException` that is not an `Exception` (`SystemExit`, ...) comes
        back as a `StepError`, as does one whose class cannot be found.
        """
        raw = loads(text)
        if type(raw) is not dict:
            raise DecodeError("malformed recorded exception: not a JSON object")
        try:
            return self._dec_exception(raw, 1)[0]
        except DecodeError:
            raise
        except RecursionError:
            raise DecodeError(f"recorded exception: {too_deep()}") from None
        except Exception as exc:
            raise DecodeError(f"malformed recorded exception: {exc!r}") from exc

    @staticmethod
    def error_summary(text: str) -> tuple[str, str, str]:
        """Return (type name, message, traceback) of a recorded exception."""
        raw = loads(text)
        try:
            if type(raw) is not dict:
                raise TypeError("not a JSON object")
            return shapes.str_field(raw, "c"), text_field(raw, "m"), text_field(raw, "tb")
        except DecodeError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"malformed recorded exception: {exc!r}") from exc

    # -- encoding -------------------------------------------------------------

    def _enc(self, value: Any, path: str, depth: int = 0) -> Any:
        cls = type(value)
        if cls in _JSON_SCALARS:
            return value
        depth += 1
        if depth > MAX_DEPTH:
            raise EncodeError(f"cannot record {path}: {too_deep()}")
        encoder = self._encoders.get(cls)
        if encoder is not None:
            return encoder(value, path, depth)
        return self._enc_other(value, path, depth)

    def _enc_items(self, items: Any, path: str, depth: int) -> list[Any]:
        return [self._enc(x, f"{path}[{i}]", depth) for i, x in enumerate(items)]

    def _enc_list(self, value: list[Any], path: str, depth: int) -> list[Any]:
        return [self._enc(x, f"{path}[{i}]", depth) for i, x in enumerate(value)]

    def _enc_tuple(self, value: tuple[Any, ...], path: str, depth: int) -> dict[str, Any]:
        return {TAG: "tuple", "v": self._enc_items(value, path, depth)}

    def _enc_set(self, value: set[Any] | frozenset[Any], path: str, depth: int) -> dict[str, Any]:
        tag = "set" if type(value) is set else "frozenset"
        return {TAG: tag, "v": self._enc_items(value, path, depth)}

    def _enc_dict(self, value: dict[Any, Any], path: str, depth: int) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: self._enc(v, f"{path}[{k!r}]", depth) for k, v in value.items()}
        return {TAG: "dict", "v": self._enc_pairs(value, path, depth)}

    def _enc_pairs(self, value: dict[Any, Any], path: str, depth: int) -> list[list[Any]]:
        return [
            [self._enc(k, f"{path}(key)", depth), self._enc(v, f"{path}[{k!r}]", depth)]
            for k, v in value.items()
        ]

    def _enc_mapping(self, value: dict[Any, Any], path: str, depth: int) -> dict[str, Any]:
        return {
            TAG: "mapping",
            "c": qualified_name(type(value)),
            "v": self._enc_pairs(value, path, depth),
        }

    def _enc_other(self, value: Any, path: str, depth: int) -> Any:
        cls = type(value)
        if cls.__module__ in self._late:
            self._late.discard(cls.__module__)
            self._encoders.update(late_encoders(cls.__module__))
            encoder = self._encoders.get(cls)
            if encoder is not None:
                return encoder(value, path, depth)
        if isinstance(value, enum.Enum):
            return {
                TAG: "enum",
                "c": self._class_path(cls, path),
                "v": self._enc(value.value, path, depth),
            }
        if isinstance(value, pathlib.PurePath) and cls.__name__ in PATH_TYPES:
            return {TAG: "path", "c": cls.__name__, "v": enc_text(str(value))}
        if isinstance(value, tuple) and hasattr(cls, "_fields"):
            return {
                TAG: "namedtuple",
                "c": self._class_path(cls, path),
                "v": self._enc_items(value, path, depth),
            }
        if shapes.is_dataclass(cls) and not isinstance(value, type):
            import dataclasses  # loaded: the value's class was made by it

            fields = {
                f.name: self._enc(getattr(value, f.name), f"{path}.{f.name}", depth)
                for f in dataclasses.fields(value)
                if hasattr(value, f.name)
            }
            return {TAG: "dataclass", "c": self._class_path(cls, path), "v": fields}
        if shapes.is_pydantic_model(cls):
            return self._enc_model(value, path, depth)
        if hasattr(cls, "__mapper__") and hasattr(value, "_sa_instance_state"):
            return self._enc_orm(value, path, depth)
        if isinstance(value, BaseException):
            return self._enc_exception(value, path, depth)
        if isinstance(value, type) and shapes.is_recordable_class(value):
            return {TAG: "class", "c": self._class_path(value, path)}
        if isinstance(value, type) and not self.allow_pickle:
            raise EncodeError(
                f"cannot record {path}: it is the class {qualified_name(value)}, and only "
                "dataclasses, pydantic models, enums, named tuples and exception classes are "
                "recorded as values (decoding returns no other class). Record its name instead."
            )
        if self.allow_pickle:
            import pickle

            try:
                data = pickle.dumps(value)
            except Exception as exc:
                raise EncodeError(cannot(value, path, f"pickle also failed: {exc}")) from exc
            return {TAG: "pickle", "v": _base64(data)}
        raise EncodeError(cannot(value, path))

    def _enc_model(self, value: Any, path: str, depth: int) -> dict[str, Any]:
        cls = type(value)
        fields = {
            name: self._enc(getattr(value, name), f"{path}.{name}", depth)
            for name in cls.model_fields
            if hasattr(value, name)
        }
        extra = value.__pydantic_extra__ or {}
        for name, item in extra.items():
            fields[name] = self._enc(item, f"{path}.{name}", depth)
        return {
            TAG: "model",
            "c": self._class_path(cls, path),
            "v": fields,
            "s": sorted(value.model_fields_set),
        }

    def _enc_orm(self, value: Any, path: str, depth: int) -> dict[str, Any]:
        """An instance of a SQLAlchemy-mapped class: its loaded column values.

        Only what is loaded is read (an expired or deferred column would be a
        query); relationships are left out. It comes back detached, holding them.
        """
        from sqlalchemy import inspect  # imported already: the value's class is mapped

        state = inspect(value)
        loaded = state.dict
        fields = {
            attr.key: self._enc(loaded[attr.key], f"{path}.{attr.key}", depth)
            for attr in state.mapper.column_attrs
            if attr.key in loaded
        }
        return {TAG: "orm", "c": self._class_path(type(value), path), "v": fields}

    def _enc_exception(self, exc: BaseException, path: str, depth: int) -> dict[str, Any]:
        try:
            args: Any = self._enc_items(exc.args, path, depth)
        except EncodeError:
            args = None  # rebuilt from the message on decode
        out = {
            TAG: "exception",
            "c": qualified_name(type(exc)),
            "a": args,
            "m": enc_text(message(exc)),
            "tb": enc_text(format_traceback(exc)),
        }
        attributes = getattr(exc, "__dict__", None)
        # Attributes that cannot be recorded are left out; type and message stay.
        with contextlib.suppress(EncodeError):
            if attributes:
                out["d"] = {
                    k: self._enc(v, f"{path}.{k}", depth)
                    for k, v in attributes.items()
                    if not shapes.is_dunder(k) or k in shapes.EXCEPTION_DUNDERS
                }
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

    def _dec(self, raw: Any, depth: int) -> Any:
        cls = type(raw)
        if cls is list:
            depth += 1
            if depth > MAX_DEPTH:
                raise DecodeError(f"recorded value: {too_deep()}")
            return [self._dec(x, depth) for x in raw]
        if cls is dict:
            depth += 1
            if depth > MAX_DEPTH:
                raise DecodeError(f"recorded value: {too_deep()}")
            tag = raw.get(TAG)
            if tag is None:
                return {k: self._dec(v, depth) for k, v in raw.items()}
            decoder = self._decoders.get(tag) if type(tag) is str else None
            if decoder is None:
                raise DecodeError(f"unknown tag {tag!r} in recorded value")
            try:
                return decoder(raw, depth)
            except DecodeError:
                raise
            except RecursionError:
                raise DecodeError(f"recorded value: {too_deep()}") from None
            except Exception as exc:  # whatever a malformed value makes the decoder raise
                raise DecodeError(f"malformed recorded {tag!r} value: {exc!r}") from exc
        return raw

    def _checked_class(self, raw: dict[str, Any], accept: Callable[[type], bool]) -> Any:
        """The class a tagged value names in "c": found without importing, of the kind."""
        name = raw["c"]
        if type(name) is not str:
            raise DecodeError(f"malformed recorded class reference {name!r}: not a string")
        try:
            cls = resolve_loaded(name, self.allowed_modules)
        except NotLoaded as exc:
            raise DecodeError(
                f"recorded class {name} cannot be found: its module {exc.module!r} is not "
                "imported, and decoding imports nothing (stored data could name any module). "
                f"Import {exc.module} before the value is read (as the code that recorded it "
                "did), or allow it to be imported with "
                f"autodurable.configure(allowed_modules=[{exc.module!r}]) (or allowed_modules "
                "in [tool.autodurable])."
            ) from None
        except LookupError as exc:
            raise DecodeError(f"recorded class {name} cannot be found: {exc}") from exc
        if not isinstance(cls, type) or not accept(cls):
            raise DecodeError(f"refusing to decode {name}: it is not a class of the recorded kind")
        return cls

    def _dec_mapping(self, raw: dict[str, Any], depth: int) -> Any:
        name = raw["c"]
        cls = _MAPPINGS.get(name) if type(name) is str else None
        if cls is None:
            raise DecodeError(f"refusing to decode {name}: it is not a class of the recorded kind")
        return cls({self._dec(k, depth): self._dec(v, depth) for k, v in shapes.pairs_field(raw)})

    def _dec_deque(self, raw: dict[str, Any], depth: int) -> Any:
        maxlen = raw["n"]
        if maxlen is not None and type(maxlen) is not int:
            raise TypeError("the maximum length of a recorded deque must be an int or null")
        return collections.deque((self._dec(x, depth) for x in shapes.list_field(raw, "v")), maxlen)

    def _dec_enum(self, raw: dict[str, Any], depth: int) -> Any:
        cls = self._checked_class(raw, lambda c: issubclass(c, enum.Enum))
        return cls(self._dec(raw["v"], depth))

    def _dec_namedtuple(self, raw: dict[str, Any], depth: int) -> Any:
        cls = self._checked_class(raw, shapes.is_namedtuple)
        return cls._make(self._dec(x, depth) for x in shapes.list_field(raw, "v"))

    def _dec_dataclass(self, raw: dict[str, Any], depth: int) -> Any:
        cls = self._checked_class(raw, shapes.is_dataclass)
        import dataclasses  # loaded: the class was made by it

        declared = {f.name for f in dataclasses.fields(cls)}
        values = shapes.declared_fields(raw, declared, cls)
        obj = cls.__new__(cls)
        for name, item in values.items():
            # object.__setattr__ also fills frozen dataclasses, without running __init__.
            object.__setattr__(obj, name, self._dec(item, depth))
        return obj

    def _dec_orm(self, raw: dict[str, Any], depth: int) -> Any:
        cls = self._checked_class(raw, shapes.is_mapped)
        from sqlalchemy.orm import configure_mappers
        from sqlalchemy.orm.attributes import set_committed_value

        configure_mappers()  # a fresh process may not have used the class yet
        mapper = cls.__mapper__
        values = shapes.declared_fields(raw, {attr.key for attr in mapper.column_attrs}, cls)
        obj = mapper.class_manager.new_instance()  # no __init__ runs
        for name, item in values.items():
            set_committed_value(obj, name, self._dec(item, depth))
        return obj

    def _dec_model(self, raw: dict[str, Any], depth: int) -> Any:
        cls = self._checked_class(raw, shapes.is_pydantic_model)
        declared = set(cls.model_fields)
        if cls.model_config.get("extra") == "allow":
            items = shapes.dict_field(raw, "v")
            declared |= {k for k in items if type(k) is str and not shapes.is_dunder(k)}
        values = {
            name: self._dec(item, depth)
            for name, item in shapes.declared_fields(raw, declared, cls).items()
        }
        fields_set = raw.get("s", list(values))
        if type(fields_set) is not list or not all(k in values for k in fields_set):
            raise TypeError("the fields set of a recorded model must be a list of its field names")
        return cls.model_construct(_fields_set=set(fields_set), **values)

    def _dec_exception(self, raw: dict[str, Any], depth: int) -> tuple[BaseException, str]:
        name, message = shapes.str_field(raw, "c"), text_field(raw, "m")
        recorded_args = raw.get("a")
        if recorded_args is None:
            args: tuple[Any, ...] = (message,)
        else:
            args = tuple(self._dec(x, depth) for x in shapes.list_field(raw, "a"))
        attributes = raw.get("d", {})
        if type(attributes) is not dict:
            raise TypeError("the attributes of a recorded exception must be an object")
        for key in attributes:
            if shapes.is_dunder(key) and key not in shapes.EXCEPTION_DUNDERS:
                raise DecodeError(f"refusing to set attribute {key!r} of recorded exception {name}")
        try:
            cls = self._checked_class(raw, shapes.is_recreated_exception)
        except DecodeError:
            return StepError(name, message), name
        try:
            exc = cls(*args)
        except Exception:
            exc = cls.__new__(cls)
            exc.args = args
        for key, item in attributes.items():
            with contextlib.suppress(AttributeError):  # read-only: the constructor set it
                setattr(exc, key, self._dec(item, depth))
        return exc, name

    def _dec_pickle(self, raw: dict[str, Any], depth: int) -> Any:
        if not self.allow_pickle:
            raise DecodeError(
                "the recorded value was pickled, and pickle is off. Pickle can run "
                "arbitrary code; enable it only for databases you trust, with "
                "autodurable.configure(allow_pickle=True)."
            )
        import pickle

        return pickle.loads(shapes.base64_field(raw))


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
        found = find_pair(text)
        if found is not None:  # in a field or attribute name: no place for a tag
            raise EncodeError(
                f"cannot record {what}: a name in it holds the surrogate pair "
                f"{found[0]!r}, which JSON would read back as one character"
            )
        return text

    def _enc(self, value: Any, path: str, depth: int = 0) -> Any:
        if type(value) is str:
            text = enc_text(value)
            if type(text) is dict and depth + 1 > MAX_DEPTH:  # a tagged str is a level
                raise EncodeError(f"cannot record {path}: {too_deep()}")
            return text
        return super()._enc(value, path, depth)

    def _enc_dict(self, value: dict[Any, Any], path: str, depth: int) -> Any:
        if any(type(k) is str and has_pair(k) for k in value):
            return {TAG: "dict", "v": self._enc_pairs(value, path, depth)}
        return super()._enc_dict(value, path, depth)
