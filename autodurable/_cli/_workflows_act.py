"""``autodurable workflows start``, and ``cancel`` / ``resume`` of every workflow a filter
selects; running a workflow here for ``--run``.

Invariants are those of `_workflows` (tables for people, ``--json`` for scripts,
exit codes, errors on one line), and:
- Bad input changes nothing: a name that does not resolve to a workflow, a
  module that does not import, malformed JSON or arguments the function does
  not take are refused (exit 2) before anything is recorded.
- ``start`` records through the control layer's one way of recording a
  workflow (`start`, `start_pending`), never a row of its own making.
- A filter acts on nothing unless ``--all-matching`` (``--yes``) says so; the
  workflows it selects are read first, with the filters of ``list``
  (`workflow_filter`), then acted on one by one, each re-checked by the store,
  and reported one per line (``--dry-run`` lists them and changes nothing).
- Resuming a workflow whose recorded version differs from the code here, which
  executors running this code would leave pending, is refused unless a
  version option says what to do; the message names them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from .._control._info import WorkflowInfo
from .._control._operations import (
    cancel,
    matching_workflows,
    resume,
    start_pending,
    workflow_filter,
    workflow_info,
)
from .._control._registry import find_workflow
from .._core._runtime import get_runtime
from .._errors import AutodurableError, WorkflowCancelled, WorkflowNotFound
from .._store import CANCELLED, FAILED, PENDING
from ._format import emit, table, when
from ._workflows_read import PICKUP, code_version_here, report_outcome

FILTER_FLAGS = "--status, --name, --since, --until, {version}, --error"

# -- running here ---------------------------------------------------------------------------


def import_here() -> None:
    """Put the current folder first on the path, as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_modules(modules: list[str]) -> None:
    """Import the modules named by ``--import`` (the current folder on the path first);
    one that cannot be imported is an `AutodurableError` naming it and the fix."""
    import_here()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise AutodurableError(
                f"cannot import {module!r} ({exc}); run this from the folder that holds it, "
                "or put that folder on PYTHONPATH"
            ) from None


def check_code_here(info: WorkflowInfo) -> Any:
    """The function of a stored workflow, found here; refused with the fix otherwise."""
    try:
        return find_workflow(info.name)
    except LookupError as exc:
        raise AutodurableError(
            f"cannot run {info.workflow_id} here: {exc}. Run this command where its code is "
            "importable, or leave out --run so that an executor with its code picks it up"
        ) from None


def run_and_report(
    args: argparse.Namespace,
    workflow_id: str,
    begin: Callable[[], Any],
    extra: dict[str, Any] | None = None,
) -> int:
    """Wait for the run `begin` starts here, then show how it ended (0 succeeded, else 1)."""
    handle = begin()
    if not args.json:
        print(f"running {workflow_id} here...", file=sys.stderr)
    try:
        handle.result()
    except (Exception, WorkflowCancelled) as exc:
        if isinstance(exc, AutodurableError) and not isinstance(exc, WorkflowNotFound):
            raise
    return report_outcome(args, workflow_info(workflow_id), extra)


# -- start ------------------------------------------------------------------------------------


def _json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AutodurableError(
            f"{what} is not valid JSON ({exc}): {text!r}; write each as JSON, such as 42, "
            "'\"text\"' (a string needs its quotes) or '{\"a\": 1}'; nothing was recorded"
        ) from None


