"""Configuration sources and their priority, validation, and SQLite database URLs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import autodurable
from autodurable import CallOptions, ConfigError
from autodurable._core._config import (
    DEFAULT_DATABASE_URL,
    ENV_DATABASE_URL,
    find_pyproject,
    load_settings,
)
from autodurable._core._runtime import get_runtime
from autodurable._store import open_store
from autodurable._store._sqlite import parse_sqlite_url


def write_pyproject(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(textwrap.dedent(body))
    return path


# -- sources and priority -----------------------------------------------------------


def test_defaults_without_pyproject_or_env(tmp_path):
    assert find_pyproject() is None
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///.autodurable/state.db"
    assert settings.allow_pickle is False
    assert settings.lease_seconds == 30.0
    assert settings.steps == CallOptions() and settings.steps.fields_set == set()
    assert get_runtime().settings == settings
    assert get_runtime().codec.allow_pickle is False


def test_pyproject_in_cwd_is_used(tmp_path):
    write_pyproject(
        tmp_path,
        """
        [project]
        name = "app"

        [tool.autodurable]
        database_url = "sqlite:///from_pyproject.db"
        allow_pickle = true
        lease_seconds = 5
        """,
    )
    settings = load_settings()
    assert settings.database_url == "sqlite:///from_pyproject.db"
    assert settings.allow_pickle is True and settings.lease_seconds == 5
    assert get_runtime().settings.database_url == "sqlite:///from_pyproject.db"
    assert get_runtime().codec.allow_pickle is True


def test_an_ai_table_does_not_stop_the_runtime(tmp_path):
    """``[tool.autodurable.ai]`` belongs to ``autodurable ai``; other commands accept it."""
    write_pyproject(
        tmp_path,
        """
        [tool.autodurable]
        lease_seconds = 7

        [tool.autodurable.ai]
        model = "local-model"
        api_key_env = "MY_KEY"
        """,
    )
    settings = load_settings()
    assert settings.lease_seconds == 7 and settings.ai["model"] == "local-model"


def test_pyproject_in_a_parent_dir_is_used(tmp_path, monkeypatch):
    pyproject = write_pyproject(tmp_path, '[tool.autodurable]\ndatabase_url = "sqlite:///up.db"\n')
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_pyproject() == pyproject
    assert load_settings().database_url == "sqlite:///up.db"
    assert get_runtime().settings.database_url == "sqlite:///up.db"
    assert load_settings(cwd=deep).database_url == "sqlite:///up.db"


def test_nearest_pyproject_wins(tmp_path, monkeypatch):
    write_pyproject(tmp_path, '[tool.autodurable]\ndatabase_url = "sqlite:///outer.db"\n')
    inner = write_pyproject(
        tmp_path / "sub", '[tool.autodurable]\ndatabase_url = "sqlite:///inner.db"\n'
    )
    monkeypatch.chdir(tmp_path / "sub")
    assert find_pyproject() == inner
    assert load_settings().database_url == "sqlite:///inner.db"
    assert load_settings(cwd=tmp_path).database_url == "sqlite:///outer.db"


def test_pyproject_without_the_section_gives_defaults(tmp_path):
    write_pyproject(tmp_path, '[tool.other]\nx = 1\n[project]\nname = "app"\n')
    assert load_settings().database_url == DEFAULT_DATABASE_URL


def test_env_overrides_pyproject(tmp_path, monkeypatch):
    write_pyproject(
        tmp_path, '[tool.autodurable]\ndatabase_url = "sqlite:///py.db"\nlease_seconds = 7\n'
    )
    monkeypatch.setenv(ENV_DATABASE_URL, "sqlite:///env.db")
    settings = load_settings()
    assert settings.database_url == "sqlite:///env.db"
    assert settings.lease_seconds == 7  # the rest of pyproject still applies
    assert get_runtime().settings.database_url == "sqlite:///env.db"


def test_empty_env_var_is_ignored(tmp_path, monkeypatch):
    write_pyproject(tmp_path, '[tool.autodurable]\ndatabase_url = "sqlite:///py.db"\n')
    monkeypatch.setenv(ENV_DATABASE_URL, "")
    assert load_settings().database_url == "sqlite:///py.db"


def test_configure_overrides_env_and_pyproject(tmp_path, monkeypatch):
    write_pyproject(tmp_path, '[tool.autodurable]\ndatabase_url = "sqlite:///py.db"\n')
    monkeypatch.setenv(ENV_DATABASE_URL, "sqlite:///env.db")
    assert get_runtime().settings.database_url == "sqlite:///env.db"
    autodurable.configure(database_url="sqlite:///configured.db")
    assert get_runtime().settings.database_url == "sqlite:///configured.db"


def test_configure_calls_accumulate_and_replace_the_runtime():
    autodurable.configure(database_url="sqlite:///a.db")
    first = get_runtime()
    autodurable.configure(lease_seconds=3, allow_pickle=True)
    second = get_runtime()
    assert second is not first
    assert second.settings.database_url == "sqlite:///a.db"  # kept from the first call
    assert (second.settings.lease_seconds, second.codec.allow_pickle) == (3, True)


def test_configure_steps_sets_step_defaults():
    autodurable.configure(steps={"retries": 2, "timeout": 9})
    defaults = get_runtime().step_defaults
    assert (defaults.retry_policy.max_attempts, defaults.timeout) == (3, 9)
    autodurable.configure(steps=CallOptions(retries=0))
    assert get_runtime().step_defaults.retry_policy.max_attempts == 1


def test_pyproject_steps_become_the_default_step_policy(tmp_path):
    write_pyproject(
        tmp_path,
        """
        [tool.autodurable.steps]
        retries = 3
        timeout = 12.5
        """,
    )
    defaults = get_runtime().step_defaults
    assert defaults.retry_policy.max_attempts == 4
    assert defaults.timeout == 12.5
    assert defaults.fields_set == {"retries", "timeout"}


def test_pyproject_steps_accept_a_retry_table(tmp_path):
    write_pyproject(
        tmp_path,
        """
        [tool.autodurable.steps.retries]
        max_attempts = 7
        backoff = 1.5
        jitter = 0
        """,
    )
    policy = get_runtime().step_defaults.retry_policy
    assert (policy.max_attempts, policy.backoff, policy.jitter) == (7, 1.5, 0)


# -- validation errors -------------------------------------------------------------------


def test_unknown_key_in_pyproject_names_key_and_file(tmp_path):
    path = write_pyproject(tmp_path, '[tool.autodurable]\ndatabase_uri = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "database_uri" in str(info.value)
    assert str(path) in str(info.value) and "[tool.autodurable]" in str(info.value)
    with pytest.raises(ConfigError, match="database_uri"):
        get_runtime()


@pytest.mark.parametrize(
    "line, key",
    [
        ("database_url = 5", "database_url"),
        ('lease_seconds = "soon"', "lease_seconds"),
        ("lease_seconds = 0", "lease_seconds"),
        ('database_url = ""', "database_url"),
        ("allow_pickle = [1]", "allow_pickle"),
    ],
)
def test_bad_value_in_pyproject_names_the_key(tmp_path, line, key):
    path = write_pyproject(tmp_path, f"[tool.autodurable]\n{line}\n")
    with pytest.raises(ConfigError, match=key) as info:
        load_settings()
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "steps, key",
    [
        ("retries = -1", "steps.retries"),
        ("timeout = 0", "steps.timeout"),
        ("retry = 3", "steps.retry"),
        ("retries = true", "steps.retries"),
    ],
)
def test_bad_step_defaults_in_pyproject_name_the_key(tmp_path, steps, key):
    write_pyproject(tmp_path, f"[tool.autodurable.steps]\n{steps}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings()


def test_malformed_toml_names_the_file(tmp_path):
    path = write_pyproject(tmp_path, "[tool.autodurable\ndatabase_url = \n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(path) in str(info.value) and "cannot read" in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        get_runtime()


def test_a_pyproject_without_our_table_is_not_ours_to_judge(tmp_path):
    # Another tool's broken table is that tool's error; the defaults hold here.
    write_pyproject(tmp_path, "[tool.other\nkey = \n")
    assert load_settings().sentinel == "warn"


def test_section_that_is_not_a_table_is_refused(tmp_path):
    write_pyproject(tmp_path, '[tool]\nautodurable = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError, match=r"\[tool.autodurable\].*must be a table"):
        load_settings()


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"database_url": ""}, "database_url"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"steps": {"retries": -2}}, "steps.retries"),
        ({"steps": {"bogus": 1}}, "steps.bogus"),
    ],
)
def test_bad_configure_leaves_the_previous_configuration(kwargs, key):
    autodurable.configure(database_url="sqlite:///good.db", lease_seconds=4)
    before = get_runtime()
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        autodurable.configure(**kwargs)
    assert "configure()" in str(info.value)
    assert get_runtime() is before
    assert before.settings.database_url == "sqlite:///good.db"
    autodurable.configure(allow_pickle=True)  # the bad value was not remembered either
    assert get_runtime().settings.database_url == "sqlite:///good.db"
    assert get_runtime().settings.lease_seconds == 4


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://x", "unsupported database URL 'mysql://x'"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous='sometimes' in "),
    ],
)
def test_configure_refuses_a_bad_database_url_at_once(url, says):
    autodurable.configure(database_url="sqlite:///good.db")
    before = get_runtime()
    with pytest.raises(ConfigError, match=re.escape(says)):
        autodurable.configure(database_url=url)
    assert get_runtime() is before


# -- SQLite URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///state.db", ("state.db", "NORMAL")),
        ("sqlite:///rel/dir/x.db", ("rel/dir/x.db", "NORMAL")),
        ("sqlite:////abs/dir/x.db", ("/abs/dir/x.db", "NORMAL")),
        ("sqlite:///x.db?synchronous=full", ("x.db", "FULL")),
        ("sqlite:////a/x.db?synchronous=EXTRA", ("/a/x.db", "EXTRA")),
        ("sqlite:///x.db?synchronous=off", ("x.db", "OFF")),
        ("sqlite:///my%20data.db", ("my data.db", "NORMAL")),
        ("sqlite:///:memory:", (":memory:", "NORMAL")),
    ],
)
def test_parse_sqlite_url(url, expected):
    assert parse_sqlite_url(url) == expected


@pytest.mark.parametrize(
    "url, fragments",
    [
        ("sqlite:///x.db?synchronous=fast", ["synchronous='fast'", "'full'", "'normal'"]),
        ("sqlite:///x.db?journal=wal", ["unknown option", "journal", "known: synchronous"]),
        ("sqlite://host/x.db", ["invalid SQLite URL", "three or four slashes"]),
        ("sqlite://", ["names no file"]),
        ("mysql://x", ["not an SQLite URL"]),
    ],
)
def test_bad_sqlite_urls_explain(url, fragments):
    with pytest.raises(ConfigError) as info:
        parse_sqlite_url(url)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("url", ["mysql://x", "state.db"])
def test_open_store_refuses_unsupported_schemes(url):
    with pytest.raises(ConfigError, match="unsupported database URL") as info:
        open_store(url)
    assert repr(url) in str(info.value) and "sqlite:///" in str(info.value)


def test_relative_sqlite_path_is_relative_to_the_cwd(tmp_path):
    store = open_store("sqlite:///data/sub/state.db")
    try:
        assert (tmp_path / "data" / "sub" / "state.db").is_file()
    finally:
        store.close()


def test_bad_sqlite_url_from_env_is_a_config_error(monkeypatch):
    monkeypatch.setenv(ENV_DATABASE_URL, "sqlite:///x.db?synchronous=sometimes")
    with pytest.raises(ConfigError, match="synchronous='sometimes'"):
        get_runtime().store  # noqa: B018
