"""Which APIs a step calls: what limits declared on APIs (``[tool.autodurable.limits]``)
are matched against.

A step's APIs are the catalogue names of the I/O its body calls and, through
the project functions it calls, theirs (a step called inside a step runs
inside it, so its calls are the outer step's too). For a site of inline
workflow code (``run_step("crawl:requests.get", lambda: ...)``) they are the
site's own.

Invariants:
- Pure over a `ProjectPlan`: reads no source and runs nothing; the plan comes
  from the import hook when it runs (its plan of the project, already made)
  or, for a program started without it, from one analysis of the project the
  first time a limited step needs it.
- Expansion through project functions is transitive and stops at cycles.
"""

from __future__ import annotations

import difflib
import sys
import threading
from collections.abc import Callable, Iterable

from .._core._limits import key_matches, key_prefix
from ._catalogue import IO, default_catalogue
from ._plan import ModulePlan
from ._project import ProjectPlan, analyse_project

__all__ = [
    "PlanApis",
    "configured_unmatched_keys",
    "expand",
    "project_step_apis",
    "step_apis",
    "unmatched_keys",
]


def expand(plan: ProjectPlan, names: Iterable[str]) -> tuple[str, ...]:
    """The API names in `names`, with each ``"@module:qualname"`` replaced by its
    dotted name (``module.qualname``: a limit may name a project function) and
    the APIs of that function (transitively); each once, in order of first
    appearance."""
    found: dict[str, None] = {}
    seen: set[str] = set()
    stack = list(reversed(list(names)))
    while stack:
        name = stack.pop()
        if not name.startswith("@"):
            found.setdefault(name, None)
            continue
        if name in seen:
            continue
        seen.add(name)
        found.setdefault(name[1:].replace(":", "."), None)  # a project function is an API too
        function = plan.function(name[1:])
        if function is not None:
            stack.extend(reversed(function.apis))
    return tuple(found)


def step_apis(plan: ProjectPlan, module: str, qualname: str, step_name: str) -> tuple[str, ...]:
    """The APIs the step `step_name`, run by the function `module:qualname`, calls.

    A step function is found by its own name; the thunk of an inline site (a
    lambda or block in workflow code) by the site's step name among its module's
    sites, or among every module's when the thunk is wrapped by a helper of
    `autodurable.inline` (awaited sites). () when the plan knows neither.
    """
    module_plan = plan.modules.get(module) or _by_file(plan, module)
    if module_plan is not None:
        function = module_plan.get(qualname)
        if function is not None and "<lambda>" not in qualname:
            return expand(plan, function.apis)
        modules = [module_plan]
    else:
        modules = list(plan.modules.values())
    names = [
        api
        for candidate_module in modules
        for candidate in candidate_module.functions
        for site in candidate.sites
        if site.name == step_name
        for api in site.apis
    ]
    return expand(plan, names)


def _by_file(plan: ProjectPlan, module: str) -> ModulePlan | None:
    """The plan of an imported module found by its file (a script runs as ``__main__``)."""
    path = getattr(sys.modules.get(module), "__file__", None)
    return plan.for_path(path) if path else None


def unmatched_keys(
    keys: Iterable[str], extra_io: Iterable[str] = (), plan: ProjectPlan | None = None
) -> list[str]:
    """One message per limit key that matches no API the catalogue knows (with the
    project's own ``io`` entries) and no function of the project, naming the closest."""
    catalogue = default_catalogue().with_io(tuple(extra_io))
    known = sorted(name for name, kind in catalogue.kinds.items() if kind == IO)
    if plan is not None:
        known += [
            f"{module.module}.{function.qualname}"
            for module in plan.modules.values()
            for function in module.functions
        ]
    messages = []
    for key in keys:
        # The key is an entry or under one ("stripe.Charge.create"), or above some ("openai.*").
        if catalogue.kind(key_prefix(key)) == IO or any(key_matches(key, n) for n in known):
            continue
        closest = difflib.get_close_matches(key_prefix(key), known, n=3, cutoff=0.6)
        hint = f"; the closest are {', '.join(closest)}" if closest else ""
        messages.append(
            f"autodurable: the limit {key!r} in [tool.autodurable.limits] matches no API in "
            f"the catalogue and no function of the project, so no step waits for it{hint} "
            "(keys are dotted names such as 'openai.*' or 'stripe.Charge.create'; declare "
            "more I/O with io = [...])"
        )
    return messages


class PlanApis:
    """The resolver the limiter asks: `step_apis` over a plan obtained once, on demand.

    `plan` gives the plan (the hook's, or a fresh analysis of the project). A
    plan that cannot be made (an unreadable project) leaves every step unlimited,
    and says so once.
    """

    def __init__(self, plan: Callable[[], ProjectPlan]) -> None:
        self._plan_of = plan
        self._plan: ProjectPlan | None = None
        self._lock = threading.Lock()

    def __call__(self, module: str, qualname: str, step_name: str) -> tuple[str, ...]:
        """The APIs of one step (see `step_apis`)."""
        return step_apis(self.plan, module, qualname, step_name)

    def unmatched(self, keys: list[str]) -> list[str]:
        """`unmatched_keys` against this plan and the running project's ``io`` entries."""
        from .._core._runtime import get_runtime

        return unmatched_keys(keys, get_runtime().settings.io, self.plan)

    @property
    def plan(self) -> ProjectPlan:
        """The plan, made (or fetched) on first use."""
        with self._lock:
            if self._plan is None:
                self._plan = self._plan_of()
            return self._plan


_project_apis: dict[tuple[object, ...], PlanApis] = {}


def _running_project() -> PlanApis:
    """The resolver of the running project (its root and configuration), made once:
    one analysis of the project, for a program started without the hook."""
    from .._core._runtime import get_runtime

    runtime = get_runtime()
    settings = runtime.settings
    key = (str(runtime.root), settings.io, tuple(sorted(settings.roles.items())), settings.exclude)
    found = _project_apis.get(key)
    if found is None:
        root, io, exclude = runtime.root, settings.io, settings.exclude
        roles: dict[str, str] = dict(settings.roles)
        found = _project_apis[key] = PlanApis(
            lambda: analyse_project(root, io=io, roles=roles, exclude=exclude)
        )
    return found


def project_step_apis(module: str, qualname: str, step_name: str) -> tuple[str, ...]:
    """`step_apis` over the running project's plan, made the first time it is asked."""
    return _running_project()(module, qualname, step_name)


def configured_unmatched_keys(keys: list[str]) -> list[str]:
    """`PlanApis.unmatched` over the running project's plan."""
    return _running_project().unmatched(keys)
