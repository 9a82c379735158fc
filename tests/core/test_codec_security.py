"""Decoding stored data that an attacker may have written: it imports nothing, builds only
classes of the recorded kind with their declared fields, never re-raises a process-exit
signal, and turns every malformed value into a `DecodeError`."""

from __future__ import annotations

import dataclasses
import json
import sys
import webbrowser
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import autodurable
from autodurable._core import _codec, _runtime
from autodurable._core._codec import Codec
from autodurable._core._config import load_settings
from autodurable._errors import ConfigError, DecodeError, EncodeError, StepError, WorkflowCancelled

HERE = __name__
MAX_DEPTH = getattr(_codec, "MAX_DEPTH", 200)


@dataclasses.dataclass
class Card:
    number: str


@dataclasses.dataclass
class Other:
    number: str


class Strict(BaseModel):
    a: int = 1


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 1


class Recorded(Exception):
    pass


class Sneaky(Recorded):
    """Same layout as Recorded: a recorded Recorded could be turned into one."""


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "security_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str]


def _tagged(tag: str, name: str, v: Any = None) -> str:
    return json.dumps({"~": tag, "c": name, "v": {} if v is None else v})


# -- 1. decoding imports nothing -----------------------------------------------------------------


@pytest.mark.parametrize("tag", ["class", "dataclass", "model", "enum", "namedtuple", "orm"])
def test_a_reference_to_antigravity_imports_nothing(monkeypatch, tag):
    opened: list[Any] = []
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: opened.append(a))
    monkeypatch.delitem(sys.modules, "antigravity", raising=False)
    before = set(sys.modules)
    with pytest.raises(DecodeError, match="antigravity") as info:
        Codec().decode(_tagged(tag, "antigravity:geohash"))
    assert set(sys.modules) == before and opened == []
    message = str(info.value)
    assert "not imported" in message and "allowed_modules" in message


