"""The discovery actor: turns what agents find into tasks of the live DAG."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.actors.following import Follower
from omoi.policies.supervision import discovery_review
from omoi.policies.supervision.discovery import Limits, decide
from omoi.runtime.errors import OmoiError
from omoi.runtime.log.events import AgentDiscovery, DiscoveryAwaiting, DiscoveryDecided, Event
from omoi.runtime.model.client import CallTag, ModelPort
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
    the task failed). Behind a gate (`Limits.gate`) a report first waits (`discovery.awaiting`):
    for a person, or for the reviewer `model`, asked once per report in a task of its own, whose
    decision is `discovery.decided` (by `reviewer`); a review that fails hands the report to a
    person (`discovery.awaiting` again, gate `human`, with why). Decided by
    `policies.supervision.discovery`, with ids from what is decided.
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
        model: ModelPort | None = None,
        model_name: str = "",
        holder: str = "",
    ) -> None:
        super().__init__(run_id, bus, name)
        self._graph, self._limits = graph, limits or Limits()
        self._model, self._model_name, self._holder = model, model_name, holder or name
        self._reviewing: dict[int, asyncio.Task[None]] = {}
        self._state = DiscoveryState(run_id)
        self._adding: set[str] = set()  # asked of the graph in this life; its task.added is on the way

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return decide(self._state, self._limits, self._name)

    async def stop(self) -> None:
        for task in self._reviewing.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    async def _act(self) -> None:
        for seq, report in self._state.to_review():
            if seq not in self._reviewing:
                self._reviewing[seq] = asyncio.create_task(self._review(seq, report))
        for spec in self._state.missing():
            if spec.id in self._adding:
                continue
            self._adding.add(spec.id)
            try:
                await self._graph.add_tasks([spec])
                log.info("discovery.task_added", run_id=self._run_id, task_id=spec.id)
            except OmoiError as exc:  # refused by the graph: say so in the log, never retry it
                log.warning("discovery.task_refused", run_id=self._run_id, task_id=spec.id, error=str(exc))

    async def _review(self, seq: int, report: AgentDiscovery) -> None:
        """One reviewer call: `discovery.decided`, or, if it fails, the report goes to a person."""
        common = {"run_id": self._run_id, "task_id": report.task_id, "attempt": report.attempt}
        key = f"discovery-{self._run_id}-{seq}"
        try:
            if self._model is None:
                raise RuntimeError("no reviewer model is configured")
            reply = await self._model.complete(
                model=self._model_name,
                system=discovery_review.SYSTEM,
                tools=[discovery_review.TOOL],
                messages=[{"role": "user", "content": discovery_review.request(report, self._state.known)}],
                tag=CallTag(report.task_id, "reviewer", f"{report.task_id}/discovery-{seq}", self._holder),
            )
            verdict = discovery_review.parse(reply.tool_uses)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # approves nothing: a person decides
            verdict = f"the reviewer call failed: {exc}"
        ev: Event
        if isinstance(verdict, str):
            ev = DiscoveryAwaiting(
                **common, id=f"{key}-awaiting-human", source=self._name, discovery=seq, title=report.title,
                gate="human", note=f"{verdict}; a person decides",
            )  # fmt: skip
        else:
            ev = DiscoveryDecided(
                **common, id=f"{key}-decided", source=self._name, discovery=seq, decision=verdict.decision,
                reason=verdict.reason, by="reviewer",
            )  # fmt: skip
        try:
            await self._bus.publish([ev])  # applied when the log brings it back, then decided
        except Exception:
            log.warning("discovery.review_publish_failed", run_id=self._run_id, exc_info=True)
        finally:
            self._reviewing.pop(seq, None)
