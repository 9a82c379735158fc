"""The `autodurable` command line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import autodurable
from autodurable._cli._main import COMMANDS, _parser, main


@autodurable.workflow
def greet(name):
    return f"hello {name}"


def test_version_and_help(capsys):
    assert main([]) == 0
    assert "Crash-proof" in capsys.readouterr().out
    done = subprocess.run(
        [sys.executable, "-m", "autodurable", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"autodurable {autodurable.__version__}"


def test_each_command_parses_the_same_with_only_its_own_parser_built():
    # A command builds only its own parser (the others' modules are not imported);
    # the list of commands must name every command the whole parser has.
    whole = _parser()
    commands = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == COMMANDS
    examples = [
        ["workflows", "list", "--status", "failed"],
        ["queues", "list"],
        ["info"],
        ["run", "-q", "x.py", "--flag"],
        ["schedules", "list"],
        ["send", "w", "hi"],
    ]
    for argv in examples:
        only = _parser(argv[0])
        built = next(a for a in only._actions if isinstance(a, argparse._SubParsersAction))
        assert set(built.choices) <= {argv[0], "send", "workflows", "worker", "queues", "ai", "mcp"}
        parsed, expected = vars(only.parse_args(argv)), vars(whole.parse_args(argv))
        parsers = {k for k, v in expected.items() if isinstance(v, argparse.ArgumentParser)}
        assert parsed.keys() == expected.keys(), argv
        assert {k: v for k, v in parsed.items() if k not in parsers} == {
            k: v for k, v in expected.items() if k not in parsers
        }, argv


def test_info_counts_workflows(tmp_path, capsys):
    greet("ann")
    greet("bob")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    # the resolved location: the project root's (here the working directory's) state
    assert f"database: {tmp_path / '.autodurable' / 'state.db'}\n" in out
    assert "2 succeeded" in out


def test_info_on_a_bad_database_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    assert main(["--database-url", f"sqlite:///{bad}", "info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autodurable: cannot open the state database") and "Traceback" not in err


def test_output_piped_into_a_reader_that_quits_stops_quietly(tmp_path) -> None:
    import subprocess
    import sys

    from ..helpers import ROOT, child_env

    for command in (["explain"], ["codemod"]):
        reader = subprocess.Popen(
            [sys.executable, "-m", "autodurable", *command, str(ROOT / "benchmarks" / "idioms")],
            cwd=tmp_path,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert reader.stdout is not None and reader.stderr is not None
        reader.stdout.readline()
        reader.stdout.close()  # as `head -1` does
        stderr = reader.stderr.read().decode()
        reader.wait(timeout=120)
        reader.stderr.close()
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, (command, stderr)
