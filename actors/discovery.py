"""The discovery actor: turns what agents find into tasks of the live DAG."""

from __future__ import annotations

import structlog

from omoi.actors.following import Follower
from omoi.policies.supervision.discovery import Limits, decide
from omoi.runtime.errors import OmoiError
from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort, GraphPort
from omoi.runtime.supervision.discoveries import DiscoveryState
from omoi.runtime.supervision.holds import FOLLOWS as HOLDS

log = structlog.get_logger("omoi.discovery")


class DiscoveryActor(Follower):
    """Owns: the run's DiscoveryState (the work the run has, the reports not decided yet, the
    reporters waiting for a discovered task), folded from the log.

    Handles `start` (follow the log) and `stop`. For each `agent.discovery` it publishes
    `discovery.rejected` (an unknown type, over a bound, or a duplicate, naming what it repeats)
    or `discovery.recorded` and `discovery.task_spawned`, then adds the task to the graph. A
    report with `blocks_current` also pauses its reporter (`agent.paused`); once the spawned task
    is merged the reporter is resumed and restarted from the integration head (resumed only, if
    the task failed). Decided by `policies.supervision.discovery`, with ids from what is decided.
    If it dies: Ray restarts it; it folds the log again, so a report is decided once, and adds any
    spawned task the graph does not have yet (it died between publishing and adding)."""

    FOLLOWS = (*HOLDS, "task.added", "agent.discovery", "discovery.")

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        graph: GraphPort,
        *,
        limits: Limits | None = None,
        name: str = "discovery",
    ) -> None:
        super().__init__(run_id, bus, name)
        self._graph, self._limits = graph, limits or Limits()
        self._state = DiscoveryState(run_id)
        self._adding: set[str] = set()  # asked of the graph in this life; its task.added is on the way

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return decide(self._state, self._limits, self._name)

    async def _act(self) -> None:
        for spec in self._state.missing():
            if spec.id in self._adding:
                continue
            self._adding.add(spec.id)
            try:
                await self._graph.add_tasks([spec])
                log.info("discovery.task_added", run_id=self._run_id, task_id=spec.id)
            except OmoiError as exc:  # refused by the graph: say so in the log, never retry it
                log.warning("discovery.task_refused", run_id=self._run_id, task_id=spec.id, error=str(exc))
