"""The rewrite plan a model proposes: a strict pydantic schema, and reading it from a reply.

A plan is about one module. Every entry names a function of that module by
qualname (``charge``, ``Client.send``) and says why.

Invariants:
- Strict: unknown keys, wrong types and empty reasons are errors, never
  coerced or ignored; the error text says where (``roles[1].role: ...``), so it
  can be sent back to the model as is.
- A reply is read as one JSON object: the whole text, or the one fenced
  ```json block it holds (local models often add one). Anything else is an
  error, never a guess.
- Parsing only; whether the functions and calls exist is `_apply`'s business.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]
Qualname = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z_][\w.<>]*$", max_length=300)
]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*$", max_length=100)]
CallText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class RoleChange(BaseModel):
    """Give a function a role other than the analyser's (or confirm one it could not see)."""

    model_config = _STRICT

    function: Qualname
    role: Literal["step", "workflow", "plain"]
    reason: Reason


class IOCall(BaseModel):
    """A call that does I/O although the analyser cannot see it (a client passed in, say).

    The verifier then requires the call to end up inside a step.
    """

    model_config = _STRICT

    function: Qualname
    call: CallText  # the callee as written: "payments.charge"
    reason: Reason


class StepOptions(BaseModel):
    """Options written on a step's decorator."""

    model_config = _STRICT

    function: Qualname
    retries: Annotated[int, Field(ge=0, le=20)] | None = None
    timeout: Annotated[float, Field(gt=0, le=86_400)] | None = None
    reason: Reason


class IdempotencyKey(BaseModel):
    """Pass ``autodurable.idempotency_key()`` to a call, as a keyword argument."""

    model_config = _STRICT

    function: Qualname
    call: CallText  # the callee as written: "payments.charge"
    keyword: Identifier = "idempotency_key"
    line: Annotated[int, Field(ge=1)] | None = None  # when the function makes the call twice
    reason: Reason


class Split(BaseModel):
    """Replace a function by new code: the function itself and helpers it now calls."""

    model_config = _STRICT

    function: Qualname
    code: Annotated[str, StringConstraints(min_length=1, max_length=50_000)]
    reason: Reason


class RewritePlan(BaseModel):
    """What a model proposes for one module. Empty lists mean "nothing to change"."""

    model_config = _STRICT

    summary: Annotated[str, StringConstraints(max_length=2000)] = ""
    roles: list[RoleChange] = []
    io: list[IOCall] = []
    options: list[StepOptions] = []
    idempotency_keys: list[IdempotencyKey] = []
    splits: list[Split] = []

    def is_empty(self) -> bool:
        """Whether the plan changes nothing."""
        return not (self.roles or self.io or self.options or self.idempotency_keys or self.splits)


class PlanError(ValueError):
    """A reply that is not a valid plan; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)


def parse_plan(reply: str) -> RewritePlan:
    """The plan in a model's reply; raises `PlanError` with exact, quotable problems."""
    text = reply.strip()
    if not text.startswith("{"):
        blocks = _FENCE.findall(text)
        if len(blocks) == 1:
            text = blocks[0].strip()
        elif len(blocks) > 1:
            raise PlanError([f"the reply holds {len(blocks)} code blocks: send one JSON object"])
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        excerpt = text[max(0, exc.pos - 30) : exc.pos + 30].replace("\n", "\\n")
        where = f"line {exc.lineno} column {exc.colno}"
        raise PlanError([f"malformed JSON: {exc.msg} at {where} (near {excerpt!r})"]) from None
    return plan_from_data(data)


def plan_from_data(data: object) -> RewritePlan:
    """Validate already-decoded JSON as a plan; raises `PlanError`."""
    if not isinstance(data, dict):
        raise PlanError([f"the plan must be a JSON object, not {type(data).__name__}"])
    try:
        return RewritePlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(describe(exc)) from None


def describe(exc: ValidationError) -> list[str]:
    """One line per problem: ``roles[0].role: Input should be 'step', ... (got 'durable')``."""
    out: list[str] = []
    for error in exc.errors():
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        got = error.get("input")
        shown = json.dumps(got)[:80] if isinstance(got, str | int | float | bool) else None
        out.append(f"{where or '(plan)'}: {error['msg']}" + (f" (got {shown})" if shown else ""))
    return out


def schema_text() -> str:
    """The JSON schema of a plan, compact, for a prompt."""
    return json.dumps(RewritePlan.model_json_schema(), separators=(",", ":"))
