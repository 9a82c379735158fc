"""The guide for coding assistants: the rules of durable code and the public API.

`render_guide()` returns Markdown: a short hand-written part (what workflows
and steps are, the determinism rules, idempotency keys, options, the tools)
and an API reference generated from the names in ``autodurable.__all__``
(signatures, docstrings, model fields). ``autodurable ai prompt`` prints it;
``docs/AUTODURABLE_GUIDE.md`` is the same text, checked by a test.

Invariants:
- Every public name is in the reference, with its signature and docstring,
  read from the package at render time: the API part cannot drift.
- Deterministic: the same package gives the same text, byte for byte (no
  memory addresses, dates or paths in it).
- The guide is versioned: its first lines name the autodurable version and
  `GUIDE_FORMAT`, which changes when the hand-written part changes shape.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

from .._core._fields import REQUIRED, Field, Record

GUIDE_FORMAT = 1

CONCEPTS = """\
- A **step** is a function whose *result* is recorded. When a workflow runs again
  (after a crash, under the same id), a recorded step returns its recorded value
  (or raises its recorded exception) without running. Put every interaction with
  the outside world in a step: HTTP calls, payments, e-mail, database writes,
  files, subprocesses, LLM calls.
- A **workflow** is a function whose inputs, status and output are recorded and
  that calls steps. Workflow code is *re-executed* on resume, with the recorded
  step results fed back in, so it must compute the same thing every time.
- A step called inside a step runs plainly (it is part of the outer step). A
  workflow called from a workflow runs inline, as part of its caller.
- Steps are identified by their position in the workflow and their name: if the
  code changes the order of steps while an instance is unfinished, replay stops
  with `NondeterminismError` (a `BaseException`: `except Exception` cannot hide it)."""

RULES = """\
1. No I/O directly in workflow code: move each external call into a step (a
   small function decorated with `@autodurable.step`). I/O in workflow code
   runs again on every replay.
2. Workflow code is deterministic: use `autodurable.now()`, `autodurable.random()`,
   `autodurable.uuid4()` and `autodurable.sleep()` instead of `datetime.now()`,
   `random.random()`, `uuid.uuid4()` and `time.sleep()`; do not branch on the
   clock, the environment or global mutable state.
3. One external effect per step, so a crash between two effects loses neither.
   A step may run more than once (a crash after its effect, before its result
   was recorded): pass an idempotency key to every API that accepts one.
4. Step arguments and results must be recordable: JSON-like values, tuples,
   sets, bytes, datetimes, Decimal, UUID, Enum, Path, dataclasses, named tuples,
   pydantic models, exceptions. Not open files, connections, sessions or
   response objects: return the data (`response.json()`), not the response.
   `unrecordable="rerun"` lets a step whose result cannot be recorded run again
   on resume instead of failing.
5. Generators cannot be steps or workflows: return a list.
6. Do not swallow `BaseException` in workflow code (cancellation and
   `NondeterminismError` derive from it)."""

IDEMPOTENCY = """\
`autodurable.idempotency_key()` returns `"{workflow_id}:{step position}"`: the same
for every attempt, replay and crash of one step. Call it inside the step (or in
workflow code as an argument of the step call) and pass it to the external API:

```python
@autodurable.step(retries=3, timeout=30)
def charge(payments, order):
    return payments.charge(amount=order["cents"], idempotency_key=autodurable.idempotency_key())
```"""

OPTIONS = """\
`retries` (a number of retries, or `autodurable.Retry(max_attempts, initial_interval,
backoff, max_interval, jitter, non_retryable, retry_if)`), `timeout` (seconds per
attempt; a timed-out attempt is retried with the same idempotency key) and `name`.
Layers, lowest first: defaults, `[tool.autodurable.steps]` in pyproject.toml, the
decorator, a `proxy`, and a per-call `with autodurable.options(...)` block or
`autodurable.options(fn, ...)(args)`. `autodurable.proxy(client, retries=3)` makes
every method call on a client a step."""

TOOLS = """\
- `autodurable run app.py` makes an unmodified program durable at import time
  (functions doing I/O become steps, their callers workflows).
- `autodurable explain PATH` prints that plan with a reason for each function.
- `autodurable codemod PATH` writes the plan into the source as decorators
  (a diff; `--write` applies it).
- `autodurable ai rewrite PATH` asks a model for what static rules cannot see
  (a client passed in as a parameter, idempotency keys, options), verifies the
  answer with the analyser and shows a diff (`--write` applies it).
