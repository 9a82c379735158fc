"""Django's models as a reader follows them: managers, querysets and relations.

- A manager made from the project's queryset class (``objects =
  BookQuerySet.as_manager()``, ``class LoanManager(Manager.from_queryset(LoanQuerySet))``)
  has that class's methods: ``Book.objects.popular()`` calls the project's
  ``BookQuerySet.popular``, which the analyser then reads like any method
  (building a query is pure, evaluating it is I/O).
- A foreign key or one-to-one field (``author = models.ForeignKey(Author, ...)``,
  the model named by its class, or by a string) holds an instance of the related
  model; *reading* it (``book.author``) loads that row, which is I/O.
- The other side of a relation (``related_name="loans"``, else ``loan_set``) and a
  many-to-many field are managers: ``member.loans.filter(...)`` builds a query,
  ``member.loans.count()`` runs one.

Invariants: pure; reads trees and writes only into the `ProjectIndex` it is given
(`class_attrs`, `instance_attrs`, `foreign_keys`); a model named by a string that
the project does not define, or defines twice, is left unknown.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._scope import Scope

_MODELS = "django.db.models."
_TO_ONE = frozenset({f"{_MODELS}ForeignKey()", f"{_MODELS}OneToOneField()"})
_TO_MANY = f"{_MODELS}ManyToManyField()"
MANAGER = f"{_MODELS}Manager()"  # a related manager: the default manager's methods


def manager_class(scope: Scope, call: ast.Call) -> str | None:
    """What ``Q.as_manager()`` (an instance with Q's methods) or
    ``Manager.from_queryset(Q)`` (a class with Q's methods) gives, when Q is a
    queryset class of the project; else None."""
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in ("as_manager", "from_queryset"):
        return None
    callee = scope.resolve(func)
    if callee is None or not callee.startswith(_MODELS):
        return None
    if func.attr == "as_manager":
        queryset = scope.resolve(func.value)
        return f"{queryset}()" if queryset in scope.index.classes else None
    queryset = scope.resolve(call.args[0]) if call.args else None
    return queryset if queryset in scope.index.classes else None


def record_field(
    scope: Scope, model: str, name: str, value: ast.expr, resolved: str | None
) -> str | None:
    """What the field `name` of the project model `model` holds on an instance, for a
    relation (`resolved` is what its value resolves to); records the relation's
    other side. None for any other class attribute."""
    if resolved not in _TO_ONE and resolved != _TO_MANY:
        return None
    assert isinstance(value, ast.Call)
    index = scope.index
    target = _related_model(scope, value.args[0], model) if value.args else None
    related = _keyword(value, "related_name")
    if target is not None and related != "+":  # "+": no way back
        lowered = model.rpartition(":")[2].rpartition(".")[2].lower()
        one_to_one = resolved == f"{_MODELS}OneToOneField()"
        related = related or (lowered if one_to_one else f"{lowered}_set")
        # The other side of a one-to-one field is a row (read lazily), not a manager;
        # left unknown rather than guessed.
        if not one_to_one:
            index.class_attrs.setdefault(target, {}).setdefault(related, MANAGER)
            index.instance_attrs.setdefault(target, {}).setdefault(related, MANAGER)
            index.record_foreign(scope.symbols.module, "related", target, related)
    if resolved == _TO_MANY:
        return MANAGER
    index.foreign_keys.add(f"{model}.{name}")
    index.foreign_key_names.add(name)
    return f"{target}()" if target is not None else None


def reads_related(scope: Scope, node: ast.Attribute) -> str | None:
    """``"app.models:Book.author"`` if `node` reads a foreign key of a project model
    (which loads the related row), else None."""
    index = scope.index
    if node.attr not in index.foreign_key_names:
        return None
    owner = scope.resolve(node.value)
    if owner is None or not owner.endswith("()") or not owner.startswith("@"):
        return None
    seen: set[str] = set()
    stack = [owner[:-2]]
    while stack:  # the field may be declared on an abstract base of the project
        current = stack.pop()
        if current in seen or not current.startswith("@"):
            continue
        seen.add(current)
        if f"{current}.{node.attr}" in index.foreign_keys:
            return f"{current[1:]}.{node.attr}"
        stack += index.bases.get(current, [])
    return None


def _related_model(scope: Scope, node: ast.expr, model: str) -> str | None:
    """The project model a relation points to: a class, ``"Model"``, ``"app.Model"``,
    ``"self"``."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        resolved = scope.resolve(node)
        return resolved if resolved in scope.index.classes else None
    name = node.value.rpartition(".")[2]
    if name == "self":
        return model
    same_module = f"@{scope.symbols.module}:{name}"
    if same_module in scope.index.classes:
        return same_module
    found = [ref for ref in scope.index.classes if ref.endswith(f":{name}")]
    return found[0] if len(found) == 1 else None


def _keyword(call: ast.Call, name: str) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            value = keyword.value.value
            return value if isinstance(value, str) else None
    return None
