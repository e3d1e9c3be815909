"""A run's state as a fold over its event log.

`RunState.apply` is the only way state changes, whether an actor is emitting live or replaying the
log after a restart, so both paths always agree. The first terminal event of a task attempt wins;
later duplicates (an at-least-once redelivery, a re-published result) change nothing.

Besides the statuses the fold keeps two indexes so that a scheduler step costs what changed, not the
size of the run: tasks by status, and `changed`, the tasks whose readiness may differ since the
last `take_changed()` (new tasks, dependents of tasks that just ended, tasks back from a retry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from omoi.runtime.errors import GraphError
from omoi.runtime.log.events import Event, RunFinished, RunStarted, SpecFinished, Usage
from omoi.runtime.run.taskgraph import TaskGraph
from omoi.runtime.run.tasks import TaskSpec

TaskStatus = Literal["pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "cancelled"})
STATUSES: tuple[TaskStatus, ...] = (
    "pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled",
)  # fmt: skip


# Every kind `RunState.apply` reads: a reader that needs only the fold (`omoi status`, `launch`)
# reads these and skips the rest (command output, tool calls: most of a long run's log).
FOLDED = (
    "run.", "spec.finished", "merge.succeeded", "merge.failed", "agent.turn", "task.added", "task.ready",
    "task.started", "task.succeeded", "task.failed", "task.retrying", "task.skipped", "task.cancelled",
    "task.cancel_requested", "task.restart_requested",
)  # fmt: skip


# What a person following a run is shown: task and run changes, and what agents do that matters
# to them (questions, acceptance rounds, escalations, retries, budgets, spend) but not every tool call.
FOLLOWED = (
    "run.",
    "task.",
    "agent.turn",
    "agent.needs_input",
    "agent.acceptance",
    "agent.escalated",
    "agent.finished",
    "agent.paused",
    "agent.resumed",
    "guardian.intervened",
    "guardian.outcome",
    "guardian.assessed",
    "guardian.replanned",
    "conductor.",
    "discovery.",
    "model.retried",
    "budget.",
    "spec.",
    "merge.",
    "verify.",
    "delivery.",
)


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
    restart_reason: str | None = None  # the running attempt is to stop and start again
    keep_work: bool = False  # the next attempt goes on from the branch's work in progress
    tokens: int = 0  # model tokens of every attempt and of the oracles consulted for it
    cost_usd: float = 0.0

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
    rejected: list[tuple[str, str]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    cancel_requested: set[str] = field(default_factory=set)
    restart_requested: set[str] = field(default_factory=set)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    spec: SpecFinished | None = None
    merged: dict[str, str] = field(default_factory=dict)  # task id -> the integration head it made
    merge_failed: dict[str, str] = field(default_factory=dict)  # task id -> why it was not merged
    last_head: str | None = None  # the integration branch's head, once anything was merged
    _by_status: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in STATUSES})

    def apply(self, ev: Event) -> None:
        if ev.seq is not None:
            self.last_seq = max(self.last_seq, ev.seq)
        match ev.kind:
            case "run.started":
                self.started = self.started or ev
            case "run.finished":
                self.finished = self.finished or ev
            case "spec.finished":
                self.spec = self.spec or ev
            case "run.cancel_requested":
                self.cancel_reason = self.cancel_reason or ev.reason
            case "task.added":
                self._add(ev.spec, ev.order, ev.id)
            case "merge.succeeded" if ev.task_id in self.tasks:
                self.merged[ev.task_id] = ev.head
                self.last_head = ev.head
                self.changed.update(self.graph.dependents(ev.task_id))
            case "merge.failed" if ev.task_id in self.tasks:
                self.merge_failed.setdefault(ev.task_id, ev.reason)
                self.changed.update(self.graph.dependents(ev.task_id))
            case "agent.turn":
                self.usage += ev.usage
                self.cost_usd += ev.cost_usd
                if (t := self.tasks.get(ev.task_id)) is not None:
                    t.tokens += ev.usage.total
                    t.cost_usd += ev.cost_usd
            case _:
                self._apply_task(ev)

    @property
    def awaiting_spec(self) -> bool:
        """A run from a goal has no tasks until its spec has written them."""
        return self.started is not None and bool(self.started.goal) and self.spec is None

    @property
    def plan_only_done(self) -> bool:
        """`omoi plan`: the run ends with its spec; the tasks stay pending, for a later run."""
        return self.started is not None and self.started.plan_only and self.spec is not None

    @property
    def base_commit(self) -> str:
        """Where task branches start: the spec's commit (so its artifacts are on every branch and
        on the merged one), else the repository's HEAD when the run started."""
        if self.spec is not None and self.spec.commit:
            return self.spec.commit
        assert self.started is not None
        return self.started.base_commit

    @property
    def merging(self) -> bool:
        """Whether succeeded branches go through the merge queue: not in a run whose sandboxes
        write no branches (`noop`, the scheduler's benchmark), where succeeded means merged."""
        return self.started is not None and self.started.sandbox != "noop"

    @property
    def integration_head(self) -> str:
        """Where a task starts now: everything merged so far (the run's base before that)."""
        return self.last_head or self.base_commit

    def integrated(self, task_id: str) -> bool:
        t = self.tasks[task_id]
        return t.status == "succeeded" and (not self.merging or task_id in self.merged)

    def merges_settled(self) -> bool:
        """Every succeeded branch is merged, or will never be."""
        if not self.merging:
            return True
        done = self._by_status["succeeded"]
        return all(i in self.merged or i in self.merge_failed for i in done)

    def _add(self, spec: TaskSpec, order: int, event_id: str) -> None:
        if spec.id in self.tasks:
            return
        try:
            self.graph.add([spec], [order])
        except GraphError as exc:  # published around the graph actor's checks: keep the log, skip it
            self.rejected.append((event_id, str(exc)))
            return
        self.tasks[spec.id] = TaskState(spec=spec, order=order)
        self._by_status["pending"].add(spec.id)
        self.changed.add(spec.id)

    def _set(self, t: TaskState, status: TaskStatus) -> None:
        self._by_status[t.status].discard(t.id)
        self._by_status[status].add(t.id)
        t.status = status
        if status in TERMINAL:
            self.changed.update(self.graph.dependents(t.id))
            self.cancel_requested.discard(t.id)
            self.restart_requested.discard(t.id)

    def _apply_task(self, ev: Event) -> None:
        t = self.tasks.get(getattr(ev, "task_id", ""))
        if t is None or t.terminal:
            return
        match ev.kind:
            case "task.ready":
                self._set(t, "ready")
            case "task.started":
                self._set(t, "running")
                t.attempt, t.sandbox, t.restart_reason, t.keep_work = ev.attempt, ev.sandbox, None, False
                self.restart_requested.discard(t.id)
                t.started_at, t.ended_at, t.not_before = ev.ts, None, None
            case "task.succeeded" if ev.attempt == t.attempt:
                t.commit, t.ended_at, t.error = ev.commit, ev.ts, None
                self._set(t, "succeeded")
            case "task.failed" if ev.attempt == t.attempt:
                t.failures += 1
                t.error = ev.error
                if ev.final:
                    t.ended_at = ev.ts
                    self._set(t, "failed")
            case "task.retrying":
                t.restart_reason = None
                self.restart_requested.discard(t.id)
                if not ev.counts_as_failure:
                    t.interruptions += 1
                t.ended_at = ev.ts
                t.not_before = ev.ts + timedelta(seconds=ev.delay_s)
                self._set(t, "pending")
                self.changed.add(t.id)
            case "task.skipped":
                t.error, t.ended_at = ev.reason, ev.ts
                self._set(t, "skipped")
            case "task.cancelled":
                t.ended_at, t.error = ev.ts, ev.reason or t.cancel_reason
                self._set(t, "cancelled")
            case "task.cancel_requested":
                t.cancel_reason = t.cancel_reason or ev.reason
                self.cancel_requested.add(t.id)
            case "task.restart_requested" if ev.attempt == t.attempt and t.status == "running":
                t.restart_reason = t.restart_reason or ev.reason
                t.keep_work = t.keep_work or ev.keep_work
                self.restart_requested.add(t.id)
            case _:
                pass

    # ---- queries -------------------------------------------------------------------------------

    def take_changed(self) -> list[str]:
        """Tasks whose readiness may have changed, in topological order; clears the set."""
        ids, self.changed = self.changed, set()
        return sorted((i for i in ids if i in self.tasks), key=self.graph.topo_index)

    def in_order(self) -> list[TaskState]:
        return sorted(self.tasks.values(), key=lambda t: t.order)

    def counts(self) -> dict[str, int]:
        return {s: len(self._by_status[s]) for s in STATUSES}

    def count(self, status: TaskStatus) -> int:
        return len(self._by_status[status])

    def all_terminal(self) -> bool:
        return not (self._by_status["pending"] or self._by_status["ready"] or self._by_status["running"])

    def with_status(self, status: TaskStatus) -> list[TaskState]:
        return sorted((self.tasks[i] for i in self._by_status[status]), key=lambda t: t.order)

    def ids_with_status(self, status: TaskStatus) -> set[str]:
        return self._by_status[status]

    def blocker(self, task_id: str) -> TaskState | None:
        """A dependency that ended without succeeding, which means this task can never run."""
        for dep in self.graph.deps(task_id):
            d = self.tasks[dep]
            if (d.terminal and d.status != "succeeded") or dep in self.merge_failed:
                return d
        return None

    def deps_done(self, task_id: str) -> bool:
        """Every dependency's work is on the integration head, where this task will start."""
        return all(self.integrated(d) for d in self.graph.deps(task_id))

    def outcome(self) -> Literal["succeeded", "failed", "cancelled"]:
        if self.spec is not None and self.spec.status == "failed":
            return "failed"
        if self.started is not None and self.started.plan_only:  # the spec was the whole run
            return "succeeded" if self.spec is not None else "failed"
        statuses = {s for s in STATUSES if self._by_status[s]}
        if self.merge_failed and self.cancel_reason is None:
            return "failed"
        if statuses <= {"succeeded"}:
            return "succeeded"
        if self.cancel_reason is not None or ("cancelled" in statuses and "failed" not in statuses):
            return "cancelled"
        return "failed"


def fold(run_id: str, events: list[Event]) -> RunState:
    state = RunState(run_id)
    for ev in events:
        state.apply(ev)
    return state