def _plant(tmp_path, monkeypatch, name: str) -> Any:
    marker = tmp_path / f"{name}.ran"
    (tmp_path / f"{name}.py").write_text(
        "import dataclasses, pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "@dataclasses.dataclass\n"
        "class Evil:\n"
        "    x: int = 0\n"
        "class Boom(Exception):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return marker


@pytest.mark.parametrize("tag", ["class", "dataclass", "exception"])
def test_a_module_file_placed_on_sys_path_is_not_imported(tmp_path, monkeypatch, tag):
    module = f"planted_codec_module_{tag}"
    marker = _plant(tmp_path, monkeypatch, module)
    before = set(sys.modules)
    payload = json.dumps({"~": tag, "c": f"{module}:Evil", "v": {"x": 1}, "a": [], "m": "boom"})
    if tag == "exception":  # a recorded failure whose class is not found: a StepError
        back = Codec().decode(payload)
        assert type(back) is StepError and back.type_name == f"{module}:Evil"
    else:
        with pytest.raises(DecodeError, match=f"{module}:Evil"):
            Codec().decode(payload)
    assert set(sys.modules) == before and not marker.exists()


def test_a_module_named_in_the_allow_list_is_imported(tmp_path, monkeypatch):
    marker = _plant(tmp_path, monkeypatch, "planted_allowed_module")
    try:
        codec = Codec(allowed_modules=("planted_allowed_module",))
        back = codec.decode(_tagged("dataclass", "planted_allowed_module:Evil", {"x": 3}))
        assert type(back).__name__ == "Evil" and back.x == 3 and marker.exists()
    finally:
        sys.modules.pop("planted_allowed_module", None)


def test_an_already_imported_module_is_used():
    assert Codec().decode(_tagged("dataclass", f"{HERE}:Card", {"number": "1"})) == Card("1")


# -- 2. only classes of the recorded kind, only declared fields ---------------------------------


def test_a_dataclass_field_named_class_is_refused():
    payload = json.dumps(
        {
            "~": "dataclass",
            "c": f"{HERE}:Card",
            "v": {"number": "1", "__class__": {"~": "class", "c": f"{HERE}:Other"}},
        }
    )
    with pytest.raises(DecodeError, match="__class__"):
        Codec().decode(payload)


def test_an_undeclared_dataclass_field_is_refused():
    with pytest.raises(DecodeError, match="not_a_field"):
        Codec().decode(_tagged("dataclass", f"{HERE}:Card", {"number": "1", "not_a_field": 2}))


def test_an_undeclared_model_field_is_refused():
    with pytest.raises(DecodeError, match="sneaky"):
        Codec().decode(_tagged("model", f"{HERE}:Strict", {"a": 1, "sneaky": 2}))


def test_a_model_that_allows_extra_gets_extras_but_no_dunder_names():
    back = Codec().decode(_tagged("model", f"{HERE}:Loose", {"a": 1, "more": 2}))
    assert back.__pydantic_extra__ == {"more": 2}
    with pytest.raises(DecodeError, match="__class__"):
        Codec().decode(_tagged("model", f"{HERE}:Loose", {"a": 1, "__class__": 2}))


@pytest.mark.parametrize(
    "name", ["subprocess:Popen", "builtins:type", "builtins:object", "os:_wrap_close"]
)
def test_the_class_tag_refuses_classes_of_other_kinds(name):
    with pytest.raises(DecodeError, match="refusing"):
        Codec().decode(json.dumps({"~": "class", "c": name}))


def test_the_class_tag_returns_classes_of_the_recorded_kinds():
    for cls in (Card, Strict, ValueError):
        assert Codec().decode(Codec().encode(cls)) is cls


def test_encoding_a_class_of_another_kind_is_refused_at_record_time():
    with pytest.raises(EncodeError, match="Popen"):
        Codec().encode(__import__("subprocess").Popen)


class FakeMapped:
    __mapper__ = "not a mapper"


@pytest.mark.parametrize("key", ["_sa_instance_state", "__class__", "not_a_column"])
def test_the_orm_tag_sets_only_mapped_column_keys(key):
    with pytest.raises(DecodeError, match=f"'{key}' is not one of its fields"):
        Codec().decode(_tagged("orm", f"{HERE}:Account", {"id": 1, key: 2}))


def test_the_orm_tag_needs_a_mapped_class():
    with pytest.raises(DecodeError, match="refusing"):
        Codec().decode(_tagged("orm", f"{HERE}:FakeMapped", {}))
    back = Codec().decode(_tagged("orm", f"{HERE}:Account", {"id": 1, "owner": "ann"}))
    assert type(back) is Account and (back.id, back.owner) == (1, "ann")


# -- 3. stored process-exit signals come back as StepError --------------------------------------


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt("stop"), GeneratorExit("g")])
def test_a_recorded_base_exception_comes_back_as_step_error(exc):
    codec = Codec()
    text = codec.encode_error(exc)
    for back in (codec.decode_error(text), codec.decode(text)):
        assert type(back) is StepError
        assert back.type_name == f"builtins:{type(exc).__name__}"
        assert back.message == str(exc)


def test_workflow_cancelled_still_comes_back_as_itself():
    codec = Codec()
    back = codec.decode_error(codec.encode_error(WorkflowCancelled("wf-1", "by hand")))
    assert type(back) is WorkflowCancelled and back.reason == "by hand"


def test_a_recorded_exception_cannot_set_dunder_attributes():
    raw = json.loads(Codec().encode_error(Recorded("x")))
    raw["d"] = {"__class__": {"~": "class", "c": f"{HERE}:Sneaky"}}
    with pytest.raises(DecodeError, match="__class__"):
        Codec().decode_error(json.dumps(raw))


# -- 4. malformed values are DecodeErrors -------------------------------------------------------

