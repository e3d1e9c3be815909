"""A run's state as a fold over its event log.

`RunState.apply` is the only way state changes, whether an actor is emitting live or replaying the
log after a restart, so both paths always agree. The first terminal event of a task attempt wins;
later duplicates (an at-least-once redelivery, a re-published result) change nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from omoi.runtime.events import (
    Event,
    RunFinished,
    RunStarted,
)
from omoi.runtime.taskgraph import TaskGraph
from omoi.runtime.tasks import TaskSpec

TaskStatus = Literal["pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "cancelled"})
STATUSES: tuple[TaskStatus, ...] = ("pending", "ready", "running", "succeeded", "failed", "skipped",
                                    "cancelled")


def task_branch(run_id: str, task_id: str) -> str:
    return f"omoi/{run_id}/{task_id}"


def run_branch(run_id: str) -> str:
    """Not `omoi/<run-id>`: git cannot hold that ref next to `omoi/<run-id>/<task-id>` (a ref is a
    file or a directory, not both). Task ids start with a letter or digit, so `_merged` never collides."""
    return f"omoi/{run_id}/_merged"


@dataclass
class TaskState:
    spec: TaskSpec
    order: int
    status: TaskStatus = "pending"
    attempt: int = 0
    failures: int = 0
    interruptions: int = 0
    not_before: datetime | None = None
    sandbox: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    commit: str | None = None
    error: str | None = None
    cancel_reason: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class RunState:
    run_id: str
    started: RunStarted | None = None
    finished: RunFinished | None = None
    cancel_reason: str | None = None
    graph: TaskGraph = field(default_factory=TaskGraph)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    last_seq: int = 0

    def apply(self, ev: Event) -> None:
        if ev.seq is not None:
            self.last_seq = max(self.last_seq, ev.seq)
        match ev.kind:
            case "run.started":
                self.started = self.started or ev
            case "run.finished":
                self.finished = self.finished or ev
            case "run.cancel_requested":
                self.cancel_reason = self.cancel_reason or ev.reason
            case "task.added":
                if ev.spec.id not in self.tasks:
                    self.graph.add([ev.spec], [ev.order])
                    self.tasks[ev.spec.id] = TaskState(spec=ev.spec, order=ev.order)
            case _:
                self._apply_task(ev)

    def _apply_task(self, ev: Event) -> None:
        t = self.tasks.get(getattr(ev, "task_id", ""))
        if t is None or t.terminal:
            return
        match ev.kind:
            case "task.ready":
                t.status = "ready"
            case "task.started":
                t.status, t.attempt, t.sandbox = "running", ev.attempt, ev.sandbox
                t.started_at, t.ended_at = ev.ts, None
            case "task.succeeded" if ev.attempt == t.attempt:
                t.status, t.commit, t.ended_at, t.error = "succeeded", ev.commit, ev.ts, None
            case "task.failed" if ev.attempt == t.attempt:
                t.failures += 1
                t.error = ev.error
                if ev.final:
                    t.status, t.ended_at = "failed", ev.ts
            case "task.retrying":
                if not ev.counts_as_failure:
                    t.interruptions += 1
                t.status, t.ended_at = "pending", ev.ts
                t.not_before = ev.ts + timedelta(seconds=ev.delay_s)
            case "task.skipped":
                t.status, t.error, t.ended_at = "skipped", ev.reason, ev.ts
            case "task.cancelled":
                t.status, t.ended_at = "cancelled", ev.ts
                t.error = ev.reason or t.cancel_reason
            case "task.cancel_requested":
                t.cancel_reason = t.cancel_reason or ev.reason
            case _:
                pass

    # ---- queries -------------------------------------------------------------------------------

    def in_order(self) -> list[TaskState]:
        return sorted(self.tasks.values(), key=lambda t: t.order)

    def counts(self) -> dict[str, int]:
        c = Counter(t.status for t in self.tasks.values())
        return {s: c.get(s, 0) for s in STATUSES}

    def all_terminal(self) -> bool:
        return all(t.terminal for t in self.tasks.values())

    def with_status(self, status: TaskStatus) -> list[TaskState]:
        return [t for t in self.in_order() if t.status == status]

    def blocker(self, task_id: str) -> TaskState | None:
        """A dependency that ended without succeeding, which means this task can never run."""
        for dep in self.graph.deps(task_id):
            d = self.tasks[dep]
            if d.terminal and d.status != "succeeded":
                return d
        return None

    def deps_succeeded(self, task_id: str) -> bool:
        return all(self.tasks[d].status == "succeeded" for d in self.graph.deps(task_id))

    def dep_branches(self, task_id: str) -> list[str]:
        """Branches a task starts from: all its ancestors', in dependency order."""
        return [task_branch(self.run_id, a) for a in self.graph.ancestors_in_order(task_id)]

    def outcome(self) -> Literal["succeeded", "failed", "cancelled"]:
        statuses = {t.status for t in self.tasks.values()}
        if statuses <= {"succeeded"}:
            return "succeeded"
        if self.cancel_reason is not None or "cancelled" in statuses and "failed" not in statuses:
            return "cancelled"
        return "failed"


def fold(run_id: str, events: list[Event]) -> RunState:
    state = RunState(run_id)
    for ev in events:
        state.apply(ev)
    return state
