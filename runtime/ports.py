"""The seams between actors, declared once. Actors depend on these, never on Ray handles:
`cluster/` implements them with Ray proxies, tests with in-process objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from omoi.runtime.log.events import Event
from omoi.runtime.run.execution import AgentResult, TaskRequest, TaskResult
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.supervision.state import Note


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


class SlotsPort(Protocol):
    """The cluster-wide concurrency limits on model calls: a slot is a lease with a caller-chosen id."""

    async def acquire(self, key: str, limit: int, holder: str, lease: str) -> None:
        """Wait until the lease holds a slot of `key` (first come, first served)."""
        ...

    async def release(self, lease: str) -> None:
        """Give the slot back, or stop waiting for it; harmless when repeated."""
        ...


class BudgetPort(Protocol):
    async def admit(self, task_id: str, after: int = 0) -> None:
        """Return when a model call for this task may start, judged on the log up to seq `after`
        at least (the caller's own last turn counts): at once, or when a raise lifts the task's or
        the run's spent budget."""
        ...


class GraphPort(Protocol):
    async def add_tasks(self, specs: Sequence[TaskSpec]) -> list[str]:
        """Add tasks to the live DAG (validated first: a refused batch adds nothing)."""
        ...


class SupervisionPort(Protocol):
    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        """Return when the attempt may make its next model call (judged on the log up to seq
        `after` at least, and not while its task is paused), with the notes the call must carry."""
        ...


@runtime_checkable
class SupervisorPort(BudgetPort, SupervisionPort, Protocol):
    """The budget and the guardian where they live together (the run's supervisor): the two
    checks before a model call in one round trip, in the order they would be made apart."""

    async def admit_and_judge(self, task_id: str, attempt: int, admit_after: int, after: int) -> list[Note]:
        """`admit(task_id, admit_after)`, then `before_turn(task_id, attempt, after)`: the pause
        check comes after admission, as when they are asked apart."""
        ...


class ModelRulesPort(Protocol):
    """Decisions the model client asks for (policies.model_calls.ModelRules implements it)."""

    def key(self, model: str) -> str: ...

    def limit(self, model: str) -> int: ...

    def retryable(self, status: int | None, tries: int) -> bool: ...

    def delay(self, tries: int, retry_after: float | None, draw: float) -> float: ...


class AgentsPort(Protocol):
    """How a sandbox slot starts the agent of an agent task; the agent calls back into the slot
    (named `sandbox`) for its tool calls."""

    async def run(self, request: TaskRequest, sandbox: str) -> AgentResult:
        """Run the agent to its result; AgentLostError if its process died."""
        ...

    async def warm(self) -> None:
        """Have an agent ready before the first agent task arrives."""
        ...
