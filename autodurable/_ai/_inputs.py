"""Workflow inputs that cannot be recorded: a client or a request passed to a workflow.

A workflow records its inputs before its body runs; one whose inputs the codec
cannot encode (an HTTP session, a database connection, a request object) is
not durable: it runs unrecorded (``unrecordable="rerun"``, what the codemod
writes) or fails (the decorator's default), and either way fails at its first
``autodurable.idempotency_key()``. So the verifier refuses a workflow (a root:
a function carrying the workflow decorator) with such a parameter, and says how
to pass the client differently.

A parameter is taken for a client when:
- its annotation names a type the I/O catalogue knows as a client or a live
  handle (``requests.Session``, ``httpx.Client``, ``sqlite3.Connection`` ...),
  or a framework's request or connection object (`_NOT_DATA`);
- unannotated, the workflow calls a method on it that `_unresolved` takes for
  possible I/O (an I/O verb, or a receiver named like a client), or hands it to
  a function of the module that does so with it (followed a few calls deep).

Invariants:
- Pure and syntactic: names, annotations and the module's own calls; nothing
  runs. Errs towards silence: a parameter is flagged only on that evidence.
- Every message names the workflow, the parameter, why it is a client, and the
  three ways out (create it inside, pass its configuration, make it a step).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .._analysis._catalogue import IO, default_catalogue
from .._analysis._params import parameters, receiver
from .._analysis._unresolved import suspicious
from ._source import Function, own_calls

# Objects of web frameworks handed to handlers: live connections, never data.
_NOT_DATA = frozenset(
    {
        "fastapi.Request",
        "fastapi.WebSocket",
        "fastapi.requests.Request",
        "starlette.requests.Request",
        "starlette.websockets.WebSocket",
        "flask.Request",
        "werkzeug.wrappers.Request",
        "django.http.HttpRequest",
        "aiohttp.web.Request",
    }
)
_DEPTH = 3  # how many calls deep a parameter is followed


@dataclass(frozen=True)
class ClientInput:
    """A parameter of a workflow that holds a client, and the evidence."""

    workflow: str
    parameter: str
    why: str  # "a requests.Session", "used as a client: client.charge at line 5"

    def message(self) -> str:
        """The problem, in words a model (or a person) can act on."""
        return (
            f"{self.workflow} is a workflow, but its parameter `{self.parameter}` is "
            f"{self.why}, which cannot be recorded as a workflow input: the workflow would "
            "run unrecorded and fail at its first autodurable.idempotency_key(); create the "
            f"client inside the workflow or a step, pass its configuration instead (a URL, "
            f"a name), or make {self.workflow} a step"
        )


def client_inputs(
    tree: ast.Module, functions: dict[str, Function], workflows: list[str]
) -> list[ClientInput]:
    """The client parameters of the functions named in `workflows` (qualnames)."""
    imports = _imports(tree)
    found: list[ClientInput] = []
    for qualname in workflows:
        function = functions.get(qualname)
        if function is None:
            continue
        for arg in parameters(function.node):
            if arg.arg in ("self", "cls"):
                continue
            why = (
                _client_type(arg.annotation, imports)
                if arg.annotation is not None
                else _client_use(function, arg.arg, functions, _DEPTH)
            )
            if why is not None:
                found.append(ClientInput(qualname, arg.arg, why))
    return found


def _client_type(annotation: ast.expr, imports: dict[str, str]) -> str | None:
    """ "a requests.Session" when the annotation names a client type, else None."""
    catalogue = default_catalogue()
    for name in _annotation_names(annotation):
        head, _, rest = name.partition(".")
        full = imports.get(head, head) + (f".{rest}" if rest else "")
        if (
            full in _NOT_DATA
            or full in catalogue.constructors
            or full in catalogue.handles
            or catalogue.kind(full) == IO
        ):
            return f"a {full}"
    return None


def _annotation_names(node: ast.expr) -> list[str]:
    """The dotted names an annotation mentions (``Optional[httpx.Client]``, ``"Session"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return []
    names: list[str] = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute | ast.Name):
            parts: list[str] = []
            current: ast.expr = inner
            while isinstance(current, ast.Attribute):
                parts.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name):
                names.append(".".join([current.id, *reversed(parts)]))
    return names


def _client_use(
    function: Function, parameter: str, functions: dict[str, Function], depth: int
) -> str | None:
    """How `function` uses `parameter` as a client, or None if it does not visibly."""
    for call in own_calls(function.node):
        if receiver(call) == parameter and suspicious(call):
            return f"used as a client ({ast.unparse(call.func)} at line {call.lineno})"
    if depth <= 1:
        return None
    for call in own_calls(function.node):
        if not isinstance(call.func, ast.Name) or call.func.id not in functions:
            continue
        callee = functions[call.func.id]
        for name in _receiving(call, callee, parameter):
            used = _client_use(callee, name, functions, depth - 1)
            if used is not None:
                return f"passed to {callee.qualname} at line {call.lineno}, {used}"
    return None


def _receiving(call: ast.Call, callee: Function, parameter: str) -> list[str]:
    """The parameters of `callee` that receive `parameter` in `call`."""
    names = [a.arg for a in parameters(callee.node)]
    out: list[str] = []
    for position, value in enumerate(call.args):
        if isinstance(value, ast.Name) and value.id == parameter and position < len(names):
            out.append(names[position])
    for keyword in call.keywords:
        if isinstance(keyword.value, ast.Name) and keyword.value.id == parameter and keyword.arg:
            out.append(keyword.arg)
    return out


def _imports(tree: ast.Module) -> dict[str, str]:
    """Top-level import bindings: bound name -> dotted name."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    head = alias.name.partition(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out
