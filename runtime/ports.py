"""The seams between actors, declared once. Actors depend on these, never on Ray handles:
`cluster/` implements them with Ray proxies, tests with in-process objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from omoi.runtime.events import Event
from omoi.runtime.execution import TaskRequest, TaskResult


class BusPort(Protocol):
    async def publish(self, events: Sequence[Event]) -> list[int]:
        """Durably append, then deliver; returns each event's seq. Idempotent by event id."""
        ...

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        """Events with seq > after matching the prefixes, waiting up to `timeout` s for the first one."""
        ...


class ExecutorPort(Protocol):
    """How the graph reaches sandboxes: by slot name, so a restarted graph can find them again."""

    def sandbox_name(self, slot: int) -> str: ...

    async def execute(self, sandbox: str, request: TaskRequest) -> TaskResult:
        """Run the attempt (or join it if that sandbox already runs it); SandboxLostError if it died."""
        ...

    async def reattach(self, sandbox: str, task_id: str, attempt: int) -> TaskResult:
        """Wait for an attempt started before a restart; SandboxLostError if that sandbox lost it."""
        ...

    async def cancel(self, sandbox: str, task_id: str, attempt: int) -> None: ...


class IntegratorPort(Protocol):
    async def integrate(self, run_id: str, base: str, branches: Sequence[str]) -> str:
        """Merge the task branches in order onto `base` as branch `omoi/<run-id>`; returns its head."""
        ...
