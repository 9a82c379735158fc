"""``autodurable ui``: serve the local web dashboard (see autodurable._ui).

Invariants: the address defaults to 127.0.0.1; any other needs a token
(``--token`` or ``AUTODURABLE_UI_TOKEN``) and is refused without one before
anything is opened; like every reading command, it never creates a state
database (exit 1 when there is none where it is looked for).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import AutodurableError


def add_ui_parser(commands: Any) -> None:
    """Add ``autodurable ui`` to the command line's subcommands."""
    ui = commands.add_parser(
        "ui",
        help="serve a local web dashboard of the workflows (pip install 'autodurable[ui]')",
        description="Serve a web dashboard: workflows with filters and live updates, each "
        "workflow's timeline, values, errors and messages, and actions (cancel, resume, fork, "
        "send) behind a confirmation. Listens on 127.0.0.1 unless told otherwise; any other "
        "address needs a token.",
    )
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    ui.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    ui.add_argument(
        "--read-only", action="store_true", help="show everything, offer and accept no action"
    )
    ui.add_argument(
        "--token",
        help="require this token on every request (default: AUTODURABLE_UI_TOKEN); required "
        "when --host is not a loopback address",
    )
    ui.add_argument(
        "--redact",
        default="",
        metavar="FIELDS",
        help="comma list of field names (globs) whose values are never shown, e.g. "
        "password,*token* (added to [tool.autodurable.ui] redact)",
    )
    ui.add_argument(
        "--max-value-chars",
        type=int,
        default=20_000,
        metavar="N",
        help="cut longer values, with a note (default: %(default)s)",
    )
    ui.add_argument(
        "--refresh",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between live updates; 0 turns them off (default: %(default)s)",
    )
    ui.add_argument(
        "--database-url",
        dest="ui_database_url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="state database (as the global --database-url)",
    )


def main_ui(args: argparse.Namespace) -> int:
    """Run ``autodurable ui``; returns the exit code."""
    from .._core._runtime import configure, get_runtime
    from .._ui._options import (
        UiOptions,
        check_binding,
        configured_redaction,
        split_patterns,
        token_from,
    )
    from ._workflows import missing_state

    token = token_from(args.token)
    check_binding(args.host, token)
    if args.max_value_chars < 100 or args.refresh < 0 or not 0 < args.port < 65536:
        raise AutodurableError(
            "--max-value-chars takes 100 or more, --refresh 0 or more seconds, --port 1 to 65535"
        )
    url = getattr(args, "ui_database_url", None)
    if url:
        configure(database_url=url)
    problem = missing_state()
    if problem is not None:
        print(f"autodurable: {problem}", file=sys.stderr)
        return 1
    runtime = get_runtime()
    options = UiOptions(
        host=args.host,
        port=args.port,
        read_only=args.read_only,
        token=token,
        redact=tuple(dict.fromkeys(configured_redaction() + split_patterns(args.redact))),
        max_value_chars=args.max_value_chars,
        refresh=args.refresh,
        where=str(runtime.location),
    )
    from .._ui._app import create_app, serve

    create_app(options)  # fails before printing when Starlette is missing
    shown = f"[{args.host}]" if ":" in args.host else args.host
    address = f"http://{shown}:{args.port}/"
    print(f"autodurable ui: {address} (state in {runtime.location})", file=sys.stderr)
    if token:
        print(f"autodurable ui: open {address}?token=... with the token once", file=sys.stderr)
    if args.read_only:
        print("autodurable ui: read-only: no action is offered or accepted", file=sys.stderr)
    serve(options)
    return 0
