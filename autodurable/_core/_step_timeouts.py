"""Step attempts with a timeout: async ones are cancelled, sync ones abandoned.

Invariants:
- An async attempt that exceeds its timeout is cancelled (it really stops).
- A sync attempt runs on a helper thread with the caller's context (so
  `workflow_id()` and `idempotency_key()` work in it); at its timeout it is
  abandoned: the thread cannot be killed and may finish in the background, its
  result never recorded. The call remembers it (`StepCall.abandoned`), so that
  a retry waits for it unless ``overlap=True``, and so does the exit
  (`_abandoned`).
- Permits of limits (`_limits`) taken for a sync attempt are returned by the
  helper thread when the attempt's calls are over, even once abandoned.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._abandoned import abandon

if TYPE_CHECKING:
    from ._limits import Held
    from ._steps import StepCall


async def await_with_timeout(call: StepCall, awaitable: Awaitable[Any]) -> Any:
    """Await `awaitable` within the call's timeout; cancel it and raise past it."""
    import asyncio  # on a loop: imported already (a sync program need not import it)

    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=call.timeout)
    if not done:
        task.cancel()  # async steps are really cancelled, unlike sync ones
        raise call.timed_out()
    return task.result()


def call_with_timeout(
    call: StepCall,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    held: Held | None = None,
) -> Any:
    """Run a sync attempt on a helper thread within the call's timeout; abandon it past it."""
    context = contextvars.copy_context()  # keeps workflow_id() and idempotency_key() working
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def attempt() -> None:
        try:
            outcome["result"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            if held is not None:  # the attempt's calls are over, even if it was abandoned
                held.release()
            finished.set()

    threading.Thread(target=attempt, name=f"autodurable-step-{call.name}", daemon=True).start()
    if not finished.wait(call.timeout):
        call.abandoned = finished  # its result is never recorded; a retry waits for it
        abandon(finished, call.name, call.timeout or 0.0)  # and so does the exit
        raise call.timed_out()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
