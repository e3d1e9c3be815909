"""What the discovery actor knows, as a fold over the run's log: the work the run already has
(its tasks' texts and earlier discoveries'), how much discovered work each task spawned and how
deep each discovery chain is, the reports still to decide, and the reporters held until a
discovered task is merged. `apply` is the only way it changes, live or replayed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from omoi.runtime.log.events import AgentDiscovery, Event
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.supervision.holds import Holds


def text_of(spec: TaskSpec) -> str:
    """What a task is about, for de-duplication: its description and its agent's prompt."""
    return " ".join(x for x in (spec.description, spec.agent.prompt if spec.agent else spec.run or "") if x)


@dataclass
class DiscoveryState:
    run_id: str
    known: dict[str, str] = field(default_factory=dict)  # task id -> what it is about
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)  # discovered task -> its chain's depth
    by_reporter: Counter[str] = field(default_factory=Counter)
    spawned: dict[str, TaskSpec] = field(default_factory=dict)  # spawned id -> spec (added or not yet)
    undecided: dict[int, AgentDiscovery] = field(default_factory=dict)  # report seq -> report
    awaiting: dict[int, str] = field(default_factory=dict)  # report seq -> the gate it waits at
    decided: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # seq -> decision, reason, by
    holds: Holds = field(default_factory=lambda: Holds("discovery"))
    _recorded: dict[int, str] = field(default_factory=dict)  # report seq -> its words

    def apply(self, ev: Event) -> None:
        self.holds.apply(ev)
        match ev.kind:
            case "task.added":
                self.tasks[ev.spec.id] = ev.spec
                self.known.setdefault(ev.spec.id, text_of(ev.spec))
            case "agent.discovery" if ev.role != "oracle" and ev.seq is not None:
                self.undecided[ev.seq] = ev
            case "discovery.awaiting":
                self.awaiting[ev.discovery] = ev.gate
            case "discovery.decided":
                self.decided.setdefault(ev.discovery, (ev.decision, ev.reason, ev.by))
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
                    self.holds.hold(ev.spec.id, ev.task_id, ev.attempt)
            case _:
                pass

    def to_review(self) -> list[tuple[int, AgentDiscovery]]:
        """Reports waiting for the reviewer model, not decided yet."""
        return [
            (seq, r)
            for seq, r in sorted(self.undecided.items())
            if self.awaiting.get(seq) == "review" and seq not in self.decided
        ]

    def missing(self) -> list[TaskSpec]:
        """Spawned tasks the graph has not added yet (the actor died between the two)."""
        return [spec for tid, spec in self.spawned.items() if tid not in self.tasks]
