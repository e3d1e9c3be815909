"""The conductor actor: watches the run as a whole and keeps its agents out of each other's way."""

from __future__ import annotations

from omoi.actors.following import Follower
from omoi.policies.supervision.conductor import decide
from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort
from omoi.runtime.supervision.conduct import ConductorState
from omoi.runtime.supervision.holds import FOLLOWS as HOLDS


class ConductorActor(Follower):
    """Owns: the run's ConductorState (the agents running and since when, the conflicts the merge
    queue's radar predicts between them, the tasks it holds), folded from the log.

    Handles `start` and `stop`. When the radar predicts that two running agents will conflict
    (`merge.conflict_predicted` naming both), it orders them: `conductor.acted` (action `order`,
    the task kept, the files) and `agent.paused` for the one that started later. Once the kept
    task is merged, the held one is resumed and restarted from the integration head, which
    holds the kept task's work (`agent.resumed`, `task.restart_requested`). Decided by
    `policies.supervision.conductor`, with ids from what is decided.
    If it dies: Ray restarts it; it folds the log again (an order is judged as of its
    prediction's place in the log), so nothing is ordered or released twice."""

    FOLLOWS = (
        *HOLDS,
        "task.added",
        "task.started",
        "task.retrying",
        "merge.conflict_predicted",
        "conductor.",
    )

    def __init__(self, run_id: str, bus: BusPort, *, name: str = "conductor") -> None:
        super().__init__(run_id, bus, name)
        self._state = ConductorState(run_id)

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return decide(self._state, self._name)
