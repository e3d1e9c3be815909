"""What the discovery actor knows, as a fold over the run's log: the work the run already has
(its tasks' texts and earlier discoveries'), how much discovered work each task spawned and how
deep each discovery chain is, the reports still to decide, and the reporters waiting for a
discovered task to merge. `apply` is the only way it changes, live or replayed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from omoi.runtime.log.events import AgentDiscovery, Event
from omoi.runtime.run.tasks import TaskSpec

RELEASE = "discovery:"  # a release of a reporter has the source `discovery:<the task it waited for>`


def text_of(spec: TaskSpec) -> str:
    """What a task is about, for de-duplication: its description and its agent's prompt."""
    return " ".join(x for x in (spec.description, spec.agent.prompt if spec.agent else spec.run or "") if x)


@dataclass
class Waiting:
    """A reporter held until the task its discovery became is merged (or fails)."""

    reporter: str
    attempt: int
    released: bool = False


@dataclass
class DiscoveryState:
    run_id: str
    known: dict[str, str] = field(default_factory=dict)  # task id -> what it is about
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)  # discovered task -> its chain's depth
    by_reporter: Counter[str] = field(default_factory=Counter)
    spawned: dict[str, TaskSpec] = field(default_factory=dict)  # spawned id -> spec (added or not yet)
    undecided: dict[int, AgentDiscovery] = field(default_factory=dict)  # report seq -> report
    waiting: dict[str, Waiting] = field(default_factory=dict)  # spawned task id -> its reporter
    ended: dict[str, bool] = field(default_factory=dict)  # spawned task id -> merged (True) or not
    last_seq: int = 0
    merging: bool = True
    _recorded: dict[int, str] = field(default_factory=dict)  # report seq -> its words

    def apply(self, ev: Event) -> None:
        if ev.seq is not None:
            self.last_seq = max(self.last_seq, ev.seq)
        match ev.kind:
            case "run.started":
                self.merging = ev.sandbox != "noop"  # as RunState.merging: no branches, no merges
            case "task.succeeded" if ev.task_id in self.waiting and not self.merging:
                self.ended.setdefault(ev.task_id, True)
            case "task.added":
                self.tasks[ev.spec.id] = ev.spec
                self.known.setdefault(ev.spec.id, text_of(ev.spec))
            case "agent.discovery" if ev.role != "oracle" and ev.seq is not None:
                self.undecided[ev.seq] = ev
            case "discovery.rejected":
                self.undecided.pop(ev.discovery, None)
            case "discovery.recorded":
                if (report := self.undecided.pop(ev.discovery, None)) is not None:
                    self._recorded[ev.discovery] = f"{report.title} {report.description}"
            case "discovery.task_spawned":
                self.spawned[ev.spec.id] = ev.spec  # known by its report's words, not its prompt's
                self.known[ev.spec.id] = self._recorded.get(ev.discovery, text_of(ev.spec))
                self.depth[ev.spec.id] = ev.depth
                self.by_reporter[ev.task_id] += 1
                if ev.blocks:
                    self.waiting[ev.spec.id] = Waiting(ev.task_id, ev.attempt)
            case "merge.succeeded" | "merge.failed" if ev.task_id in self.waiting:
                self.ended.setdefault(ev.task_id, ev.kind == "merge.succeeded")
            case "task.failed" | "task.skipped" | "task.cancelled" if ev.task_id in self.waiting:
                if ev.kind != "task.failed" or ev.final:
                    self.ended.setdefault(ev.task_id, False)
            case "agent.resumed" if ev.source.startswith(RELEASE):  # the actor's own release
                if (w := self.waiting.get(ev.source.removeprefix(RELEASE))) is not None:
                    w.released = True
            case _:
                pass

    def missing(self) -> list[TaskSpec]:
        """Spawned tasks the graph has not added yet (the actor died between the two)."""
        return [spec for tid, spec in self.spawned.items() if tid not in self.tasks]

    def releasable(self) -> list[tuple[str, Waiting, bool]]:
        """Reporters whose discovered task ended: (that task, the reporter, whether it merged)."""
        return [
            (tid, w, self.ended[tid])
            for tid, w in self.waiting.items()
            if tid in self.ended and not w.released
        ]
