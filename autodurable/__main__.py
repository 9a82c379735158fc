"""``python -m autodurable``: the command-line interface."""

from ._cli._main import main

raise SystemExit(main())
