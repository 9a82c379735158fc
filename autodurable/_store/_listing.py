"""`OperatorStore.list_workflows`, once for every backend: its arguments as a
`WorkflowFilter`, found by the backend's own `find_workflows`."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from ._protocol import WorkflowFilter, WorkflowRecord


class Listing:
    """Mixed into each backend's operations (see `OperatorStore.list_workflows`)."""

    if TYPE_CHECKING:

        def find_workflows(
            self, where: WorkflowFilter, limit: int, offset: int = 0
        ) -> list[WorkflowRecord]: ...

    def list_workflows(
        self,
        status: str | Collection[str] | None = None,
        limit: int = 100,
        name: str | None = None,
        *,
        name_like: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        """Workflows, newest first (then by id), filtered by every argument given."""
        where = WorkflowFilter.listing(status, name, name_like, created_after, created_before)
        return self.find_workflows(where, limit, offset)
