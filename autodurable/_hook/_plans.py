"""The cached project plan and analysis state of the import hook (see `_cache`).

The plan file holds one line per module, so that an edit's new module plans
replace their lines without the others being decoded:

- line 1: ``{"fingerprint": ..., "root": ..., "errors": ..., "statistics": ...}``;
- then each module's plan as its own JSON document (``ModulePlan``'s JSON, whose
  first field is the module's name).

The analysis state (`_analysis._incremental`) is kept beside it, with the
configuration it was made under and the hash of every source it read.

Invariants:
- A plan file is used only under the fingerprint it was written with. A file
  cut short (every write ends with a newline), or one of whose lines does not
  decode when the whole plan is read, is unusable: the caller analyses the
  project again, never uses a partial plan.
- The state decodes with `marshal` (plain values: nothing imported or run).
- Every cache file is written atomically (`write_atomic`: a temporary file, then
  a rename); a failure to write is never fatal.
"""

from __future__ import annotations

import json
import marshal
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._analysis import ModulePlan, ProjectPlan
    from .._analysis._incremental import Recorded

_PREFIX = b'{"module":"'


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically; give up silently on any error."""
    import tempfile  # here: a warm start writes nothing and need not import it

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".autodurable-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:  # read-only folder, full disk...: not fatal
        import logging

        logging.getLogger("autodurable").debug(
            "autodurable: cannot write the cache %s: %s", path, exc
        )


def write_plan(path: Path, fingerprint: str, plan: ProjectPlan) -> None:
    """Write `plan` under `fingerprint`."""
    header = {
        "fingerprint": fingerprint,
        "root": plan.root,
        "errors": plan.errors,
        "statistics": plan.statistics,
    }
    lines = [json.dumps(header).encode()]
    lines += [module.model_dump_json().encode() for module in plan.modules.values()]
    write_atomic(str(path), b"\n".join(lines) + b"\n")


def read_plan(path: Path, fingerprint: str) -> ProjectPlan | None:
    """The plan written under `fingerprint`, or None."""
    from .._analysis import ModulePlan, ProjectPlan

    found = _lines(path, fingerprint)
    if found is None:
        return None
    header, lines = found
    try:
        modules = [ModulePlan.model_validate_json(line) for line in lines.values()]
        return ProjectPlan(
            root=header["root"],
            modules={module.module: module for module in modules},
            errors=header["errors"],
            statistics=header["statistics"],
        )
    except (ValueError, KeyError, TypeError):
        return None


def replace_modules(
    path: Path,
    fingerprint: str,
    new_fingerprint: str,
    modules: dict[str, ModulePlan],
    statistics: dict[str, int],
) -> dict[str, str] | None:
    """Rewrite the plan written under `fingerprint` with `modules`' plans in place of
    theirs, under `new_fingerprint`; the new plans' JSON by module, or None when
    there is no such plan (nothing is written then)."""
    found = _lines(path, fingerprint)
    if found is None or not modules.keys() <= found[1].keys():
        return None
    header, lines = found
    written = {name: module.model_dump_json() for name, module in modules.items()}
    for name, text in written.items():
        lines[name] = text.encode()
    header = {**header, "fingerprint": new_fingerprint, "statistics": statistics}
    write_atomic(str(path), b"\n".join([json.dumps(header).encode(), *lines.values()]) + b"\n")
    return written


def _lines(path: Path, fingerprint: str) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """The header and each module's line, by module, of the plan under `fingerprint`."""
    try:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            return None  # cut short: every write ends with a newline
        first, *rest = data.splitlines()
        header = json.loads(first)
        if not isinstance(header, dict) or header.get("fingerprint") != fingerprint:
            return None
        lines: dict[str, bytes] = {}
        for line in rest:
            if not line.startswith(_PREFIX):
                return None
            end = line.index(b'"', len(_PREFIX))
            lines[line[len(_PREFIX) : end].decode()] = line
        return header, lines
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def write_index(path: Path, name: str, index: bytes) -> None:
    """Keep the index an analysis of the whole project left, under `name`."""
    write_atomic(str(path), marshal.dumps((name, index)))


def read_index(path: Path, name: str) -> bytes | None:
    """The index kept under `name`, or None."""
    try:
        found, index = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return index if found == name and isinstance(index, bytes) else None


def write_state(
    path: Path, key: tuple[str, str, str], sources: dict[str, str], recorded: Recorded
) -> None:
    """Keep what the analysis recorded besides the index (`Recorded`) under `key`: the
    configuration, the fingerprint of the plan it made and the name of its index;
    with the hash of each source it was made from."""
    values = (recorded.flows, recorded.durable, recorded.statistics)
    write_atomic(str(path), marshal.dumps((*key, sources, *values)))


def read_state(path: Path, config: str, plan: str) -> tuple[str, dict[str, str], Recorded] | None:
    """The index's name, the sources (module -> hash) and the records written with
    `config` for the plan `plan`, or None."""
    from .._analysis._incremental import Recorded

    try:
        found_config, found_plan, index, sources, *values = marshal.loads(path.read_bytes())
        if (found_config, found_plan) != (config, plan) or not isinstance(sources, dict):
            return None
        return str(index), sources, Recorded(*values)
    except (OSError, ValueError, EOFError, TypeError):
        return None
