"""The dashboard's pages through Starlette's TestClient, on each store.

Lists and filters, keyset pages, a workflow's page (steps, timeline, values,
errors, retries, messages), redaction, truncation, escaping of hostile values.
"""

from __future__ import annotations

import re

import pytest

import autodurable
from autodurable._core._runtime import _reset_overrides_for_tests, get_runtime

from ..helpers import Crash, crash_points, maybe_crash, run_workflow, wait_until, workflow
from . import _flows
from ._flows import breaks, greet, retrying, run

pytestmark = pytest.mark.usefixtures("database")

HOSTILE = "<script>alert(1)</script>"


def ids_in(html: str) -> list[str]:
    """The workflow ids of a list page's rows, in order."""
    return re.findall(r'<tr data-id="([^"]*)"', html)


def test_the_list_shows_workflows_newest_first_with_counts_and_a_chart(client):
    run(greet, "first", 1, "a")
    run(breaks, "second", 2)
    page = client.get("/")
    assert page.status_code == 200
    assert ids_in(page.text) == ["second", "first"]
    assert 'class="chart counts-chart"' in page.text
    assert 'class="badge s-failed"' in page.text and 'class="badge s-succeeded"' in page.text
    assert "ValueError: boom &lt;b&gt;bold&lt;/b&gt;" in page.text


def test_filters_narrow_the_list(client):
    run(greet, "order-1", 1, "a")
    run(greet, "order-2", 2, "b")
    run(breaks, "refund-1", 3)
    assert ids_in(client.get("/?status=failed").text) == ["refund-1"]
    assert ids_in(client.get("/?status=succeeded&status=failed").text) == [
        "refund-1",
        "order-2",
        "order-1",
    ]
    assert ids_in(client.get("/?name=*:breaks").text) == ["refund-1"]
    assert ids_in(client.get("/?q=order-").text) == ["order-2", "order-1"]
    assert ids_in(client.get("/?range=1h").text) == ["refund-1", "order-2", "order-1"]
    version = get_runtime().store.get_workflow("order-1").app_version
    assert len(ids_in(client.get(f"/?version={version}").text)) == 3
    assert ids_in(client.get("/?version=no-such").text) == []
    assert ids_in(client.get("/?error=ValueError").text) == ["refund-1"]
    assert ids_in(client.get("/?since=2999-01-01T00:00").text) == []
    bad = client.get("/?status=bogus")
    assert bad.status_code == 200 and "unknown status &#x27;bogus&#x27;" in bad.text
    assert "since must be a date and time" in client.get("/?since=yesterday").text


