"""The ``autodurable`` command line: one module per group of commands.

`_main` parses the arguments and dispatches; `_explain` and `_workflows`
(with `_workflows_args` and `_workflows_read`) hold their commands, `_format`
the shared output helpers (tables, JSON, durations); ``autodurable codemod``
runs `autodurable.codemods._run`. Nothing below the CLI imports it.
"""

from ._main import console_main, main

__all__ = ["console_main", "main"]
