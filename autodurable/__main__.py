"""``python -m autodurable``: the command-line interface."""

from ._cli._main import console_main

raise SystemExit(console_main())
