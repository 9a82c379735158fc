"""The catalogue of I/O and nondeterministic APIs (data in catalogue.toml).

Invariants:
- Lookups take a dotted name as the caller sees it after import resolution and
  answer by the most specific entry: an entry matches itself and every name
  under it, and a longer matching entry wins over a shorter one.
- The catalogue is data: extending it never needs code (users add names with
  ``[tool.autodurable] io = [...]``).
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

IO = "io"
PURE = "pure"
NONDETERMINISTIC = "nondeterministic"

# Recorded calls the public API has under a name of its own (callee -> attribute
# of autodurable): the codemod writes them so, and the import hook records them
# under the same step names ("autodurable.now"), so that a run started under one
# resumes under the other. `random` and `uuid4` take no arguments there.
PUBLIC_RECORDED = {
    "datetime.datetime.now": "now",
    "random.random": "random",
    "uuid.uuid4": "uuid4",
}
_NO_ARGUMENTS = frozenset({"random", "uuid4"})


def public_recorded(callee: str, has_arguments: bool) -> str | None:
    """The autodurable attribute that records this call, if the public API has one."""
    public = PUBLIC_RECORDED.get(callee)
    if public is None or (has_arguments and public in _NO_ARGUMENTS):
        return None
    return public


def recorded_step_name(callee: str, has_arguments: bool) -> str:
    """The step name a recorded call of `callee` is recorded under."""
    public = public_recorded(callee, has_arguments)
    return callee if public is None else f"autodurable.{public}"


@dataclass(frozen=True)
class Catalogue:
    """Dotted-name prefixes by kind, plus the durable replacements."""

    kinds: dict[str, str]  # name -> IO | PURE | NONDETERMINISTIC
    constructors: frozenset[str]  # exact names of pure client constructors
    handles: frozenset[str]
    durable: dict[str, str]  # name -> "module:attribute" of its replacement
    returns: dict[str, str]  # call -> the type of what it returns
    attributes: dict[str, str]  # attribute of an instance -> its type (``pathlib.Path.parent``)
    paths: frozenset[str]  # instance references that ``/`` keeps (``pathlib.Path()``)
    distributions: dict[str, list[str]]  # distribution name -> import names that differ
    clock_arguments: dict[str, int]  # clock -> positional arguments that make it deterministic
    seeded: dict[str, str]  # generator -> the type of one made with a seed
    lazy: frozenset[str]  # instance references whose iteration is I/O (a queryset)
    # Calls whose context (``with``) or decoration runs in one database transaction,
    # and instance references of connections that are one as a context manager.
    transactions: frozenset[str] = frozenset()

    def kind(self, name: str) -> str | None:
        """IO, PURE, NONDETERMINISTIC or None for a dotted name (most specific entry)."""
        if name in self.constructors:
            return PURE
        probe = name
        while True:
            found = self.kinds.get(probe)
            if found is not None:
                return found
            probe, dot, _ = probe.rpartition(".")
            if not dot:
                return None

    @functools.cached_property
    def types(self) -> frozenset[str]:
        """The names the catalogue knows as types of values (clients, handles, results)."""
        paths = {name[:-2] for name in self.paths}
        return frozenset(
            {*self.constructors, *self.handles, *self.returns.values()}
            | {*self.seeded.values(), *self.attributes.values()}
            | paths
        )

    def call_kind(self, name: str, positional: int, any_arguments: bool) -> str | None:
        """`kind`, for a call with that many positional arguments: a clock given the
        time to show, or a generator given a seed, is deterministic."""
        if any_arguments and name in self.seeded:
            return None
        found = self.kind(name)
        if found == NONDETERMINISTIC and positional >= self.clock_arguments.get(name, 99):
            return None
        return found

    def is_handle(self, name: str) -> bool:
        """Whether a call to `name` returns a live handle that cannot be recorded."""
        return name in self.handles

    def opens_transaction(self, ref: str) -> bool:
        """Whether `ref` (a callee, or an instance reference used as a context manager)
        runs what it wraps in one database transaction."""
        return ref in self.transactions

    def with_io(self, extra: tuple[str, ...]) -> Catalogue:
        """This catalogue with more I/O names (from configuration).

        A name is a dotted import path, or a distribution name (``gitpython``,
        ``confluent-kafka``): every call into the package is then I/O.
        """
        if not extra:
            return self
        names: list[str] = []
        for name in extra:
            key = name.lower().replace("_", "-")
            names += self.distributions.get(key, [name.replace("-", "_")])
        kinds = {**self.kinds, **dict.fromkeys(names, IO)}
        return dataclasses.replace(self, kinds=kinds)


@functools.cache
def default_catalogue() -> Catalogue:
    """The catalogue shipped with autodurable."""
    data = tomllib.loads(
        resources.files("autodurable._analysis").joinpath("catalogue.toml").read_text("utf-8")
    )
    kinds: dict[str, str] = {}
    for kind in (IO, NONDETERMINISTIC, PURE):  # later kinds win for the same name
        kinds.update(dict.fromkeys(data[kind]["names"], kind))
    returns = dict(data["returns"])
    handles = set(data["handles"]["names"])
    handles |= {returns[name] for name in handles if name in returns}  # the handle types too
    return Catalogue(
        kinds,
        frozenset(data["constructors"]["names"]),
        frozenset(handles),
        dict(data["durable"]),
        returns,
        dict(data["attributes"]),
        frozenset(f"{name}()" for name in data["paths"]["names"]),
        {name.lower(): list(found) for name, found in data["distributions"].items()},
        dict(data["clock_arguments"]),
        dict(data["seeded"]),
        frozenset(f"{name}()" for name in data["lazy"]["names"]),
        frozenset(data["transactions"]["calls"])
        | {f"{name}()" for name in data["transactions"]["connections"]},
    )
