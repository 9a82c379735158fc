"""The plan: a role, a style and a reason for every function of the project.

Roles: ``step`` (its result is recorded), ``workflow`` (its steps are recorded;
it is re-executed on resume), ``plain`` (untouched). Styles say how the role is
applied:
- ``decorate``: ``@step`` / ``@workflow`` added innermost;
- ``inline``: ``@workflow`` (not for generators) and its own I/O expressions
  become recorded sites (see `_facts`);
- ``coarse``: a function mixing I/O with calls to steps that cannot be made
  inline: the whole function is one step (its inner steps run unrecorded);
- ``manual``: already decorated by hand, respected as is;
- ``watched``: calls something the analyser could not type that may be I/O
  (`_unresolved`): confirmed at run time, its result recorded as a step only
  when a call of it, in workflow code, reaches an I/O chokepoint;
- ``unsafe``: does I/O that cannot be wrapped safely; left unchanged, reported;
- ``none``: plain.

Invariants:
- Propagation is a fixpoint over the project's call graph: a function that
  calls a step or a workflow is workflow code; roles only ever become more
  durable, so it terminates.
- Every decision carries a reason naming what it saw and where.
- Configuration (``[tool.autodurable.roles]``) wins over inference; a manual
  decorator wins over both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ._facts import CallSite, Facts, Site

STEP, WORKFLOW, PLAIN = "step", "workflow", "plain"
_DUNDER_OK = frozenset({"__call__"})
_DECORATED_STYLES = frozenset({"decorate", "inline", "coarse", "watched"})


class FunctionPlan(BaseModel):
    """The decision for one function (or the top level of a script)."""

    module: str
    qualname: str
    line: int
    role: str
    style: str
    reason: str
    is_async: bool = False
    is_generator: bool = False
    # A durable root: called from plain code it starts a workflow (a workflow set in
    # [tool.autodurable.roles] or decorated by hand). Inferred workflows are not:
    # they are workflow code only when a root calls them.
    root: bool = False
    sites: list[Site] = []
    notes: list[str] = []
    # What the function calls itself: catalogue names of I/O, and "@module:qualname"
    # of project functions (whose own APIs count too, see `autodurable._analysis.apis`).
    apis: list[str] = []

    @property
    def key(self) -> str:
        """``"module:qualname"``."""
        return f"{self.module}:{self.qualname}"

    @property
    def decorated(self) -> bool:
        """Whether the import hook and the codemod put a decorator on this function.

        Steps get one; of workflows, only roots: an inferred workflow is workflow
        code only when a root calls it, and plain code anywhere else, so it needs
        none (and a wrapper would be seen by plain callers). Generators get none.
        """
        return (
            self.style in _DECORATED_STYLES
            and not self.is_generator
            and (self.role == STEP or (self.role == WORKFLOW and self.root))
        )


class ModulePlan(BaseModel):
    """The decisions for one module."""

    module: str
    path: str
    functions: list[FunctionPlan] = []
    top_level: FunctionPlan | None = None
    opted_out: bool = False

    def get(self, qualname: str) -> FunctionPlan | None:
        """The plan of one function by qualname (its first definition, if several)."""
        for plan in self.functions:
            if plan.qualname == qualname:
                return plan
        return None


@dataclass
class Unit:
    """A function as the analyser saw it, before roles are decided."""

    module: str
    qualname: str
    line: int
    facts: Facts
    is_async: bool
    is_generator: bool
    manual: str | None = None  # "step" / "workflow" if decorated by hand
    mutates_state: str | None = None  # why replaying its result would lose a change
    calls_durable: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """``"@module:qualname"`` as calls refer to it."""
        return f"@{self.module}:{self.qualname}"

    @property
    def key(self) -> tuple[str, int]:
        """One definition: a qualname can be defined more than once (``if``/``else``
        branches, a property's getter and setter, ``@overload`` stubs)."""
        return (self.ref, self.line)


def decide(
    units: list[Unit], forced: dict[str, str], durable: dict[str, str] | None = None
) -> dict[tuple[str, int], FunctionPlan]:
    """Give every unit a role, propagating through calls until nothing changes.

    A call of a qualname defined more than once is a call of a step or workflow
    as soon as one of its definitions is one. `durable`: the functions known to
    be steps or workflows already (reference -> role), those of the modules not
    decided now; it gains the units that become durable.
    """
    durable = {} if durable is None else durable
    plans: dict[tuple[str, int], FunctionPlan] = {}
    callers: dict[str, list[tuple[str, int]]] = {}
    for unit in units:
        for call in unit.facts.calls:
            callers.setdefault(call.name, []).append(unit.key)
    # Passes in a fixed order; a unit is decided again only when one of the
    # functions it calls has just become durable.
    dirty = {unit.key for unit in units}
    while dirty:
        again: set[tuple[str, int]] = set()
        for unit in units:
            if unit.key not in dirty:
                continue
            plan = plans[unit.key] = _decide_one(unit, durable, forced)
            if plan.role in (STEP, WORKFLOW) and unit.ref not in durable:
                durable[unit.ref] = plan.role
                again.update(callers.get(unit.ref, ()))
        dirty = again
    return plans


_FIELDS = tuple(FunctionPlan.model_fields)


def _plan_fields(**fields: Any) -> dict[str, Any]:
    """Every field of a `FunctionPlan`, in the model's order (its JSON has that order):
    `fields` over the defaults, with fresh lists each time."""
    values = {
        "is_async": False,
        "is_generator": False,
        "root": False,
        "sites": [],
        "notes": [],
        "apis": [],
        **fields,
    }
    return {name: values[name] for name in _FIELDS}


def _construct(fields: dict[str, Any]) -> FunctionPlan:
    """What `model_construct` makes of a complete set of fields, in a quarter of its time."""
    plan = FunctionPlan.__new__(FunctionPlan)
    object.__setattr__(plan, "__dict__", fields)
    object.__setattr__(plan, "__pydantic_fields_set__", set(fields))
    object.__setattr__(plan, "__pydantic_extra__", None)
    object.__setattr__(plan, "__pydantic_private__", None)
    return plan


def _choose_constructor() -> Callable[[dict[str, Any]], FunctionPlan]:
    """`_construct` if it makes what pydantic makes (checked once), else pydantic's own."""
    sample = _plan_fields(module="m", qualname="f", line=1, role="plain", style="none", reason="r")
    try:
        ours, theirs = _construct(dict(sample)), FunctionPlan.model_construct(**sample)
        if ours == theirs and ours.model_dump_json() == theirs.model_dump_json():
            return _construct
    except Exception:  # another pydantic keeps other internals: use its constructor
        pass
    return lambda fields: FunctionPlan.model_construct(**fields)


_constructor = _choose_constructor()


def _plan(**fields: Any) -> FunctionPlan:
    # Built from the analyser's own values, thousands of times per fixpoint pass
    # on a large project: validation, and even model_construct's field-by-field
    # work, would cost a noticeable part of a cold start.
    return _constructor(_plan_fields(**fields))


def _first(calls: list[CallSite], durable: dict[str, str]) -> CallSite | None:
    for call in calls:
        if call.name in durable:
            return call
    return None


def _where(facts: Facts) -> str:
    site = (facts.io or facts.nondeterministic)[0]
    return f"{site.name} at line {site.line}"


def _decide_one(unit: Unit, durable: dict[str, str], forced: dict[str, str]) -> FunctionPlan:
    facts = unit.facts
    base = {
        "module": unit.module,
        "qualname": unit.qualname,
        "line": unit.line,
        "is_async": unit.is_async,
        "is_generator": unit.is_generator,
    }
    notes = [
        f"a lambda at line {c.line} calls {c.name}: lambdas are not wrapped; "
        "make it a named function"
        for c in facts.lambda_io
    ]
    called = _first(facts.calls, durable)
    key = f"{unit.module}:{unit.qualname}"
    if unit.manual:
        return _plan(
            **base,
            role=WORKFLOW if unit.manual == WORKFLOW else STEP,
            root=unit.manual == WORKFLOW,
            style="manual",
            reason=f"decorated with @autodurable.{unit.manual}",
            notes=notes,
        )
    if key in forced:
        return _forced(base, forced[key], facts, notes)
    name = unit.qualname.rpartition(".")[2]
    if name.startswith("__") and name.endswith("__") and name not in _DUNDER_OK:
        return _special(base, name, facts, called, notes)
    if facts.direct:
        role = durable[called.name] if called else None
        return _direct(base, unit, called, role, notes)
    if facts.unresolved and not unit.is_generator:
        return _watched(base, facts, called, durable, notes)
    return _indirect(base, unit, called, durable, notes)


def _special(
    base: dict, name: str, facts: Facts, called: CallSite | None, notes: list[str]
) -> FunctionPlan:
    """The plan of a special method (``__x__``): never wrapped, at most inline."""
    if facts.direct and facts.sites and facts.inline_problem is None:
        # Never wrapped (Python calls it, and its state change is the point), but
        # in workflow code its I/O expressions are recorded where they are.
        return _plan(
            **base,
            role=WORKFLOW,
            style="inline",
            sites=facts.sites,
            notes=notes,
            reason=f"special method that calls {_where(facts)}: not wrapped; "
            "each I/O expression is recorded on its own in workflow code",
        )
    if facts.direct or called:
        notes.append(f"{name} does I/O but special methods are not wrapped")
    return _plan(**base, role=PLAIN, style="none", reason="special method: left as is", notes=notes)


def _indirect(
    base: dict, unit: Unit, called: CallSite | None, durable: dict[str, str], notes: list[str]
) -> FunctionPlan:
    """The plan of a function without I/O of its own: workflow if it calls a step, else plain."""
    facts = unit.facts
    if facts.unresolved:
        untyped = facts.unresolved[0]
        notes.append(
            f"a generator calling {untyped.name} at line {untyped.line}, which the analyser "
            "cannot type: a generator cannot be watched, so that call runs again on replay; "
            "return a list, or make it a step"
        )
    if called is not None:
        reason = f"calls {durable[called.name]} {called.name[1:]} at line {called.line}"
        if unit.is_generator:
            return _plan(
                **base,
                role=WORKFLOW,
                style="inline",
                sites=facts.sites,
                reason=f"generator that {reason}: runs inside its caller's workflow",
                notes=notes,
            )
        return _plan(
            **base, role=WORKFLOW, style="decorate", sites=facts.sites, reason=reason, notes=notes
        )
    return _plan(
        **base, role=PLAIN, style="none", reason="no I/O and no calls to steps", notes=notes
    )


def _direct(
    base: dict, unit: Unit, called: CallSite | None, role: str | None, notes: list[str]
) -> FunctionPlan:
    facts = unit.facts
    where = _where(facts)
    if facts.returns_handle:
        return _plan(
            **base,
            role=PLAIN,
            style="none",
            notes=notes,
            reason=f"returns a live {facts.returns_handle.name} handle at line "
            f"{facts.returns_handle.line}, which cannot be recorded: it runs again on resume",
        )
    inline_reason = (
        f"calls {where} and the {role} {called.name[1:]} at line {called.line}"
        if called
        else f"calls {where} inside a loop"
        if facts.io_in_loop
        else f"changes state ({unit.mutates_state}) and calls {where}"
        if unit.mutates_state
        else None
    )
    if inline_reason is None and not unit.is_generator:
        return _plan(**base, role=STEP, style="decorate", reason=f"calls {where}", notes=notes)
    untyped = facts.unresolved[0] if facts.unresolved else None
    if untyped is not None and inline_reason is not None and not unit.mutates_state:
        # Inline, the untyped call would run again on every replay: never half-durable.
        return _plan(
            **base,
            role=STEP,
            style="coarse",
            notes=notes,
            reason=f"{inline_reason}, and {untyped.name} at line {untyped.line}, which the "
            "analyser cannot type: the whole function is one step, so that call is not "
            "run again on replay",
        )
    if untyped is not None:
        notes.append(
            f"{untyped.name} at line {untyped.line} cannot be typed and may be I/O: "
            "it runs again on replay"
        )
    if facts.inline_problem is None:
        reason = (inline_reason or f"generator that calls {where}") + (
            ": each I/O expression is recorded on its own"
        )
        return _plan(
            **base, role=WORKFLOW, style="inline", sites=facts.sites, reason=reason, notes=notes
        )
    if unit.is_generator or unit.mutates_state:
        problem = facts.inline_problem
        return _plan(
            **base,
            role=PLAIN,
            style="unsafe",
            notes=notes,
            reason=f"{inline_reason or 'generator that calls ' + where}, but "
            f"{problem}: left unchanged; split the I/O into a function of its own",
        )
    return _plan(
        **base,
        role=STEP,
        style="coarse",
        notes=notes,
        reason=f"{inline_reason}, but {facts.inline_problem}: the whole function "
        "is one step (a crash inside it runs it again from the start); split it "
        "for finer recovery",
    )


def _watched(
    base: dict, facts: Facts, called: CallSite | None, durable: dict[str, str], notes: list[str]
) -> FunctionPlan:
    untyped = facts.unresolved[0]
    reason = f"calls {untyped.name} at line {untyped.line}, which the analyser cannot type"
    if called is not None:
        reason += f", and the {durable[called.name]} {called.name[1:]} at line {called.line}"
    reason += (
        ": watched; in workflow code a call that does I/O is recorded as a step, "
        "one that does none records nothing"
    )
    return _plan(**base, role=STEP, style="watched", reason=reason, notes=notes)


def _forced(base: dict, role: str, facts: Facts, notes: list[str]) -> FunctionPlan:
    reason = "set in [tool.autodurable.roles]"
    root = role == WORKFLOW
    if root:
        reason += ": a durable root (called from plain code, it starts a workflow)"
    if root and facts.direct and facts.inline_problem is None:
        return _plan(
            **base,
            role=role,
            root=True,
            style="inline",
            sites=facts.sites,
            reason=reason,
            notes=notes,
        )
    sites = facts.sites if root else []
    style = "none" if role == PLAIN else "decorate"
    return _plan(**base, role=role, root=root, style=style, sites=sites, reason=reason, notes=notes)
