"""The discovery actor: turns what agents find into tasks of the live DAG."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.policies.supervision.discovery import Limits, decide
from omoi.runtime.errors import OmoiError
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.ports import BusPort, GraphPort
from omoi.runtime.supervision.discoveries import DiscoveryState

log = structlog.get_logger("omoi.discovery")
FOLLOWS = (
    "run.started", "task.added", "task.succeeded", "task.failed", "task.skipped", "task.cancelled",
    "agent.discovery", "agent.resumed", "discovery.", "merge.succeeded", "merge.failed",
)  # fmt: skip


class DiscoveryActor:
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

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        graph: GraphPort,
        *,
        limits: Limits | None = None,
        name: str = "discovery",
    ) -> None:
        self._run_id, self._bus, self._graph, self._name = run_id, bus, graph, name
        self._limits = limits or Limits()
        self._state = DiscoveryState(run_id)
        self._log = Subscription(bus, FOLLOWS, poll=30.0)
        self._adding: set[str] = set()  # asked of the graph in this life; its task.added is on the way
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def decided_up_to(self) -> int:
        """How far the log is folded and decided (for tests and status)."""
        return self._state.last_seq

    async def _follow(self) -> None:
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():  # asyncio.wait_for (3.11) can swallow a cancel
                raise asyncio.CancelledError
            try:
                for ev in await self._log.next_batch():
                    self._state.apply(ev)
                await self._step()
            except Exception:  # the bus or the graph restarting: decided again from the fold
                log.warning("discovery.step_failed", run_id=self._run_id, exc_info=True)
                await asyncio.sleep(0.5)

    async def _step(self) -> None:
        """Decide, publish durably, then act (add the spawned tasks)."""
        decided = decide(self._state, self._limits, self._name)
        if decided:
            seqs = await self._bus.publish(decided)
            for ev, seq in zip(decided, seqs, strict=True):
                self._state.apply(ev.model_copy(update={"seq": seq}))
        for spec in self._state.missing():
            if spec.id in self._adding:
                continue
            self._adding.add(spec.id)
            try:
                await self._graph.add_tasks([spec])
                log.info("discovery.task_added", run_id=self._run_id, task_id=spec.id)
            except OmoiError as exc:  # refused by the graph: say so in the log, never retry it
                log.warning("discovery.task_refused", run_id=self._run_id, task_id=spec.id, error=str(exc))
