"""The two libcst transformers of the AI path: keyword arguments on calls, options on steps.

Everything else the rewrite writes is written by the codemod
(`autodurable.codemods.make_durable`); these add what its plan cannot express yet.

Invariants:
- Only the nodes named change; formatting elsewhere is kept byte for byte.
- Calls are found by the analyser's positions (line, UTF-8 byte column of
  the callee's start), converted from libcst's character columns.
- A keyword or option that is already there is never overwritten: it is
  reported instead (hand-written choices win).
"""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.metadata import PositionProvider


def _byte_column(line: str, char_column: int) -> int:
    return len(line[:char_column].encode("utf-8"))


class AddKeywords(cst.CSTTransformer):
    """Add ``keyword=<expression>`` to the calls at the given positions."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, code: str, targets: dict[tuple[int, int], str], expression: str) -> None:
        super().__init__()
        self.lines = code.splitlines()
        self.missing = dict(targets)  # what is left to find
        self.value = cst.parse_expression(expression)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        where = self.get_metadata(PositionProvider, original_node, None)
        if where is None:
            return updated_node
        line = where.start.line
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        keyword = self.missing.pop((line, _byte_column(text, where.start.column)), None)
        if keyword is None:
            return updated_node
        return updated_node.with_changes(args=_appended(updated_node, keyword, self.value))


def _appended(call: cst.Call, keyword: str, value: cst.BaseExpression) -> list[cst.Arg]:
    """The call's arguments and one more, laid out as the last one is (one line or many)."""
    args = list(call.args)
    new = cst.Arg(
        value=value,
        keyword=cst.Name(keyword),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    if not args:
        return [new]
    last = args[-1]
    if isinstance(last.comma, cst.Comma):
        # A trailing comma (often one argument per line): the new argument takes
        # the last one's place in the layout, and the last one gets a separator
        # like the others'.
        separator = (
            args[-2].comma
            if len(args) > 1 and isinstance(args[-2].comma, cst.Comma)
            else (cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        )
        args[-1] = last.with_changes(comma=separator)
        new = new.with_changes(comma=last.comma)
    return [*args, new]


class AddOptions(cst.CSTTransformer):
    """Add options (``retries=3``) to the ``@autodurable.step`` decorators of functions."""

    def __init__(self, wanted: dict[str, dict[str, str]], names: dict[str, str]) -> None:
        super().__init__()
        self.wanted = wanted  # qualname -> option -> value as source text
        self.names = names  # autodurable names bound at the top level (`autodurable_names`)
        self.qualname: list[str] = []
        self.done: set[str] = set()
        self.same: list[str] = []  # functions whose decorator sets these very options already
        self.problems: list[str] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.qualname.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> Any:
        self.qualname.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.qualname += [node.name.value, "<locals>"]

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> Any:
        del self.qualname[-2:]
        qualname = ".".join([*self.qualname, updated_node.name.value])
        options = self.wanted.get(qualname)
        if options is None or qualname in self.done:
            return updated_node
        decorators = list(updated_node.decorators)
        for index, decorator in enumerate(decorators):
            expression = decorator.decorator
            target = expression.func if isinstance(expression, cst.Call) else expression
            if self._dotted(target) != "autodurable.step":
                continue
            present = (
                {a.keyword.value for a in expression.args if a.keyword is not None}
                if isinstance(expression, cst.Call)
                else set()
            )
            clash = sorted(present & set(options))
            given = {
                a.keyword.value: cst.Module([]).code_for_node(a.value)
                for a in (expression.args if isinstance(expression, cst.Call) else ())
                if a.keyword is not None
            }
            if clash and all(given.get(name) == value for name, value in options.items()):
                self.done.add(qualname)  # already applied: these very options
                self.same.append(qualname)
                return updated_node
            if clash:
                self.problems.append(
                    f"options for {qualname}: its decorator already sets {', '.join(clash)}; "
                    "the rewrite does not change options written by hand"
                )
                return updated_node
            added = [
                cst.Arg(
                    value=cst.parse_expression(value),
                    keyword=cst.Name(name),
                    equal=cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""),
                        whitespace_after=cst.SimpleWhitespace(""),
                    ),
                )
                for name, value in options.items()
            ]
            call = expression if isinstance(expression, cst.Call) else cst.Call(func=expression)
            decorators[index] = decorator.with_changes(
                decorator=call.with_changes(args=[*call.args, *added])
            )
            self.done.add(qualname)
            return updated_node.with_changes(decorators=decorators)
        return updated_node

    def _dotted(self, expression: cst.BaseExpression) -> str | None:
        parts: list[str] = []
        while isinstance(expression, cst.Attribute):
            parts.append(expression.attr.value)
            expression = expression.value
        if not isinstance(expression, cst.Name) or expression.value not in self.names:
            return None
        return ".".join([self.names[expression.value], *reversed(parts)])
