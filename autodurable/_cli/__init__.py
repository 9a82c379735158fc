"""The ``autodurable`` command line: one module per group of commands.

`_main` parses the arguments and dispatches; `_explain`, `_codemod` and
`_workflows` hold their commands, `_format` the shared output helpers (tables,
JSON, durations). Nothing below the CLI imports it.
"""

from ._main import main

__all__ = ["main"]