MALFORMED = [
    '{"~": "decimal", "v": "not a number"}',
    '{"~": "decimal", "v": 5}',
    '{"~": "timedelta", "v": [1000000000000, 0, 0]}',
    '{"~": "deque", "v": [], "n": 100000000000000000000000000}',
    '{"~": "tuple", "v": {"a": 1}}',
    '{"~": "set", "v": "abc"}',
    '{"~": "dict", "v": ["ab"]}',
    '{"~": "complex", "v": ["1+2j"]}',
    '{"~": "uuid", "v": 5}',
    '{"~": "bytes", "v": "!!!"}',
    '{"~": "dataclass", "c": 123, "v": {}}',
    f'{{"~": "dataclass", "c": "{HERE}:Card", "v": [1]}}',
    f'{{"~": "model", "c": "{HERE}:Strict", "v": {{}}, "s": "abc"}}',
    '{"~": "exception", "c": "builtins:ValueError", "a": [], "m": "x", "d": [1]}',
    '{"~": "exception", "c": "builtins:ValueError", "a": 5, "m": "x"}',
    '{"~": "datetime", "v": "2020-01-01T00:00:00", "o": "abc"}',
    '{"~": "datetime", "v": "2020-01-01T00:00:00", "z": 5}',
    '{"~": "path", "c": "Path", "v": 5}',
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_values_are_decode_errors(text):
    # The message says what is wrong with which recorded value (its tag, or the class).
    with pytest.raises(DecodeError, match=r"^malformed recorded ('\w+' value|class reference)"):
        Codec().decode(text)


@pytest.mark.parametrize("text", ["{}", "[1]", '{"c": 5}', "5"])
def test_a_malformed_recorded_exception_is_a_decode_error(text):
    codec = Codec()
    with pytest.raises(DecodeError, match=r"^malformed recorded exception: "):
        codec.decode_error(text)
    with pytest.raises(DecodeError, match=r"^malformed recorded exception: "):
        codec.error_summary(text)


def _nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def test_deep_nesting_is_refused_when_decoding():
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(DecodeError, match=f"{MAX_DEPTH} levels"):
        Codec().decode(text)
    tuples = '{"~":"tuple","v":[' * 400 + "]}" * 400
    with pytest.raises(DecodeError, match=f"{MAX_DEPTH} levels"):
        Codec().decode(tuples)
    with pytest.raises(DecodeError, match=f"nested more than {MAX_DEPTH} levels deep"):
        Codec().decode("[" * 100_000 + "]" * 100_000)


def test_deep_nesting_is_refused_when_encoding():
    with pytest.raises(EncodeError, match=f"{MAX_DEPTH} levels"):
        Codec().encode(_nested(MAX_DEPTH + 1))
    with pytest.raises(EncodeError, match=f"{MAX_DEPTH} levels"):
        Codec().encode(_nested(100_000))


def test_values_nested_up_to_the_limit_round_trip():
    codec = Codec()
    value = _nested(MAX_DEPTH)
    assert codec.decode(codec.encode(value)) == value
    pairs: Any = 0
    for _ in range(MAX_DEPTH):
        pairs = {1: pairs}
    assert codec.decode(codec.encode(pairs)) == pairs


def test_the_allow_list_reaches_the_runtime_from_configure(tmp_path, monkeypatch):
    marker = _plant(tmp_path, monkeypatch, "planted_configured_module")
    payload = _tagged("dataclass", "planted_configured_module:Evil", {"x": 4})
    try:
        autodurable.configure(f"sqlite:///{tmp_path / 'state.db'}")
        with pytest.raises(DecodeError, match="allowed_modules"):
            _runtime.get_runtime().codec.decode(payload)
        assert not marker.exists()
        autodurable.configure(allowed_modules=["planted_configured_module"])
        back = _runtime.get_runtime().codec.decode(payload)
        assert type(back).__name__ == "Evil" and back.x == 4 and marker.exists()
    finally:
        sys.modules.pop("planted_configured_module", None)
        _runtime._reset_overrides_for_tests()


def test_the_allow_list_is_read_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.autodurable]\nallowed_modules = ["app.models"]\n'
    )
    assert load_settings(cwd=tmp_path).allowed_modules == ("app.models",)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.autodurable]\nallowed_modules = ["app/models"]\n'
    )
    with pytest.raises(
        ConfigError, match="allowed_modules entry 'app/models' is not a module name"
    ):
        load_settings(cwd=tmp_path)
