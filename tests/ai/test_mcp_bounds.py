"""The MCP tools return bounded results: `explain` over a project of 60 modules comes in
pages of at most `max_chars` characters, with a `next` cursor, documented in the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

from autodurable._ai import _mcp, _pages

MODULE = """\
import json
import requests


def load_{n}(path):
    with open(path) as fh:
        return json.load(fh)


def fetch_{n}(url):
    return requests.get(url, timeout=10).json()


def charge_{n}(processor, order):
    return processor.charges.create(amount=order["total"], source=order["card"])


def total_{n}(items):
    return sum(item["price"] for item in items)


def label_{n}(order):
    return f"order {{order['id']}}"


def process_{n}(path, url, processor):
    order = load_{n}(path)
    rates = fetch_{n}(url)
    charge = charge_{n}(processor, order)
    return total_{n}(order["items"]), rates, charge, label_{n}(order)
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for n in range(60):
        (package / f"orders_{n:02}.py").write_text(MODULE.format(n=n))
    return package


def _all_pages(paths: list[str], **options: Any) -> list[dict[str, Any]]:
    pages = [_mcp.explain(paths, **options)]
    while pages[-1]["next"] is not None:
        assert len(pages) < 200, "paging does not end"
        pages.append(_mcp.explain(paths, cursor=pages[-1]["next"], **options))
    return pages


def test_explain_comes_in_bounded_pages_that_add_up_to_everything(shop: Path) -> None:
    pages = _all_pages([str(shop)])
    assert len(pages) > 1
    slack = 1_000  # one item over the bound at most
    for result in pages:
        assert len(json.dumps(result)) <= _pages.DEFAULT_MAX_CHARS + slack
        assert result["modules_total"] == 61
    assert pages[-1]["next"] is None
    functions: dict[str, list[str]] = {}
    for result in pages:
        for module in result["modules"]:
            functions.setdefault(module["module"], []).extend(
                f["function"] for f in module["functions"]
            )
    assert len(functions) == 61  # every module once (the package's __init__ too)
    orders = functions["shop.orders_07"]
    # Plain functions are counted, not listed: total_7 and label_7 do nothing durable.
    assert orders == ["load_7", "fetch_7", "charge_7", "process_7"]
    assert sum(len(names) for names in functions.values()) == 60 * 4


def test_a_small_bound_splits_a_module_and_include_plain_lists_everything(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pages, "MIN_MAX_CHARS", 100)  # one module fits the smallest bound
    target = str(shop / "orders_03.py")
    pages = _all_pages([target], max_chars=700, include_plain=True)
    assert len(pages) > 1
    assert pages[0]["modules"][0].get("truncated") is True
    assert pages[1]["modules"][0].get("continued") is True
    names = [f["function"] for r in pages for m in r["modules"] for f in m["functions"]]
    assert names == ["load_3", "fetch_3", "charge_3", "total_3", "label_3", "process_3"]
    places = [u["what"] for r in pages for m in r["modules"] for u in m["undecided"]]
    assert any("processor.charges.create on `processor`" in what for what in places)


def test_a_cursor_not_made_by_the_tool_is_refused_in_one_line(shop: Path) -> None:
    with pytest.raises(Exception, match="call it again without a cursor") as caught:
        _mcp.explain([str(shop)], cursor="999:0")
    assert "\n" not in str(caught.value)


def test_the_bound_and_the_cursor_are_in_the_tool_schema() -> None:
    server = _mcp.build_server()
    tools = {tool.name: tool for tool in anyio.run(server.list_tools)}
    schema = getattr(tools["explain"], "input_schema", None) or tools["explain"].inputSchema
    properties = schema["properties"]
    assert "`next` of the previous result" in properties["cursor"]["description"]
    assert properties["max_chars"]["maximum"] == _pages.MAX_MAX_CHARS
    assert "plain functions" in properties["include_plain"]["description"]
    assert "call again with\n    cursor=next" in (tools["explain"].description or "")
    for name in ("plan", "apply"):
        tool = tools[name]
        assert (
            "max_chars" in (getattr(tool, "input_schema", None) or tool.inputSchema)["properties"]
        )


def test_a_long_diff_is_cut_at_a_line_with_a_note() -> None:
    text = "".join(f"+line {n}\n" for n in range(2_000))
    cut, note = _pages.capped(text, 2_000, "see it whole elsewhere")
    assert len(cut) <= 2_000 and cut.endswith("\n") and text.startswith(cut)
    assert note is not None and "more lines); see it whole elsewhere" in note
    assert _pages.capped("short\n", 2_000, "") == ("short\n", None)