def test_an_exact_id_goes_to_its_workflow(client):
    run(greet, "order-42", 1, "a")
    found = client.get("/?q=order-42", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/workflow?id=order-42"


def test_pages_are_keyset_pages_forwards_and_back(client_for):
    store = get_runtime().store
    for i in range(7):
        store.create_workflow(workflow(f"w{i}", None, at=1_000_000 + i))
    client = client_for(page_size=3)
    first = client.get("/").text
    assert ids_in(first) == ["w6", "w5", "w4"]
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).text
    assert ids_in(second) == ["w3", "w2", "w1"]
    newer = re.search(r'rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert ids_in(client.get(newer).text) == ["w6", "w5", "w4"]
    last = re.search(r'rel="next" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    last_page = client.get(last).text
    assert ids_in(last_page) == ["w0"] and 'rel="next"' not in last_page


def test_the_workflow_page_shows_facts_values_timeline_and_steps(client):
    run(greet, "w1", 1, "hello")
    page = client.get("/workflow?id=w1")
    assert page.status_code == 200
    text = page.text
    assert 'class="chart timeline"' in text
    for place in ("1", "2", "3", "4"):
        assert f'id="step-{place}"' in text
    assert "autodurable.sleep" in text and "waiting (sleep, recv)" in text
    assert "hello" in text and "&quot;sum&quot;: 4" in text
    assert "hunter2" in text  # nothing redacted unless asked
    assert client.get("/workflow?id=nope").status_code == 404


def test_redacted_fields_never_reach_the_page(client_for):
    run(greet, "w1", 1, "hello")
    client = client_for(redact=("PASS*",))
    for path in ("/workflow?id=w1", "/step?id=w1&place=1", "/workflow?id=w1&partial=1"):
        text = client.get(path).text
        assert "hunter2" not in text and "redacted" in text, path


def test_failures_show_their_error_and_traceback(client):
    run(breaks, "broken", 1)
    text = client.get("/workflow?id=broken").text
    assert "builtins:ValueError" in text and "boom &lt;b&gt;bold&lt;/b&gt;" in text
    assert 'class="trace"' in text and "Traceback (most recent call last)" in text
    assert "/confirm/resume?id=broken" in text


def test_retried_steps_show_their_attempts(client):
    _flows.tries.clear()
    assert run(retrying, "retried") == 2
    text = client.get("/workflow?id=retried").text
    assert "(1 retried)" in text and "&#215;2" in text


def test_hostile_values_are_escaped_everywhere(client):
    hostile_id = 'x"><img src=x onerror=alert(2)>'
    run(greet, hostile_id, 1, HOSTILE)
    run(breaks, "b" + HOSTILE, 1)
    pages = [
        client.get("/").text,
        client.get("/", params={"q": "x"}).text,
        client.get("/workflow", params={"id": hostile_id}).text,
        client.get("/step", params={"id": hostile_id, "place": "1"}).text,
        client.get("/confirm/fork", params={"id": hostile_id, "step": HOSTILE}).text,
        client.get("/workflow", params={"id": "b" + HOSTILE}).text,
        client.get("/", params={"name": HOSTILE}).text,
    ]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[2]


def test_big_values_are_cut_with_a_note(client_for):
    run(greet, "big", 1, "x" * 50_000)
    text = client_for(max_value_chars=1_000).get("/workflow?id=big").text
    assert "Truncated: showing 1,000 of" in text
    assert "x" * 1_001 not in text


def test_long_workflows_are_shown_a_page_of_steps_at_a_time(client_for):
    run(greet, "long", 1, "a")
    client = client_for(step_page_size=3)
    first = client.get("/workflow?id=long").text
    assert "All 4 steps over time" in first and "page 1 of 2" in first
    assert 'id="step-3"' in first and 'id="step-4"' not in first
    second = client.get("/workflow?id=long&page=2").text
    assert 'id="step-4"' in second and 'id="step-1"' not in second
    assert 'id="step-4"' in client.get("/workflow?id=long&page=99").text  # the last page


def test_live_regions_come_alone_with_partial(client):
    run(greet, "w1", 1, "a")
    for path in ("/?partial=1", "/workflow?id=w1&partial=1", "/queues?partial=1"):
        text = client.get(path).text
        assert "<html" not in text and '<form class="filters"' not in text, path
    assert 'data-src="/?' in client.get("/").text


def test_queues_and_schedules_pages(client):
    queue = autodurable.Queue("emails", concurrency=2)
    queue.enqueue(greet, 1, "a")
    text = client.get("/queues").text
    assert "emails" in text and "/?queue=emails" in text
    assert ids_in(client.get("/?queue=emails").text) != []
    assert ids_in(client.get("/?queue=other").text) == []
    assert client.get("/schedules").status_code == 200


def test_messages_and_events_are_shown(client):
    store = get_runtime().store
    store.create_workflow(workflow("inbox", None))
    autodurable.send("inbox", {"approved": True, "password": "x"}, topic="decision")
    text = client.get("/workflow?id=inbox").text
    assert "Messages" in text and "decision" in text and "&quot;approved&quot;: true" in text
    assert "waiting" in text


def test_static_files_and_security_headers(client):
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/nope").status_code == 404
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


@autodurable.step
def stage(n: int) -> int:
    return n


@autodurable.workflow
def two_runs() -> list[int]:
    first = stage(1)
    maybe_crash("between the runs")
    return [first, stage(2)]


def test_a_resumed_workflow_shows_its_executions(client):
    crash_points.add("between the runs")
    with pytest.raises(Crash):
        run_workflow(two_runs, "resumed")
    crash_points.clear()
    url = get_runtime().database_url
    _reset_overrides_for_tests()  # another process, as after a crash: another executor
    autodurable.configure(database_url=url)
    assert run_workflow(two_runs, "resumed") == [1, 2]
    text = client.get("/workflow?id=resumed").text
    assert "<h2>Executions</h2>" in text
    assert "<b>run 1</b>, the first run" in text
    assert "<b>run 2</b>, resumed: replayed the steps above from the record" in text
    assert text.count('class="run-label"') == 2 and ">run 2</text>" in text
    assert "recorded by run 2" in text  # the tooltip of the step the resume ran
    run(greet, "single", 1, "x")  # one execution: no section, no marks
    single = client.get("/workflow?id=single").text
    assert "<h2>Executions</h2>" not in single and "run-label" not in single


LINEAGE = autodurable.Queue("ui-lineage")  # nothing serves it: its children stay queued


@autodurable.workflow
def child_job(n: int) -> int:
    return n


@autodurable.workflow
def parent_job() -> list[str]:
    started = autodurable.start(child_job, 1)
    batch = LINEAGE.enqueue_many(child_job, [(2,), (3,)])
    return [started.workflow_id, *(handle.workflow_id for handle in batch)]


def test_children_link_to_their_parent_and_the_parent_lists_them(client):
    children = run_workflow(parent_job, "parent")
    page = client.get("/workflow?id=parent").text
    for child in children:
        assert f">{child}</a>" in page  # the started one and both of the batch
        child_page = client.get(f"/workflow?id={child}").text
        assert 'Started by <a href="/workflow?id=parent">parent</a>' in child_page
    assert "Started by" not in page


def test_rewinds_are_part_of_the_lineage(client):
    run(greet, "rewound", 1, "x")
    store = get_runtime().store
    assert store.rewind_workflow("rewound", 3) is not None
    autodurable.recover()  # runs it again from step 3, to its end
    wait_until(lambda: autodurable.get_workflow("rewound").status() == "succeeded")
    assert store.rewind_workflow("rewound", 2) is not None
    page = client.get("/workflow?id=rewound").text
    assert page.count("Rewound to step") == 2
    assert page.index("Rewound to step 3") < page.index("Rewound to step 2")  # oldest first
