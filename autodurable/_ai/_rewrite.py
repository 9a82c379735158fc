"""The rewrite loop: ask for a plan, verify it, send the problems back, a bounded number of times.

For each module: build its context, ask the model, parse the reply as a plan,
apply it (`_apply.apply_plan`, which verifies), and either accept it or send
the exact problems back and ask again, at most `max_rounds` times.

Invariants:
- Only a verified candidate is ever accepted; a module whose rounds run out,
  or whose endpoint fails, keeps its text.
- Nothing is written here except by `write_checked`, which writes a file only
  if its new text parses and the file still holds what was read, atomically.
- Accepted modules replace their text in the in-memory project, so the
  modules rewritten after them are analysed against their new roles.
- Results are values (`ModuleOutcome`), never exceptions.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ._apply import Candidate, apply_plan
from ._context import feedback, module_context, system_message, undecided
from ._project import Project
from ._schema import PlanError, RewritePlan, parse_plan
from ._verify import verify

ACCEPTED, UNCHANGED, SKIPPED = "accepted", "unchanged", "skipped"
GAVE_UP, REJECTED, FAILED = "gave up", "rejected", "failed"  # the module keeps its text

Ask = Callable[[list[dict[str, str]]], str]
Report = Callable[[str], None]


@dataclass
class ModuleOutcome:
    """What happened to one module."""

    module: str
    path: str
    status: str
    reason: str = ""
    rounds: int = 0
    plan: RewritePlan | None = None
    candidate: Candidate | None = None
    rejected: list[list[str]] = field(default_factory=list)  # problems, per rejected round
    written: bool = False

    @property
    def changed(self) -> bool:
        """Whether there is a new text to show (and, with --write, to write)."""
        c = self.candidate
        return self.status == ACCEPTED and c is not None and c.text not in (None, c.original)


def messages_for(project: Project, module: str) -> list[dict[str, str]] | None:
    """The first two messages for `module` (system, user), or None if it cannot be analysed."""
    plan, _ = project.plan(module)
    if plan is None:
        return None
    text = project.texts[module]
    places = undecided(text, plan, set(project.paths))
    problems = verify(project, module, text)
    context = module_context(module, _shown(project.paths[module]), text, plan, places, problems)
    return [
        {"role": "system", "content": system_message()},
        {"role": "user", "content": context},
    ]


def rewrite_module(
    project: Project,
    module: str,
    *,
    ask: Ask | None = None,
    plan: RewritePlan | None = None,
    max_rounds: int = 3,
    report: Report | None = None,
) -> ModuleOutcome:
    """Rewrite one module with a model (`ask`) or with a given `plan`."""
    say = report or (lambda message: None)
    path = project.paths[module]
    outcome = ModuleOutcome(module, path, SKIPPED)
    analysed, why = project.plan(module)
    if analysed is None:
        outcome.status, outcome.reason = FAILED, why or "cannot be analysed"
        return outcome
    if analysed.opted_out:
        outcome.reason = "opted out (autodurable: off in its docstring)"
        return outcome
    if not analysed.functions:
        outcome.reason = "no functions"
        return outcome
    text = project.texts[module]
    places = undecided(text, analysed, set(project.paths))
    interesting = places or any(
        f.role != "plain" or f.notes or f.style != "none" for f in analysed.functions
    )
    if plan is None and not interesting:
        outcome.reason = "nothing to decide: no I/O, no steps, no undecided calls"
        return outcome
    if plan is not None:
        _settle(outcome, project, plan, 0)
        if outcome.status == GAVE_UP:
            outcome.status = REJECTED  # a given plan has no rounds to give up on
        return outcome
    assert ask is not None, "rewrite_module needs a model (ask) or a plan"
    messages = messages_for(project, module) or []
    for round_number in range(1, max_rounds + 1):
        outcome.rounds = round_number
        say(f"{_shown(path)}: asking the model (round {round_number} of {max_rounds})")
        try:
            reply = ask(messages)
        except Exception as exc:  # ChatError, or anything a custom `ask` raises
            outcome.status, outcome.reason = FAILED, str(exc)
            return outcome
        try:
            proposed = parse_plan(reply)
        except PlanError as exc:
            problems = exc.problems
        else:
            _settle(outcome, project, proposed, round_number)
            if outcome.status != GAVE_UP:
                return outcome
            problems = outcome.rejected.pop()
        outcome.rejected.append(problems)
        say(f"{_shown(path)}: round {round_number}: plan rejected: " + "; ".join(problems))
        messages = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": feedback(problems)},
        ]
    outcome.status = GAVE_UP
    outcome.reason = (
        f"no verified plan after {max_rounds} round(s); the last problems: "
        + "; ".join(outcome.rejected[-1] if outcome.rejected else [])
    )
    outcome.candidate = None
    return outcome


def _settle(
    outcome: ModuleOutcome, project: Project, plan: RewritePlan, round_number: int
) -> ModuleOutcome:
    """Apply `plan`; accept the candidate if it verifies, else record why not."""
    outcome.plan, outcome.rounds = plan, round_number
    try:
        candidate = apply_plan(project, outcome.module, plan)
    except Exception as exc:  # a defect of ours, not of the plan: say so, keep the module as is
        outcome.status = FAILED
        outcome.reason = f"could not apply the plan: {type(exc).__name__}: {exc}"
        return outcome
    if not candidate.ok:
        outcome.rejected.append(candidate.problems)
        outcome.status = GAVE_UP
        outcome.reason = "the plan was rejected: " + "; ".join(candidate.problems)
        return outcome
    outcome.candidate = candidate
    outcome.status = ACCEPTED if candidate.text != candidate.original else UNCHANGED
    outcome.reason = ""
    if outcome.status == ACCEPTED:
        assert candidate.text is not None
        project.set_text(outcome.module, candidate.text)
    return outcome


def write_checked(path: str, original: str, new: str) -> str | None:
    """Write `new` over `path` if it parses and the file still holds `original`; None or why not."""
    from ..codemods._run import write_file

    try:
        ast.parse(new, filename=path)
    except SyntaxError as exc:  # the last barrier: never write a file that does not parse
        return f"not written: the new text would not parse ({exc.msg}, line {exc.lineno})"
    return write_file(path, original, new)


def render_outcome(outcome: ModuleOutcome, *, written: bool) -> str:
    """What happened to one module, and every change with who made it and why."""
    shown = _shown(outcome.path)
    if outcome.status in (SKIPPED, FAILED, GAVE_UP, REJECTED):
        return f"{shown}: {outcome.status}: {outcome.reason}"
    rounds = f"round {outcome.rounds}" if outcome.rounds else "plan from a file"
    verdict = "verified"
    if outcome.status == UNCHANGED:
        already = outcome.candidate is not None and outcome.candidate.status == "already applied"
        verdict = "verified: already applied, nothing changed" if already else "verified, no change"
    lines = [f"{shown}: the plan was {verdict} ({rounds})"]
    if outcome.plan is not None and outcome.plan.summary:
        lines.append(f"  summary: {outcome.plan.summary}")
    candidate = outcome.candidate
    if candidate is not None:
        model = [c for c in candidate.changes if c.by == "model"]
        analyser = [c for c in candidate.changes if c.by == "analyser"]
        if model:
            lines.append("  changed by the model:")
            lines += [f"    {c.function}: {c.what}: {c.reason}" for c in model]
        if analyser:
            lines.append("  decided by the analyser:")
            lines += [f"    {c.function}: {c.what}: {c.reason}" for c in analyser]
        lines += [f"  note: {advice}" for advice in candidate.advice]
        lines += [f"  already in the module: {warning}" for warning in candidate.warnings]
        lines += [f"  already applied: {entry}" for entry in candidate.already]
    if outcome.rejected:
        lines.append(f"  rejected before: {len(outcome.rejected)} plan(s), problems sent back")
    if outcome.changed:
        lines.append(f"  {'written' if outcome.written else 'not written'}")
    return "\n".join(lines)


def render_summary(outcomes: list[ModuleOutcome], *, written: bool) -> str:
    """The last line: how many modules changed, stayed, were skipped, were given up on."""
    changed = sum(o.changed for o in outcomes)
    same = sum(o.status in (ACCEPTED, UNCHANGED) and not o.changed for o in outcomes)
    parts = [f"{changed} module(s) {'written' if written else 'would change'}", f"{same} unchanged"]
    for status in (SKIPPED, GAVE_UP, REJECTED, FAILED):
        n = sum(o.status == status for o in outcomes)
        if n or status in (SKIPPED, FAILED):
            parts.append(f"{n} {status}")
    line = "autodurable ai rewrite: " + ", ".join(parts)
    if changed and not written:
        line += " (nothing written: --write applies the changes)"
    return line


def _shown(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
