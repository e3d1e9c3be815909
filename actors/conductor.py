"""The conductor actor: watches the run as a whole and keeps its agents out of each other's way."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from omoi.actors.following import Follower
from omoi.policies.supervision import coherence
from omoi.policies.supervision.conductor import assess, decide, diagnose, same_work
from omoi.runtime.clock import Clock
from omoi.runtime.log.events import ConductorAssessed, Event
from omoi.runtime.model.client import CallTag, ModelPort
from omoi.runtime.ports import BusPort
from omoi.runtime.supervision.conduct import ConductorState
from omoi.runtime.supervision.holds import FOLLOWS as HOLDS

log = structlog.get_logger("omoi.conductor")


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
    `conductor.assessed` when the run's picture changed; when there is something to weigh it asks
    the `model` about the run's coherence first, in a task of its own, and writes the picture
    with the verdict and the model's `[omoi conductor]` advice (`conductor.acted` `message`). A
    run stalled on a person for `stall_s` gets a diagnostic task (`conductor.acted` `diagnose`
    and an `agent.discovery` the discovery actor turns into a task). Decided by
    `policies.supervision.conductor` and `.coherence`, with ids from what is decided.
    If it dies: Ray restarts it; it folds the log again (an order is judged as of its
    prediction's place in the log), so nothing is ordered, released or diagnosed twice; a
    coherence call in flight is lost and asked again with the next picture."""

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
        stall_s: float = 600.0,
        clock: Clock | None = None,
        model: ModelPort | None = None,
        model_name: str = "",
        holder: str = "",
    ) -> None:
        super().__init__(run_id, bus, name, interval=interval, clock=clock)
        self._state = ConductorState(run_id, similar=same_work)
        self._stall_s = stall_s
        self._model, self._model_name, self._holder = model, model_name, holder or name
        self._judging: asyncio.Task[None] | None = None

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)

    def _decide(self) -> list[Event]:
        return decide(self._state, self._name)

    def _timed(self) -> list[Event]:
        now = self._clock.now()
        out = diagnose(self._state, now, self._stall_s, self._name)
        if self._judging is not None:  # its event carries the picture: the next tick looks again
            return out
        picture = assess(self._state, now, self._name)
        for p in picture:
            assert isinstance(p, ConductorAssessed)
            if self._model is not None and (why := coherence.wanted(self._state, p)):
                self._judging = asyncio.create_task(self._judge(p, why))
                return out
        return out + picture

    async def stop(self) -> None:
        if self._judging is not None:
            self._judging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._judging
        await super().stop()

    async def _judge(self, picture: ConductorAssessed, why: str) -> None:
        """One coherence call; whatever it answers, or if it fails, the picture is written with
        the verdict ("unknown" then), and any advice with it."""
        spend: dict[str, Any] = {}
        try:
            assert self._model is not None
            reply = await self._model.complete(
                model=self._model_name,
                system=coherence.SYSTEM,
                tools=[coherence.TOOL],
                messages=[{"role": "user", "content": coherence.excerpts(self._state, picture)}],
                tag=CallTag("conductor", "conductor", f"conductor/{self._state.assessed}", self._holder),
            )
            verdict = coherence.parse(reply.tool_uses)
            spend = {"model": reply.model, "usage": reply.usage, "cost_usd": reply.cost_usd}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the picture is written all the same, its verdict unknown
            verdict = coherence.Verdict("unknown", error=f"the model call failed: {exc}")
        judged = coherence.judged(picture, verdict, spend)
        try:  # applied when the log brings them back
            await self._bus.publish([judged, *coherence.messages(self._state, judged, verdict)])
            log.info("conductor.judged", run_id=self._run_id, why=why, coherence=verdict.coherence)
        except Exception:
            log.warning("conductor.publish_failed", run_id=self._run_id, exc_info=True)
        finally:
            self._judging = None
