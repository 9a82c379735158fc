"""The test suite's own rules: which stores run, and PostgreSQL is never skipped silently."""

from __future__ import annotations

import pytest

from . import _postgres
from .helpers import selected_stores


@pytest.mark.parametrize(
    ("value", "stores"),
    [
        (None, ["sqlite", "postgresql"]),
        ("sqlite", ["sqlite"]),
        (" postgresql , sqlite,sqlite ", ["postgresql", "sqlite"]),
    ],
)
def test_the_stores_come_from_autodurable_test_stores(monkeypatch, value, stores):
    if value is None:
        monkeypatch.delenv("AUTODURABLE_TEST_STORES", raising=False)
    else:
        monkeypatch.setenv("AUTODURABLE_TEST_STORES", value)
    assert selected_stores() == stores


@pytest.mark.parametrize("value", ["", "mysql", "sqlite,oracle"])
def test_an_unknown_or_empty_store_list_is_refused(monkeypatch, value):
    monkeypatch.setenv("AUTODURABLE_TEST_STORES", value)
    with pytest.raises(ValueError, match=r"expected a comma list of sqlite, postgresql$"):
        selected_stores()


def test_missing_postgresql_binaries_fail_the_postgresql_tests(monkeypatch):
    monkeypatch.setenv("AUTODURABLE_TEST_STORES", "sqlite,postgresql")
    monkeypatch.setattr(_postgres, "find_bindir", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL server binaries not found"):
        _postgres.require_postgres()


def test_leaving_postgresql_out_skips_its_tests_saying_why(monkeypatch):
    monkeypatch.setenv("AUTODURABLE_TEST_STORES", "sqlite")
    with pytest.raises(pytest.skip.Exception, match="does not include postgresql"):
        _postgres.require_postgres()
