"""The dashboard in a real browser (headless chromium through Playwright), on each store.

List and filter, open a workflow and see its timeline, cancel and resume it,
fork it from a step, and watch a running workflow change without reloading.
With ``AUTODURABLE_SCREENSHOTS=1`` the SQLite run also writes the screenshots of
docs/images/ui-*.png (normal runs write nothing into the tree).
"""

from __future__ import annotations

import os
import time

import pytest

from autodurable._control import _operations as ops
from autodurable._core._runtime import get_runtime

from ..helpers import ROOT, workflow
from . import _flows
from ._flows import breaks, gated, greet, in_thread, retrying, run, waits

# One worker runs them all, one after another: one browser (see `chromium`).
pytestmark = [pytest.mark.usefixtures("database"), pytest.mark.xdist_group("browser")]


def screenshot(page, database: str, name: str, *, whole: bool = False) -> None:
    """Save docs/images/ui-NAME.png when asked to (once: from the SQLite run); the
    visible part of the page, or with `whole` all of it."""
    if os.environ.get("AUTODURABLE_SCREENSHOTS") == "1" and database.startswith("sqlite"):
        folder = ROOT / "docs" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"ui-{name}.png"), full_page=whole)


def wait_for_recv(workflow_id: str) -> None:
    deadline = time.monotonic() + 20
    store = get_runtime().store
    while not any(s.status == "waiting" for s in store.list_steps(workflow_id)):
        assert time.monotonic() < deadline, "the workflow never waited"
        time.sleep(0.01)


def test_list_filter_and_open_a_workflow(served, browser_page, database):
    store = get_runtime().store
    now = time.time()
    for i in range(30):  # a few days of history, for the chart
        record = workflow(f"nightly-{i:02d}", None, "app.reports:nightly", now - 3e5 + i * 9e3)
        record.status = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")[i % 5]
        store.create_workflow(record)
    for i in range(3):
        run(greet, f"order-{i}", i, f"note {i}")
    run(breaks, "refund-7", 7)
    _flows.tries.clear()
    run(retrying, "sync-3")
    base = served(redact=("password",))
    page = browser_page
    page.goto(base + "/")
    rows = page.locator("table.workflows tbody tr")
    assert rows.count() == 35
    assert page.locator("svg.counts-chart rect").count() >= 10
    screenshot(page, database, "list")
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/?*status=failed*")
    assert rows.count() == 7 and "refund-7" in rows.first.inner_text()
    page.fill("input[name=q]", "order-")
    page.select_option("select[name=status]", "")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**q=order-*")
    assert rows.count() == 3
    page.click("text=order-2")
    page.wait_for_url("**/workflow?id=order-2")
    assert page.locator("svg.timeline g.lane").count() == 4
    assert page.locator("tr#step-3").inner_text().count("autodurable.sleep") == 1
    assert "hunter2" not in page.content()
    screenshot(page, database, "workflow", whole=True)
    page.goto(base + "/workflow?id=refund-7")
    assert "boom <b>bold</b>" in page.locator("section.card", has_text="Error").inner_text()


def test_cancel_resume_and_fork_from_a_step(served, browser_page, database):
    thread = in_thread(waits, "approval-1", 1)
    wait_for_recv("approval-1")
    base = served()
    page = browser_page
    page.goto(base + "/workflow?id=approval-1")
    assert page.locator(".badge.s-pending").first.is_visible()
    page.click("text=Cancel")
    page.wait_for_url("**/confirm/cancel?id=approval-1")
    assert ops.workflow_info("approval-1").status == "pending"  # only the POST acts
    page.fill("input[name=reason]", "not needed")
    page.click("button:has-text('Cancel workflow')")
    page.wait_for_url("**done=cancelled")
    assert page.locator(".badge.s-cancelled").first.is_visible()
    thread.join(20)
    assert ops.workflow_info("approval-1").status == "cancelled"
    page.click("a.button:has-text('Resume')")
    page.click("button:has-text('Resume workflow')")
    page.wait_for_url("**done=resumed")
    assert ops.workflow_info("approval-1").status == "pending"
    page.locator("tr#step-2 a:has-text('fork from here')").click()
    page.wait_for_url("**/confirm/fork?*step=2*")
    assert page.input_value("input[name=step]") == "2"
    page.fill("input[name=new_id]", "approval-1-again")
    page.click("button:has-text('Fork workflow')")
    page.wait_for_url("**/workflow?id=approval-1-again&done=forked")
    assert "Forked from" in page.content()
    forked = get_runtime().store.get_workflow("approval-1-again")
    assert forked.forked_from == "approval-1" and forked.forked_at_step == 2
    assert page.locator("svg.timeline g.lane").count() == 1  # step 1, copied
    ops.cancel("approval-1")
    ops.cancel("approval-1-again")


def test_a_running_workflow_updates_live(served, browser_page, database):
    _flows.gate.clear()
    _flows.started.clear()
    thread = in_thread(gated, "live-1", 5)
    try:
        assert _flows.started.wait(20)
        base = served()
        page = browser_page
        page.goto(base + "/workflow?id=live-1")
        assert page.locator("#workflow-live .badge.s-pending").first.is_visible()
        page.goto(base + "/")
        page.wait_for_selector("tr[data-id='live-1'] .badge.s-pending")
        _flows.gate.set()
        thread.join(20)
        # No reload: the list's live region fetches the change by itself.
        page.wait_for_selector("tr[data-id='live-1'] .badge.s-succeeded", timeout=10_000)
        page.click("text=live-1")
        page.wait_for_selector("#workflow-live .badge.s-succeeded")
        assert page.locator("svg.timeline g.lane").count() == 3
    finally:
        _flows.gate.set()
        thread.join(20)


def test_a_new_step_appears_without_a_reload(served, browser_page, database):
    _flows.gate.clear()
    _flows.started.clear()
    thread = in_thread(gated, "live-2", 5)
    try:
        assert _flows.started.wait(20)
        page = browser_page
        page.goto(served() + "/workflow?id=live-2")
        assert page.locator("tr#step-3").count() == 0
        _flows.gate.set()
        page.wait_for_selector("tr#step-3", timeout=10_000)
        page.wait_for_selector("#workflow-live .badge.s-succeeded")
    finally:
        _flows.gate.set()
        thread.join(20)