- `autodurable mcp` serves the same analyser, codemod and verifier to coding
  agents over the Model Context Protocol."""

CHECKLIST = """\
- [ ] Every external call is inside a step; workflows only call steps and compute.
- [ ] Clocks, randomness, uuids and sleeps in workflows use the `autodurable` versions.
- [ ] Payment, e-mail and other non-idempotent calls receive `autodurable.idempotency_key()`.
- [ ] Slow or flaky calls have `retries` and `timeout`.
- [ ] Steps return recordable data, not handles; no generator is a step or workflow.
- [ ] `autodurable explain --strict PATH` passes."""

# The reference groups the public names; a name in no group still appears ("Other").
_GROUPS: list[tuple[str, list[str]]] = [
    ("Decorators and options", ["step", "workflow", "options", "CallOptions", "Retry", "proxy"]),
    (
        "Inside workflows",
        ["idempotency_key", "now", "random", "uuid4", "sleep", "sleep_async", "workflow_id"],
    ),
    (
        "Running and recovering",
        ["start", "get_workflow", "WorkflowHandle", "recover", "RecoveryReport", "configure"],
    ),
]


def render_guide() -> str:
    """The whole guide, as Markdown."""
    import autodurable

    parts = [
        "# autodurable: a guide for coding assistants",
        "",
        f"autodurable {autodurable.__version__}, guide format {GUIDE_FORMAT}. Generated by "
        "`autodurable ai prompt` from the installed package; add it to your coding "
        "assistant's context (rules file, project instructions) when it edits code "
        "that uses autodurable.",
        "",
        "## Workflows and steps",
        "",
        CONCEPTS,
        "",
        "## Rules for durable code",
        "",
        RULES,
        "",
        "## Idempotency keys",
        "",
        IDEMPOTENCY,
        "",
        "## Options",
        "",
        OPTIONS,
        "",
        "## Tools",
        "",
        TOOLS,
        "",
        "## API reference",
        "",
        "Everything below is `import autodurable; autodurable.<name>`; the public API "
        "is exactly `autodurable.__all__`.",
        "",
        api_reference(),
        "## Checklist",
        "",
        CHECKLIST,
        "",
    ]
    return "\n".join(parts)


def api_reference() -> str:
    """The generated part: one entry per name in ``autodurable.__all__``."""
    import autodurable

    names = list(autodurable.__all__)
    grouped = {name for _, members in _GROUPS for name in members}
    errors = sorted(
        n
        for n in names
        if isinstance(getattr(autodurable, n), type)
        and issubclass(getattr(autodurable, n), BaseException)
    )
    groups = [(title, [n for n in members if n in names]) for title, members in _GROUPS] + [
        ("Errors", errors)
    ]
    others = sorted(set(names) - grouped - set(errors))
    if others:
        groups.append(("Other", others))
    out: list[str] = []
    for title, members in groups:
        out += [f"### {title}", ""]
        entries = [_entry(name, getattr(autodurable, name)) for name in members]
        # Errors are one line each: a list; the others are sections of their own.
        out += ["\n".join(entries), ""] if title == "Errors" else [e + "\n" for e in entries]
    return "\n".join(out)


def _entry(name: str, obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    if isinstance(obj, type) and issubclass(obj, BaseException):
        base = obj.__mro__[1].__name__
        return f"- `{name}({base})`: {_first_paragraph(doc)}"
    if isinstance(obj, type) and issubclass(obj, Record):
        fields = [f"- `{name}: {_field_text(spec)}`" for name, spec in obj.declared.items()]
        return "\n".join([f"#### `autodurable.{name}`", "", doc, "", "Fields:", "", *fields])
    if isinstance(obj, type):
        lines = [f"#### `autodurable.{name}{_signature(obj)}`", "", doc]
        methods = [
            (attr, member)
            for attr, member in vars(obj).items()
            if not attr.startswith("_") and callable(member) and inspect.getdoc(member)
        ]
        if dataclasses.is_dataclass(obj):
            methods = [
                (a, m) for a, m in methods if a not in {f.name for f in dataclasses.fields(obj)}
            ]
        if methods:
            lines += ["", "Methods:", ""]
            lines += [
                f"- `{attr}{_signature(member, skip_self=True)}`: "
                f"{_first_paragraph(inspect.getdoc(member) or '')}"
                for attr, member in methods
            ]
        return "\n".join(lines)
    return "\n".join([f"#### `autodurable.{name}{_signature(obj)}`", "", doc])


def _signature(obj: Any, skip_self: bool = False) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    if skip_self:
        params = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=params)
    return _clean(str(signature).replace("'", ""))


def _type(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    text = _clean(str(annotation))
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    return f"{optional.group(1)} | None" if optional else text


def _clean(text: str) -> str:
    """Type text without module paths or addresses: ``Retry | None``."""
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _field_text(spec: Field) -> str:
    """``int (>= 1) = 3``: a record field's type, its rule and its default."""
    rule = spec.check.text if spec.check is not None else ""
    text = _clean(spec.annotation) + (f" ({rule})" if rule else "")
    return text if spec.default is REQUIRED else f"{text} = {_clean(repr(spec.default))}"


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.split("\n\n")[0].split())