def start_command(args: argparse.Namespace) -> int:
    """``workflows start NAME [ARG...]``: record a workflow for an executor, or run it here."""
    values = [
        _json_value(text, f"argument {number}")
        for number, text in enumerate(args.arguments, start=1)
    ]
    kwargs: dict[str, Any] = {}
    if args.kwargs is not None:
        parsed = _json_value(args.kwargs, "--kwargs")
        if not isinstance(parsed, dict):
            raise AutodurableError(
                f"--kwargs must be a JSON object of keyword arguments, such as "
                f'\'{{"order_id": "o-7"}}\', not {args.kwargs!r}; nothing was recorded'
            )
        kwargs = parsed
    import_here()
    try:
        fn = find_workflow(args.name)
    except LookupError as exc:
        reason = str(exc).split(". Make sure", 1)[0]  # the registry's advice is recover()'s
        raise AutodurableError(
            f"cannot start {args.name!r}: {reason}. Run this command in the project's folder "
            "(or with it on PYTHONPATH); nothing was recorded"
        ) from None
    try:
        inspect.signature(fn).bind(*values, **kwargs)
    except TypeError as exc:
        raise AutodurableError(
            f"{args.name} does not take these arguments: {exc}; nothing was recorded"
        ) from None
    if args.new_id is not None and get_runtime().store.get_workflow(args.new_id) is not None:
        raise AutodurableError(
            f"a workflow with id {args.new_id!r} exists already: choose another --id, or see "
            f"it with autodurable workflows show {args.new_id}; nothing was recorded"
        )
    if args.run:
        from .._control._handle import start
        from .._core._options import options

        target = options(fn, workflow_id=args.new_id) if args.new_id else fn
        handle = start(target, *values, **kwargs)
        return run_and_report(args, handle.workflow_id, lambda: handle)
    info = start_pending(fn, values, kwargs, args.new_id)
    document = {
        "workflow_id": info.workflow_id,
        "name": info.name,
        "status": info.status,
        "app_version": info.app_version,
    }
    text = (
        f"started {info.workflow_id} ({info.name}), pending: {PICKUP}; or run it here: "
        f"autodurable workflows resume {info.workflow_id} --run\n"
        f"follow it: autodurable workflows show {info.workflow_id} --follow"
    )
    emit(args, document, text)
    return 0


# -- versions -------------------------------------------------------------------------------


def other_version(info: WorkflowInfo) -> str | None:
    """The version of the code here when it is known and differs from the recorded one."""
    if info.app_version is None or info.is_program_run:
        return None
    here = code_version_here(info)
    return here if here is not None and here != info.app_version else None


def version_problem(info: WorkflowInfo, args: argparse.Namespace) -> str | None:
    """Why resuming `info` as asked would leave it to nobody here, with the fix; or None.

    Executors running the code here leave a workflow of another recorded version
    pending (``recover`` resumes only its own version), so resuming it without a
    version option would look done and change nothing.
    """
    if args.any_version or args.app_version is not None:
        return None
    here = other_version(info)
    if here is None:
        return None
    workflow_id = info.workflow_id
    if info.status == PENDING:
        return (
            f"workflow {workflow_id!r} is pending already, left for a process running version "
            f"{info.app_version} of its code (the code here is version {here}); run it here "
            f"with this code: autodurable workflows resume {workflow_id} --run"
        )
    return (
        f"workflow {workflow_id!r} was started by version {info.app_version} of its code and "
        f"the code here is version {here}: resumed as it is, executors running this code "
        f"would leave it pending. Resume it with --any-version (any version may run it), "
        f"--version {here}, --version {info.app_version} (for a process running that one) "
        "or --run (run it here); nothing was changed"
    )


# -- acting on what a filter selects --------------------------------------------------------


def has_filters(args: argparse.Namespace) -> bool:
    """Whether any filter of ``list`` was given."""
    chosen = (args.status, args.name, args.since, args.until, args.where_version)
    return any(value is not None for value in (*chosen, args.where_error, args.where_queue))


def selection(args: argparse.Namespace, verb: str) -> list[WorkflowInfo] | None:
    """The workflows a batch command acts on, or None for the one-ID form.

    Refuses (exit 2) an ID with filters, neither, and filters without
    ``--all-matching`` or ``--dry-run``.
    """
    filters = has_filters(args)
    flags = FILTER_FLAGS.format(version="--version" if verb == "cancel" else "--app-version")
    if args.workflow_id is not None:
        if filters or args.all_matching or args.dry_run:
            raise AutodurableError(
                f"{verb} takes a workflow ID or filters ({flags}), not both; nothing was changed"
            )
        return None
    if not filters:
        raise AutodurableError(
            f"{verb} needs a workflow ID, or filters ({flags}) with --all-matching "
            "(--dry-run lists what they select)"
        )
    default = [PENDING] if verb == "cancel" else [FAILED, CANCELLED]
    where = workflow_filter(
        args.status or default,
        args.name,
        since=args.since,
        until=args.until,
        app_version=args.where_version,
        error_type=args.where_error,
        queue=args.where_queue,
    )
    found = matching_workflows(where)
    if not args.all_matching and not args.dry_run:
        raise AutodurableError(
            f"{len(found)} workflow(s) match these filters: add --all-matching to {verb} "
            f"them all, or --dry-run to list them first; nothing was changed"
        )
    return found


