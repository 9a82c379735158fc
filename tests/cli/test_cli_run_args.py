"""``autodurable run``'s arguments: the plain ``run SCRIPT [ARGS]`` form skips argparse
and must mean exactly what the parser makes of it."""

from __future__ import annotations

from typing import Any

import pytest

from autodurable._cli import _main
from autodurable._hook import _launcher


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def record(target: Any, **options: Any) -> int:
        calls.append((target, options))
        return 0

    monkeypatch.setattr(_launcher, "run", record)
    return calls


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "hello.py"],
        ["run", "hello.py", "-q", "--new", "--run-id", "x", "-m", "m"],  # all the script's
        ["run", "sub/app.py", "--", "a b", ""],
    ],
)
def test_the_plain_form_means_what_the_parser_reads(launched, argv: list[str]) -> None:
    parsed = _main._parser(only="run").parse_args(argv)
    assert (parsed.quiet, parsed.new, parsed.run_id, parsed.module) == (False, False, None, None)
    assert _main.main(argv) == 0
    [(target, options)] = launched
    assert (target.kind, [target.value, *target.args]) == ("script", parsed.target)
    assert options == {}  # the launcher's defaults: no parser was built


def test_options_before_the_script_still_go_through_the_parser(launched) -> None:
    assert _main.main(["run", "-q", "--new", "hello.py", "a"]) == 0
    [(target, options)] = launched
    assert (target.kind, target.value, target.args) == ("script", "hello.py", ["a"])
    assert options == {"new": True, "run_id": None, "quiet": True}


def test_a_failure_to_start_is_one_line_and_exit_code_2(monkeypatch, capsys) -> None:
    from autodurable._errors import ConfigError

    def refuse(target: Any, **options: Any) -> int:
        raise ConfigError("no such script: nope.py")

    monkeypatch.setattr(_launcher, "run", refuse)
    assert _main.main(["run", "nope.py"]) == 2
    assert capsys.readouterr().err == "autodurable: no such script: nope.py\n"
