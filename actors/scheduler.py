"""The scheduler actor: fires a run's schedules on the clock."""

from __future__ import annotations

from omoi.actors.following import Follower
from omoi.policies.firing import fire, next_in
from omoi.runtime.clock import Clock
from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort
from omoi.runtime.run.schedules import ENDS, Schedules


class SchedulerActor(Follower):
    """Owns: the run's Schedules (each schedule's spec, fires so far, when it was last due, the
    message it sent and whether it was read), folded from the log.

    Handles `start` and `stop`. When a schedule is due on its clock it writes `schedule.fired` and
    the payload (an allowed event, or an `agent.message` the guardian puts into the agent's next
    request) in one batch; `skipped`, without a payload, while the previous message is unread;
    `schedule.cancelled` when a message's task has ended. Decided by `policies.firing`, with
    ids from the schedule and the fire's number.
    If it dies: Ray restarts it; it folds the log again, so nothing fires twice, and a schedule
    that came due while it was down fires once, for the latest time it was due."""

    FOLLOWS = ("schedule.", "agent.message", "guardian.delivered", "task.failed", *ENDS, "run.finished")
    POLL = 1.0  # the clock it fires on is checked at least this often

    def __init__(
        self, run_id: str, bus: BusPort, *, name: str = "scheduler", clock: Clock | None = None
    ) -> None:
        super().__init__(run_id, bus, name, clock=clock)
        self._state = Schedules(run_id)

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return fire(self._state, self._clock.now(), self._name)

    def _due(self) -> float | None:
        return next_in(self._state, self._clock.now())
