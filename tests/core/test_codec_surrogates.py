"""Every ``str`` Python can hold is recorded exactly, lone surrogates included.

``os.fsdecode`` turns the bytes of a file name that is not UTF-8 into lone
surrogates (``b"caf\\xe9"`` -> ``"caf\\udce9"``); such a str cannot be encoded
as UTF-8, so the codec must never hand one to a store (SQLite and psycopg bind
text as UTF-8). It writes surrogates as JSON escapes, and keeps a high
surrogate followed by a low one apart (JSON would read the two escapes as one
astral character). Values without surrogates are encoded as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
from collections import Counter, OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import autodurable
from autodurable import EncodeError
from autodurable._core._codec import Codec
from autodurable._errors import DecodeError
from autodurable._store import FAILED, PENDING, SUCCEEDED

from ..helpers import Crash, crash_points, maybe_crash

LONE = os.fsdecode(b"caf\xe9")  # "caf\udce9": what a Latin-1 file name becomes
HIGH, LOW = "\ud83d", "\ude00"  # "\ud83d\ude00" (two code points) is not "😀" (one)
PAIR = f"a{HIGH}{LOW}b"
STRINGS = [
    LONE,
    HIGH,
    LOW,
    f"{LOW}{HIGH}",  # a low then a high: no pair, two lone surrogates
    PAIR,
    f"{HIGH}{LOW}{HIGH}{LOW}",
    f"{HIGH}{HIGH}{LOW}{LOW}",
    f"é{HIGH}\\{LOW}ü",  # an escaped backslash between them: not a pair in JSON
    f'"{LONE}"\n\t~',
    f"😀{HIGH}",
]


@dataclasses.dataclass
class Listing:
    folder: pathlib.PurePosixPath
    names: list[str]


class Entry(BaseModel):
    name: str
    tags: dict[str, str] = {}


def roundtrip(value: Any) -> Any:
    codec = Codec()
    text = codec.encode(value)
    text.encode("utf-8")  # what the stores do with it: must not raise
    return codec.decode(text)


def assert_same(value: Any, back: Any) -> None:
    assert back == value and type(back) is type(value), (value, back)


@pytest.mark.parametrize("text", STRINGS, ids=ascii)
def test_strings_round_trip_as_values_and_keys(text: str) -> None:
    for value in (
        text,
        [text],
        (text, [text, {"k": text}]),
        {text: text},
        {text: {text: [text]}, "plain": 1},
        {text, "x"},
        frozenset({text}),
        {1: text, text: 2},  # keys that are not all strings: a tagged dict
        {"~": text},  # a user "~" key: a tagged dict
        OrderedDict([(text, text)]),
        Counter({text: 3}),
        pathlib.PurePosixPath("/data", text),
        Listing(pathlib.PurePosixPath(text), [text, "b"]),
        Entry(name=text, tags={text: text}),
    ):
        assert_same(value, roundtrip(value))
    assert_same(text + "x", roundtrip(text + "x"))


def test_a_surrogate_pair_is_not_an_astral_character() -> None:
    for value in (f"{HIGH}{LOW}", "😀", [f"{HIGH}{LOW}", "😀"], {f"{HIGH}{LOW}": "😀"}):
        back = roundtrip(value)
        assert_same(value, back)
    assert len(roundtrip(f"{HIGH}{LOW}")) == 2 and len(roundtrip("😀")) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.text(st.sampled_from(["a", "é", "~", "\\", '"', "😀", HIGH, LOW, "\udce9"])),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.lists(kids, max_size=3).map(tuple)
            | st.dictionaries(st.text(st.sampled_from(["k", "~", HIGH, LOW])), kids, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_property_surrogate_heavy_values_round_trip(value: Any) -> None:
    assert_same(value, roundtrip(value))


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_property_any_str_round_trips(text: str) -> None:
    assert_same(text, roundtrip(text))
    assert_same([text, {text: text}], roundtrip([text, {text: text}]))


def test_the_text_is_utf8_and_lone_surrogates_stay_plain_json() -> None:
    """Lone surrogates are JSON escapes, as json.dumps writes them: readable by any
    JSON reader, nothing tagged; a pair is tagged, its parts split between the two."""
    codec = Codec()
    assert codec.encode(LONE) == '"caf\\udce9"' == json.dumps(LONE)
    assert codec.encode({"path": LONE, "é": "ü"}) == '{"path":"caf\\udce9","é":"ü"}'
    assert json.loads(codec.encode({LONE: [LONE]})) == {LONE: [LONE]}
    assert codec.encode(PAIR) == '{"~":"str","v":["a\\ud83d","\\ude00b"]}'
    for text in STRINGS:
        for value in (text, [text], {text: text}, pathlib.PurePosixPath(text)):
            encoded = codec.encode(value)
            encoded.encode("utf-8")
            json.loads(encoded)


def test_values_without_surrogates_are_encoded_as_before() -> None:
    """Rows written by earlier versions, and what is written now, are the same text."""
    codec = Codec()
    assert codec.encode("é😀") == '"\\u00e9\\ud83d\\ude00"'  # a scalar: ASCII, as json.dumps
    assert codec.encode(["é😀", {"ü": 1}]) == '["é😀",{"ü":1}]'  # a container: UTF-8 kept
    assert codec.encode(pathlib.PurePosixPath("/é")) == '{"~":"path","c":"PurePosixPath","v":"/é"}'
    zone = dt.timezone(dt.timedelta(hours=1), "Zé")
    assert codec.encode(dt.time(1, tzinfo=zone)) == (
        '{"~":"time","v":"01:00:00+01:00","o":[0,3600,0],"n":"Zé"}'
    )
    # What an earlier version wrote for a scalar with a lone surrogate still decodes.
    assert codec.decode('"caf\\udce9"') == LONE


def test_a_time_zone_name_with_surrogates_round_trips() -> None:
    for text in STRINGS:
        value = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2), text))
        back = roundtrip(value)
        assert back == value and back.tzname() == text


class NamedError(Exception):
    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


@pytest.mark.parametrize("text", STRINGS, ids=ascii)
def test_exceptions_round_trip_with_their_messages(text: str) -> None:
    codec = Codec()
    for exc in (
        ValueError(f"cannot open {text}"),
        # (not its filename: the codec records args and __dict__, not OSError's slots)
        FileNotFoundError(2, f"No such file or directory: {text!r}"),
        KeyError(text),
        NamedError(text, name=text),
    ):
        try:
            raise exc
        except Exception as caught:
            encoded = codec.encode_error(caught)
        encoded.encode("utf-8")
        back = codec.decode_error(encoded)
        assert type(back) is type(exc) and back.args == exc.args and str(back) == str(exc)
        _, message, traceback = codec.error_summary(encoded)
        assert message == str(exc) and str(exc) in traceback
        assert_same(exc.args, roundtrip(exc).args)  # an exception as a value, too
    assert codec.decode_error(codec.encode_error(NamedError("m", text))).name == text


def test_an_exception_whose_arguments_cannot_be_recorded_keeps_its_message() -> None:
    codec = Codec()
    exc = RuntimeError(object(), PAIR)  # args not encodable: rebuilt from the message
    back = codec.decode_error(codec.encode_error(exc))
    assert type(back) is RuntimeError and str(back) == str(exc)


class Loose(BaseModel, extra="allow"):
    pass


def test_a_pair_in_a_name_that_has_no_place_for_a_tag_is_refused() -> None:
    """The field names of a pydantic model's extras are object keys: a lone surrogate is
    escaped, but a pair would be read back as another str, so it is refused."""
    back = roundtrip(Loose.model_construct(**{LONE: LONE}))
    assert type(back) is Loose and back.__pydantic_extra__ == {LONE: LONE}
    with pytest.raises(EncodeError, match="surrogate pair"):
        Codec().encode(Loose.model_construct(**{PAIR: 1}), "the result of step 'x'")


def test_malformed_tagged_strings_are_decode_errors() -> None:
    for text in ('{"~":"str"}', '{"~":"str","v":"ab"}', '{"~":"str","v":["a",1]}'):
        with pytest.raises(DecodeError, match=r"^malformed recorded 'str' value: "):
            Codec().decode(text)
    with pytest.raises(DecodeError, match=r"^malformed recorded 'str' value: "):
        Codec().decode_error('{"~":"exception","c":"builtins:ValueError","a":null,"m":{"~":"str"}}')


# -- end to end, on both stores ---------------------------------------------------------

calls: Counter[str] = Counter()


@autodurable.step
def describe(path: str) -> dict[str, Any]:
    calls["describe"] += 1
    return {"path": path, path: [path, PAIR], "parts": (path, pathlib.PurePosixPath(path))}


@autodurable.step(retries=0)
def open_it(path: str) -> str:
    calls["open_it"] += 1
    raise FileNotFoundError(2, f"cannot open {path}")


@autodurable.workflow
def survey(path: str, names: dict[str, str]) -> tuple[Any, ...]:
    found = describe(path)
    try:
        open_it(path)
    except FileNotFoundError as exc:
        failure = (str(exc), exc.args)
    maybe_crash("survey")
    return found, failure, describe(names[path])


def test_a_workflow_with_surrogates_in_inputs_and_results_runs_and_resumes(database) -> None:
    calls.clear()
    names = {LONE: PAIR, PAIR: LONE}
    run = autodurable.options(survey, workflow_id="survey")
    crash_points.add("survey")
    with pytest.raises(Crash, match=r"^survey$"):
        run(LONE, names)
    handle = autodurable.get_workflow("survey")
    assert handle.status() == PENDING
    steps = handle.steps()
    assert [(s.name, s.status) for s in steps] == [("describe", SUCCEEDED), ("open_it", FAILED)]
    assert steps[1].error_message == f"[Errno 2] cannot open {LONE}"
    assert handle.info().inputs["args"][0] == LONE  # plain JSON: readable as it is
    assert calls == Counter(describe=1, open_it=1)

    result = run(LONE, names)  # resumed: the recorded steps are replayed, not run again
    assert calls == Counter(describe=2, open_it=1)
    assert result == (
        {"path": LONE, LONE: [LONE, PAIR], "parts": (LONE, pathlib.PurePosixPath(LONE))},
        (f"[Errno 2] cannot open {LONE}", (2, f"cannot open {LONE}")),
        {"path": PAIR, PAIR: [PAIR, PAIR], "parts": (PAIR, pathlib.PurePosixPath(PAIR))},
    )
    assert type(result[0]["parts"]) is tuple and len(result[2]["path"]) == 4
    assert handle.status() == SUCCEEDED

    calls.clear()
    assert run(LONE, names) == result  # finished: the recorded output, nothing runs
    assert autodurable.get_workflow("survey").result() == result
    assert calls == Counter()
