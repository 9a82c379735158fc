"""`autodurable mcp` as a subprocess: every tool and the guide, through the mcp client."""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from autodurable._ai._guide import render_guide
from autodurable._analysis import analyse_sources

from ..helpers import ROOT, child_env

pytest.importorskip("mcp")

PLAN = json.loads((ROOT / "examples" / "ai" / "plan.json").read_text())
HAND_WRITTEN = """\
import autodurable
import requests


@autodurable.workflow
def sync(url):
    return requests.get(url, timeout=10).json()
"""


def _is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def _json(result: Any) -> Any:
    assert not _is_error(result), result.content[0].text
    return json.loads(result.content[0].text)


def test_every_tool_and_the_guide_through_the_mcp_client(tmp_path: Path) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    billing = tmp_path / "shop" / "billing.py"
    shutil.copy(ROOT / "examples" / "ai" / "billing.py", billing)
    original = billing.read_text()
    (tmp_path / "shop" / "sync.py").write_text(HAND_WRITTEN)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "autodurable", "mcp"],
        cwd=str(tmp_path),
        env=child_env(),
    )
    seen: dict[str, Any] = {}

    async def session() -> None:
        with anyio.fail_after(60):
            await talk()

    async def talk() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            seen["tools"] = {tool.name for tool in (await client.list_tools()).tools}
            seen["explain"] = _json(await client.call_tool("explain", {"paths": ["shop"]}))
            seen["plan"] = _json(await client.call_tool("plan", {"path": "shop/billing.py"}))
            bad = {"roles": [{"function": "charge", "role": "step", "reason": "moves money"}]}
            seen["rejected"] = _json(
                await client.call_tool("apply", {"path": "shop/billing.py", "plan": bad})
            )
            seen["dry_run"] = _json(
                await client.call_tool("apply", {"path": "shop/billing.py", "plan": PLAN})
            )
            seen["after_dry_run"] = billing.read_text()
            seen["verify_plan"] = _json(
                await client.call_tool(  # the plan as JSON text, as some agents send it
                    "verify", {"path": "shop/billing.py", "plan": json.dumps(PLAN)}
                )
            )
            seen["verify_file"] = _json(await client.call_tool("verify", {"path": "shop/sync.py"}))
            seen["missing"] = await client.call_tool("plan", {"path": "shop/nope.py"})
            seen["written"] = _json(
                await client.call_tool(
                    "apply", {"path": "shop/billing.py", "plan": PLAN, "dry_run": False}
                )
            )
            seen["verify_written"] = _json(
                await client.call_tool("verify", {"path": "shop/billing.py"})
            )
            resources = await client.list_resources()
            seen["resources"] = {str(r.uri) for r in resources.resources}
            seen["guide"] = (await client.read_resource("autodurable://guide")).contents[0].text

    anyio.run(session)

    assert seen["tools"] == {"explain", "plan", "apply", "verify"}
    # explain: the analyser's roles with reasons, and what it could not decide.
    modules = {m["module"]: m for m in seen["explain"]["modules"]}
    functions = {f["function"]: f for f in modules["shop.billing"]["functions"]}
    assert functions["charge_card"]["style"] == "watched"  # an untyped client
    assert functions["load_order"]["reason"] == "calls open at line 23"
    assert any("payments.charge on `payments`" in u["what"]
               for u in modules["shop.billing"]["undecided"])  # fmt: skip
    # plan: the codemod's diff as is, and the schema of a rewrite plan.
    diff = seen["plan"]["codemod_diff"]
    assert '+@autodurable.step(unrecordable="rerun")\n def load_order' in diff
    assert "idempotency_keys" in seen["plan"]["plan_schema"]["properties"]
    # apply: a bad plan is refused with the exact problem; a good one is a dry run.
    assert seen["rejected"]["ok"] is False
    assert seen["rejected"]["problems"][0].startswith(
        "roles[0]: there is no function charge in this module"
    )
    assert seen["dry_run"]["ok"] is True and seen["dry_run"]["written"] is False
    assert "+        idempotency_key=autodurable.idempotency_key()," in seen["dry_run"]["diff"]
    assert {"by": "model", "function": "send_receipt", "change": "role step",
            "reason": PLAN["roles"][1]["reason"]} in seen["dry_run"]["changes"]  # fmt: skip
    assert seen["after_dry_run"] == original
    # verify: a plan, and a file as it is (a hand-written workflow doing I/O).
    assert seen["verify_plan"] == {
        "ok": True, "status": "verified", "problems": [], "warnings": [], "already": []
    }  # fmt: skip
    assert seen["verify_file"]["ok"] is False
    assert seen["verify_file"]["problems"] == [
        "sync is a workflow but calls requests.get at line 7 outside any step: that runs "
        "again on every replay; move it into a step"
    ]
    assert _is_error(seen["missing"]) and "no such file: shop/nope.py" in (
        seen["missing"].content[0].text
    )
    # apply with dry_run false writes the verified result; it verifies as written.
    assert seen["written"]["written"] is True
    text = billing.read_text()
    ast.parse(text)
    roles = {f.qualname: f.role for f in analyse_sources(
        {"shop.billing": ("shop/billing.py", text)}).modules["shop.billing"].functions}  # fmt: skip
    assert roles["charge_card"] == roles["send_receipt"] == "step"
    assert seen["verify_written"]["ok"] is True
    # The guide, as a resource.
    assert "autodurable://guide" in seen["resources"]
    assert seen["guide"] == render_guide()
