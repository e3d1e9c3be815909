"""Tasks held until another task's work is merged, as a fold over the log: the discovery actor
holds a reporter until the task its discovery became is merged, the conductor holds the later of
two agents that edit the same files until the earlier one's work is merged. Held means paused
(`agent.paused`); released means resumed, and restarted from the integration head if the awaited
work was merged (that head now holds it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omoi.runtime.log.events import Event

FOLLOWS = (
    "run.started", "task.succeeded", "task.failed", "task.skipped", "task.cancelled",
    "merge.succeeded", "merge.failed", "agent.resumed",
)  # fmt: skip


@dataclass
class Hold:
    awaited: str  # the task whose work must be merged first
    task: str  # the task held
    attempt: int
    released: bool = False


@dataclass
class Holds:
    """`owner` names who holds (`discovery`, `conductor`): a release's event source is
    `<owner>:<awaited>:<task>`, which is how a replay knows it happened."""

    owner: str
    holds: list[Hold] = field(default_factory=list)
    ended: dict[str, bool] = field(default_factory=dict)  # awaited task -> merged (True) or not
    merging: bool = True

    def hold(self, awaited: str, task: str, attempt: int) -> None:
        if not any((h.awaited, h.task, h.attempt) == (awaited, task, attempt) for h in self.holds):
            self.holds.append(Hold(awaited, task, attempt))

    def held(self, task: str) -> bool:
        return any(h.task == task and not h.released for h in self.holds)

    def source(self, h: Hold) -> str:
        return f"{self.owner}:{h.awaited}:{h.task}"

    def apply(self, ev: Event) -> None:
        task = getattr(ev, "task_id", "")
        match ev.kind:
            case "run.started":
                self.merging = ev.sandbox != "noop"  # as RunState.merging: no branches, no merges
            case "task.succeeded" if not self.merging:
                self.ended.setdefault(task, True)
            case "merge.succeeded" | "merge.failed":
                self.ended.setdefault(task, ev.kind == "merge.succeeded")
            case "task.failed" | "task.skipped" | "task.cancelled":
                if ev.kind != "task.failed" or ev.final:
                    self.ended.setdefault(task, False)
            case "agent.resumed" if ev.source.startswith(f"{self.owner}:"):
                for h in self.holds:
                    if self.source(h) == ev.source:
                        h.released = True
            case _:
                pass

    def releasable(self) -> list[tuple[Hold, bool]]:
        """Held tasks whose awaited task ended, and whether its work was merged."""
        return [(h, self.ended[h.awaited]) for h in self.holds if not h.released and h.awaited in self.ended]
