"""The merge queue's state as a fold over the run's log: what the integrator rebuilds on restart.

Every change comes through `apply`, live or replayed. An entry is one task's branch on its way to
the integration head: queued with a tip, then merged, waiting on a rung of the conflict ladder,
waiting on a person, or refused. A rung that produced a new tip re-queues the entry with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from omoi.runtime.log.events import Event
from omoi.runtime.run.taskgraph import TaskGraph
from omoi.runtime.run.tasks import Generated, TaskSpec

EntryStatus = Literal["queued", "conflicted", "needs_human", "merged", "failed"]


@dataclass
class Entry:
    task_id: str
    tip: str
    status: EntryStatus = "queued"
    files: tuple[str, ...] = ()  # the files of the open conflict
    rung: str | None = None  # the rung working on it now
    tried: list[str] = field(default_factory=list)  # every rung decided so far, in order
    detail: str = ""  # what the rung is told (a verification failure, ...)
    waiting_since: datetime | None = None
    take: str | None = None  # a person's choice: branch, ours, theirs
    flaky: int = 0  # verification failures that a retry passed
    announced: bool = False  # its merge.queued is in the log


@dataclass
class MergeState:
    run_id: str
    base: str = ""
    head: str = ""
    sandbox: str = "local"
    verify: tuple[str, ...] = ()
    generated: tuple[Generated, ...] = ()
    merge_timeout_s: float | None = None
    graph: TaskGraph = field(default_factory=TaskGraph)
    specs: dict[str, TaskSpec] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    running: dict[str, tuple[int, str]] = field(default_factory=dict)  # task -> (attempt, its base)
    attempts: dict[str, int] = field(default_factory=dict)  # the highest attempt number used
    summaries: dict[str, str] = field(default_factory=dict)  # what each task's agent said it did
    predicted: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    changed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # merged task -> files it changed
    order: dict[str, int] = field(default_factory=dict)
    verifies: int = 0  # verification rounds started (each a sandbox attempt of its own)
    over: bool = False  # the run finished or was cancelled: nothing more is merged

    # The kinds `apply` reads (an attempt's number comes with its task.started, before its output)
    READS = (
        "run.", "spec.finished", "task.added", "task.started", "task.succeeded", "task.failed",
        "task.cancelled", "task.skipped", "task.retrying", "agent.finished", "merge.", "verify.",
    )  # fmt: skip

    def apply(self, ev: Event) -> None:
        attempt = getattr(ev, "attempt", 0)
        tid = getattr(ev, "task_id", "")
        if tid and attempt:
            self.attempts[tid] = max(self.attempts.get(tid, 0), attempt)
        match ev.kind:
            case "run.started":
                self.base = self.base or ev.base_commit
                self.sandbox, self.verify, self.merge_timeout_s = ev.sandbox, ev.verify, ev.merge_timeout_s
                self.generated = ev.generated
            case "spec.finished" if ev.commit:
                self.base = ev.commit
            case "run.finished" | "run.cancel_requested":
                self.over = True
            case "task.added" if ev.task_id not in self.specs:
                self.specs[ev.task_id] = ev.spec
                self.order[ev.task_id] = ev.order
                self.graph.add([ev.spec], [ev.order])
            case "task.started":
                self.running[ev.task_id] = (ev.attempt, ev.base)
            case "task.succeeded":
                self.running.pop(ev.task_id, None)
                if ev.task_id not in self.entries:
                    self.entries[ev.task_id] = Entry(ev.task_id, ev.commit or "")
            case "task.failed" | "task.cancelled" | "task.skipped" | "task.retrying":
                self.running.pop(ev.task_id, None)
            case "agent.finished" if ev.status == "complete" and ev.role != "oracle":
                self.summaries[ev.task_id] = ev.summary
            case "merge.queued":  # the rung that made this tip (if any) is kept: it says how
                e = self.entries.setdefault(ev.task_id, Entry(ev.task_id, ev.commit))
                e.tip, e.status, e.take, e.announced = ev.commit, "queued", None, True
            case "merge.conflicted":
                e = self.entries[ev.task_id]
                e.status, e.files, e.detail = "conflicted", ev.files, ev.detail
                if ev.next != "rule":
                    e.rung = ev.next
                    e.tried.append(ev.next)
            case "merge.needs_human":
                e = self.entries[ev.task_id]
                e.status, e.files, e.waiting_since = "needs_human", ev.files, ev.ts
            case "merge.human_resolved" if ev.task_id in self.entries:
                self.entries[ev.task_id].take = ev.take
            case "merge.succeeded":
                self.entries[ev.task_id].status = "merged"
                self.head = ev.head
                self.changed[ev.task_id] = ev.files
            case "merge.failed" if ev.task_id in self.entries:
                self.entries[ev.task_id].status = "failed"
            case "merge.conflict_predicted":
                self.predicted[ev.tasks] = ev.files
            case "verify.started":
                self.verifies += 1
            case "verify.passed" if ev.round == 2 and ev.tasks[0] in self.entries:
                self.entries[ev.tasks[0]].flaky += 1
            case _:
                pass

    @property
    def integration_head(self) -> str:
        return self.head or self.base

    def merged(self, task_id: str) -> bool:
        e = self.entries.get(task_id)
        return e is not None and e.status == "merged"

    def mergeable(self) -> list[Entry]:
        """Queued entries (their `merge.queued` in the log) whose dependencies are all on the
        head, in plan order."""
        ready = [
            e
            for e in self.entries.values()
            if e.status == "queued"
            and e.announced
            and all(self.merged(d) for d in self.graph.deps(e.task_id))
        ]
        return sorted(ready, key=lambda e: self.order.get(e.task_id, 0))

    def waiting_on_person(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.status == "needs_human"]


def fold_merges(run_id: str, events: list[Event]) -> MergeState:
    state = MergeState(run_id)
    for ev in events:
        state.apply(ev)
    return state
