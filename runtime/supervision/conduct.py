"""What the conductor knows about the whole run, as a fold over its log: which agents run (and
since when), which of them the merge queue's radar predicts will conflict, and the tasks it holds
until another's work is merged. `apply` is the only way it changes, live or replayed; an order is
judged as of its prediction's place in the log, so a replay judges the same."""

from __future__ import annotations

from dataclasses import dataclass, field

from omoi.runtime.log.events import Event
from omoi.runtime.supervision.holds import Holds


@dataclass(frozen=True)
class Order:
    """Two running agents would conflict in `files`: `held` waits for `kept` to be merged."""

    prediction: int  # seq of the merge.conflict_predicted event
    kept: str
    held: str
    attempt: int  # the held task's
    files: tuple[str, ...]


@dataclass
class ConductorState:
    run_id: str
    agents: set[str] = field(default_factory=set)  # agent tasks (a command cannot be paused)
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (attempt, seq started)
    orders: dict[int, Order] = field(default_factory=dict)  # prediction seq -> order not yet made
    ordered: set[frozenset[str]] = field(default_factory=set)  # pairs already ordered
    holds: Holds = field(default_factory=lambda: Holds("conductor"))

    def apply(self, ev: Event) -> None:
        task = getattr(ev, "task_id", "")
        self.holds.apply(ev)
        match ev.kind:
            case "task.added" if ev.spec.agent is not None:
                self.agents.add(task)
            case "task.started":
                self.running[task] = (ev.attempt, ev.seq or 0)
            case "task.succeeded" | "task.failed" | "task.retrying" | "task.skipped" | "task.cancelled":
                self.running.pop(task, None)
            case "merge.conflict_predicted" if len(ev.tasks) == 2 and ev.seq is not None:
                self._judge(ev.seq, ev.tasks, ev.files)
            case "conductor.acted" if ev.action == "order":
                self.orders.pop(ev.prediction, None)
                self.ordered.add(frozenset((ev.task_id, ev.kept)))
                self.holds.hold(ev.kept, ev.task_id, ev.attempt)
            case _:
                pass

    def _judge(self, seq: int, tasks: tuple[str, ...], files: tuple[str, ...]) -> None:
        a, b = tasks
        if frozenset(tasks) in self.ordered or not {a, b} <= self.agents:
            return
        if a not in self.running or b not in self.running or self.holds.held(a) or self.holds.held(b):
            return
        kept, held = sorted((a, b), key=lambda t: self.running[t][1])  # the first started goes on
        self.orders[seq] = Order(seq, kept, held, self.running[held][0], files)