def _dry_run(args: argparse.Namespace, found: list[WorkflowInfo], verb: str) -> int:
    rows = [
        [info.workflow_id, info.name, info.status, when(info.created_at), info.app_version or "-"]
        for info in found
    ]
    text = f"would {verb} {len(found)} workflow(s)" + ("; nothing was changed" if rows else "")
    if rows:
        text += ":\n" + table(["ID", "NAME", "STATUS", "STARTED", "VERSION"], rows)
    ids = [info.workflow_id for info in found]
    emit(args, {"dry_run": True, "matched": ids, "results": []}, text)
    return 0


def batch_cancel(args: argparse.Namespace, found: list[WorkflowInfo], reason: str) -> int:
    """Cancel every workflow selected; one line (one JSON result) per workflow."""
    if args.dry_run:
        return _dry_run(args, found, "cancel")
    results, lines = [], []
    for info in found:
        try:
            changed, after = cancel(info.workflow_id, reason)
        except WorkflowNotFound:
            results.append({"workflow_id": info.workflow_id, "cancelled": False, "status": None})
            lines.append(f"{info.workflow_id}: deleted meanwhile; nothing was cancelled")
            continue
        results.append(
            {"workflow_id": info.workflow_id, "cancelled": changed, "status": after.status}
        )
        lines.append(
            f"cancelled {info.workflow_id}"
            if changed
            else f"{info.workflow_id} has {after.status} meanwhile; nothing was cancelled"
        )
    done = sum(1 for result in results if result["cancelled"])
    lines.append(
        f"cancelled {done} of {len(found)} matching workflow(s)"
        + (": running ones stop at their next step boundary" if done else "")
    )
    document = {"dry_run": False, "matched": [i.workflow_id for i in found], "results": results}
    emit(args, document, "\n".join(lines))
    return 0 if done == len(found) else 1


def batch_resume(args: argparse.Namespace, found: list[WorkflowInfo]) -> int:
    """Resume every workflow selected (for executors: never ``--run``); one line each."""
    if args.run:
        raise AutodurableError(
            "--run runs one workflow here: give its ID, or leave out --run to resume those "
            "the filters select for executors with their code; nothing was changed"
        )
    if args.dry_run:
        return _dry_run(args, found, "resume")
    results: list[dict[str, Any]] = []
    lines = []
    for info in found:
        result: dict[str, Any] = {"workflow_id": info.workflow_id, "resumed": False}
        problem = version_problem(info, args)
        if problem is None:
            try:
                kept, after = resume(
                    info.workflow_id, app_version=args.app_version, any_version=args.any_version
                )
            except AutodurableError as exc:
                problem = str(exc)
            else:
                result.update(resumed=True, status=after.status, steps_kept=kept)
                result["app_version"] = after.app_version
                lines.append(f"resumed {info.workflow_id}: {kept} recorded step(s) kept")
        if problem is not None:
            result["reason"] = problem
            lines.append(f"not resumed: {problem}")
        results.append(result)
    done = sum(1 for result in results if result["resumed"])
    lines.append(f"resumed {done} of {len(found)} matching workflow(s)")
    if done:
        lines.append(PICKUP[0].upper() + PICKUP[1:])
    document = {"dry_run": False, "matched": [i.workflow_id for i in found], "results": results}
    emit(args, document, "\n".join(lines))
    return 0 if done == len(found) else 1
