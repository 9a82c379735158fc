"""The projects `peer_suites.py` runs: pinned releases, what their suites need, and why.

Data only: one `Project` per release, each with the traits that made it worth
running (src layout, ``filterwarnings = error``, caller-inspecting code,
``functools.wraps`` decorators, file, subprocess and SQLite I/O), and the tests
that fail plainly on this kind of machine (deselected in every variant alike).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    """A pinned release whose own test suite is run, and what it needs to run it."""

    key: str  # the name --projects uses
    dist: str  # the name on PyPI
    version: str
    package: tuple[str, ...]  # its own source, relative to the sdist's root: what the codemod gets
    requirements: tuple[str, ...]  # pinned: the test dependencies and the runtime ones
    tests: tuple[str, ...] = ("tests",)  # what pytest is given
    traits: tuple[str, ...] = ()  # why it was chosen
    pytest_args: tuple[str, ...] = ()  # more arguments, the same for every variant
    deselect: tuple[tuple[str, str], ...] = ()  # (node id, why it fails plainly here)


SRC = "src layout"
FILTERWARNINGS = "pytest filterwarnings = error"
CALLER = "inspects its caller's frames (sys._getframe)"
WRAPS = "decorators built with functools.wraps"
SIGNATURE = "signature-preserving decorator factory"
FILES = "file I/O"
SUBPROCESS = "subprocess I/O"
SQLITE = "SQLite I/O"
THREADS = "threads"
ASYNC = "asyncio"

AS_ROOT = "runs as root here: a chmod does not stop root"

PROJECTS: tuple[Project, ...] = (
    Project(
        "python-dotenv",
        "python-dotenv",
        "1.0.1",
        ("src/dotenv",),
        ("pytest==8.3.3", "click==8.1.7", "sh==2.1.0"),
        traits=(SRC, CALLER, FILES, SUBPROCESS),
        deselect=(
            ("tests/test_main.py::test_set_key_permission_error", AS_ROOT),
            ("tests/test_main.py::test_set_key_unauthorized_file", AS_ROOT),
        ),
    ),
    Project(
        "cachetools",
        "cachetools",
        "5.5.0",
        ("src/cachetools",),
        ("pytest==8.3.3",),
        traits=(SRC, WRAPS),
    ),
    Project(
        "filelock",
        "filelock",
        "3.16.1",
        ("src/filelock",),
        (
            "pytest==8.3.3",
            "pytest-asyncio==0.24.0",
            "pytest-mock==3.14.0",
            "pytest-timeout==2.3.1",
            "virtualenv==20.27.1",
        ),
        traits=(SRC, FILES, THREADS, ASYNC),
    ),
    Project(
        "platformdirs",
        "platformdirs",
        "4.3.6",
        ("src/platformdirs",),
        ("pytest==8.3.3", "pytest-mock==3.14.0", "appdirs==1.4.4"),
        traits=(SRC, FILES),
    ),
    Project(
        "humanize",
        "humanize",
        "4.11.0",
        ("src/humanize",),
        # coverage: its pytest filterwarnings name coverage.exceptions.CoverageWarning
        ("pytest==8.3.3", "freezegun==1.5.1", "python-dateutil==2.9.0.post0", "coverage==7.6.4"),
        traits=(SRC, FILTERWARNINGS),
    ),
    Project(
        "tenacity",
        "tenacity",
        "9.0.0",
        ("tenacity",),
        ("pytest==8.3.3", "typeguard==4.4.1", "tornado==6.4.1"),
        traits=(WRAPS, ASYNC),
    ),
    Project(
        "decorator",
        "decorator",
        "5.1.1",
        ("src/decorator.py",),
        ("pytest==8.3.3",),
        tests=("src/tests/test.py",),
        traits=(SRC, SIGNATURE, CALLER),
    ),
    Project(
        "sqlite-utils",
        "sqlite-utils",
        "3.37",
        ("sqlite_utils",),
        (
            "pytest==8.3.3",
            "hypothesis==6.118.0",
            "cogapp==3.4.1",
            "black==24.10.0",
            "click==8.1.7",
            "click-default-group==1.2.4",
            "sqlite-fts4==1.0.3",
            "tabulate==0.9.0",
            "python-dateutil==2.9.0.post0",
            "pluggy==1.5.0",
        ),
        traits=(SQLITE, FILES),
    ),
    Project(
        "sqlitedict",
        "sqlitedict",
        "2.1.0",
        ("sqlitedict.py",),
        ("pytest==8.3.3",),
        traits=(SQLITE, THREADS, FILES),
        deselect=(
            (
                "tests/test_autocommit.py::test",
                "needs the folder tests/db, which tests that run after it make",
            ),
            (
                "tests/test_core.py::SqliteDictTerminateFailTest::test_terminate_cannot_delete",
                AS_ROOT,
            ),
        ),
    ),
    Project(
        "sarge",
        "sarge",
        "0.1.8",
        ("sarge",),
        ("pytest==8.3.3",),
        tests=("test_sarge.py",),
        traits=(SUBPROCESS, THREADS),
    ),
    Project(
        "tinydb",
        "tinydb",
        "4.8.2",  # 4.8.0's metadata trips pip's requirement parser
        ("tinydb",),
        ("pytest==8.3.3", "pyyaml==6.0.2"),
        traits=(FILES,),
    ),
)
