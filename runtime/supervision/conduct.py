"""What the conductor knows about the whole run, as a fold over its log: which agents run (and
since when, with what prompt and declared files), which of them the merge queue's radar predicts
will conflict or that do the same work, the tasks it holds until another's work is merged, what
waits on a person (and since when: a stall lasting long enough gets a diagnostic task), and the
run's spend against its budget. `apply` is the only way it changes,
live or replayed; an order or a duplicate is judged as of its place in the log (a prediction, a
start), so a replay judges the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from omoi.runtime.log.events import Event
from omoi.runtime.supervision.holds import Holds

Why = Literal["order", "pause_duplicate"]
TERMINAL = ("task.succeeded", "task.failed", "task.skipped", "task.cancelled")
OMOI_FILES = ".omoi/"  # the spec's documents: every task of a goal run names them, to read


@dataclass(frozen=True)
class Order:
    """`held` waits for `kept` to be merged: they would conflict in `files` (or do the same work)."""

    prediction: int  # seq of the event that showed it (merge.conflict_predicted, task.started)
    kept: str
    held: str
    attempt: int  # the held task's
    files: tuple[str, ...]
    why: Why = "order"


@dataclass(frozen=True)
class Overlap:
    """Two running agents name the same files: each is told about the other, once."""

    seen: int  # seq of the task.started that showed it
    task: str
    other: str
    attempt: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class Wait:
    """A running task waits on a person for `what`, since the event at `seq` (time `since`)."""

    what: str
    since: datetime
    seq: int
    attempt: int
    question: str = ""


@dataclass
class ConductorState:
    run_id: str
    similar: Callable[[str, str], bool] = lambda a, b: False  # two prompts describe the same work
    agents: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # task -> prompt, files
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (attempt, seq started)
    ended: set[str] = field(default_factory=set)  # agent tasks that finished, one way or another
    orders: dict[int, Order] = field(default_factory=dict)  # seq -> order not yet made
    ordered: set[frozenset[str]] = field(default_factory=set)  # pairs already ordered
    overlaps: dict[tuple[int, str, str], Overlap] = field(default_factory=dict)  # not yet told
    told: set[tuple[str, str]] = field(default_factory=set)  # (task, other) messages made
    waiting: dict[str, Wait] = field(default_factory=dict)  # task -> what it waits on a person for
    budget: tuple[int | None, float | None] = (None, None)  # the run's tokens, USD
    spent: tuple[int, float] = (0, 0.0)
    holds: Holds = field(default_factory=lambda: Holds("conductor"))
    assessed: int = 0  # conductor.assessed events so far
    last_summary: str = ""
    diagnosed: set[int] = field(default_factory=set)  # seqs of the stalls a diagnosis was asked for

    def apply(self, ev: Event) -> None:
        task = getattr(ev, "task_id", "")
        self.holds.apply(ev)
        match ev.kind:
            case "run.started":
                self.budget = (ev.budget_tokens, ev.budget_usd)
            case "task.added" if ev.spec.agent is not None:
                self.agents[task] = (ev.spec.agent.prompt, ev.spec.agent.context)
            case "task.started":
                self.running[task] = (ev.attempt, ev.seq or 0)
                if task in self.agents and ev.seq is not None:
                    self._met(ev.seq, task)
            case "task.retrying" | "task.succeeded" | "task.failed" | "task.skipped" | "task.cancelled":
                self.running.pop(task, None)
                self.waiting.pop(task, None)
                if ev.kind in TERMINAL and task in self.agents:
                    self.ended.add(task)
            case "agent.turn":
                self.spent = (self.spent[0] + ev.usage.total, self.spent[1] + ev.cost_usd)
            case "guardian.assessed" | "guardian.replanned":
                self.spent = (self.spent[0] + ev.usage.total, self.spent[1] + ev.cost_usd)
            case "agent.needs_input" if ev.seq is not None:
                asked = self.waiting.get(task)
                if asked is None or asked.question != ev.question:  # asked again: still waiting since
                    self.waiting[task] = Wait(
                        "an answer (omoi answer)", ev.ts, ev.seq, ev.attempt, ev.question
                    )
            case "agent.paused" if not ev.source.startswith(("conductor", "discovery")) and ev.seq:
                self.waiting[task] = Wait("to be resumed (omoi resume)", ev.ts, ev.seq, ev.attempt)
            case "agent.answered" | "agent.resumed":
                self.waiting.pop(task, None)
            case "merge.conflict_predicted" if len(ev.tasks) == 2 and ev.seq is not None:
                self._order(ev.seq, ev.tasks, ev.files, "order")
            case "conductor.acted" if ev.action in ("order", "pause_duplicate"):
                self.orders.pop(ev.prediction, None)
                self.ordered.add(frozenset((ev.task_id, ev.kept)))
                self.holds.hold(ev.kept, ev.task_id, ev.attempt)
            case "conductor.acted" if ev.action == "message" and ev.kept:
                self.overlaps.pop((ev.prediction, ev.task_id, ev.kept), None)
                self.told.add((ev.task_id, ev.kept))
            case "conductor.acted" if ev.action == "diagnose":
                self.diagnosed.add(ev.prediction)
            case "conductor.assessed":
                self.assessed += 1
                self.last_summary = ev.summary
                self.spent = (self.spent[0] + ev.usage.total, self.spent[1] + ev.cost_usd)
            case _:
                pass

    def _met(self, seq: int, task: str) -> None:
        """A started agent task against the others running: the same work, or the same files."""
        prompt, files = self.agents[task]
        for other in sorted(self.running):
            if other == task or other not in self.agents:
                continue
            other_prompt, other_files = self.agents[other]
            shared = tuple(sorted(f for f in set(files) & set(other_files) if not f.startswith(OMOI_FILES)))
            if self.similar(prompt, other_prompt):
                self._order(seq, (other, task), shared, "pause_duplicate")
                return
            if shared:
                for a, b in ((task, other), (other, task)):
                    if (a, b) not in self.told:
                        self.overlaps[(seq, a, b)] = Overlap(seq, a, b, self.running[a][0], shared)

    def _order(self, seq: int, tasks: tuple[str, ...], files: tuple[str, ...], why: Why) -> None:
        a, b = tasks
        if frozenset(tasks) in self.ordered or not {a, b} <= set(self.agents):
            return
        if a not in self.running or b not in self.running or self.holds.held(a) or self.holds.held(b):
            return
        kept, held = sorted((a, b), key=lambda t: self.running[t][1])  # the first started goes on
        self.orders[seq] = Order(seq, kept, held, self.running[held][0], files, why)

    @property
    def stalled(self) -> bool:
        """Every running task waits on a person: nothing moves until one acts."""
        return bool(self.running) and all(t in self.waiting for t in self.running)

    def stall(self) -> tuple[str, Wait] | None:
        """The task whose wait made the run stall (the last to start waiting), while it is stalled."""
        if not self.stalled:
            return None
        return max(((t, self.waiting[t]) for t in self.running), key=lambda tw: tw[1].seq)
