"""The conductor actor: watches the run as a whole and keeps its agents out of each other's way."""

from __future__ import annotations

from omoi.actors.following import Follower
from omoi.policies.supervision.conductor import assess, decide, same_work
from omoi.runtime.clock import Clock
from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort
from omoi.runtime.supervision.conduct import ConductorState
from omoi.runtime.supervision.holds import FOLLOWS as HOLDS


class ConductorActor(Follower):
    """Owns: the run's ConductorState (the agents running and since when, their prompts and
    files, the conflicts the merge queue's radar predicts between them, the tasks it holds, what
    waits on a person, the run's spend), folded from the log.

    Handles `start` and `stop`. When the radar predicts that two running agents will conflict
    (`merge.conflict_predicted` naming both), or a started agent does the same work as a running
    one, it orders them: `conductor.acted` (action `order` or `pause_duplicate`, the task kept,
    the files) and `agent.paused` for the one that started later. Once the kept task is merged,
    the held one is resumed and restarted from the integration head, which holds the kept task's
    work (`agent.resumed`, `task.restart_requested`). Two running agents whose tasks name the
    same files each get one `[omoi conductor]` message (`conductor.acted` action `message`, which
    the guardian puts into the agent's next request). Every `interval` seconds it writes
    `conductor.assessed` when the run's picture changed. Decided by
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
        "agent.turn",
        "agent.needs_input",
        "agent.answered",
        "agent.paused",
        "guardian.assessed",
        "guardian.replanned",
    )

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        *,
        name: str = "conductor",
        interval: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(run_id, bus, name, interval=interval, clock=clock)
        self._state = ConductorState(run_id, similar=same_work)

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return decide(self._state, self._name)

    def _timed(self) -> list[Event]:
        return assess(self._state, self._clock.now(), self._name)
