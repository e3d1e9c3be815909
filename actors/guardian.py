"""The guardian actor: one per run, a guardian for every running agent attempt."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.policies.supervision import assessment, replan
from omoi.policies.supervision.guardian import Ask, GuardianRules, review, to_assess
from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.log.events import Event, GuardianAssessed, GuardianReplanned
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.model.client import CallTag, ModelPort
from omoi.runtime.ports import BusPort
from omoi.runtime.supervision.state import Attempt, Note, Replan, SupervisionState

log = structlog.get_logger("omoi.guardian")
FOLLOWS = (
    "task.added", "task.succeeded", "task.failed", "task.cancelled", "task.retrying", "task.skipped",
    "task.restart_requested", "task.cancel_requested",  # not task.output: most of a long run's log
    "agent.", "guardian.", "discovery.recorded", "discovery.rejected", "conductor.acted",
)  # fmt: skip


class GuardianActor:
    """Owns: the run's SupervisionState (every running agent attempt's trajectory, the
    interventions made about it, paused tasks, unread steers), folded from the log.

    Handles `start` (follow the log), `before_turn(task_id, attempt, after)`, which an agent calls
    before each model call: it returns once the log up to `after` (the agent's own last events) is
    judged and the task is not paused, with the notes the request must carry (a steer), and
    `stop`. On every batch of events it evaluates the deterministic signals of the attempts that
    moved, and every `interval` seconds of all of them (an idle agent makes no events); on that
    timer it also asks `model` (the `quick` route by default) to assess the attempts a signal or
    the cheap filter flags, each call in a task of its own so agents never wait on it.
    Emits `guardian.intervened` (with `task.restart_requested`, `task.cancel_requested` or
    `agent.paused` for the rungs the graph or a person carries out), `guardian.assessed` (read
    back from the log like any event: an assessment asking for steering is one more signal) and
    `guardian.outcome`, as
    decided by `policies.supervision.guardian`; each with an id derived from what it is about,
    so a replay or a repeated publish writes nothing twice. With supervision off it decides
    nothing, but pause and resume still hold agents.
    If it dies: Ray restarts it and it folds the log again; what it already published is in the
    fold, so no intervention is repeated; an assessment in flight is lost and asked again on
    the next timer. `before_turn` calls in flight are re-sent by Ray."""

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        *,
        rules: GuardianRules | None = None,
        interval: float = 60.0,
        enabled: bool = True,
        clock: Clock | None = None,
        name: str = "guardian",
        model: ModelPort | None = None,
        model_name: str = "",
        holder: str = "",
        planner_name: str = "",
    ) -> None:
        self._run_id, self._bus, self._name = run_id, bus, name
        self._model, self._model_name, self._holder = model, model_name, holder or name
        self._planner_name = planner_name or model_name
        self._asking: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._planning: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._rules, self._interval, self._enabled = rules or GuardianRules(), interval, enabled
        self._clock = clock or SystemClock()
        self._state = SupervisionState(run_id)
        self._log = Subscription(bus, FOLLOWS, poll=min(interval, 30.0))
        self._judged = 0  # the log is judged up to this seq
        self._held: dict[tuple[str, int], int] = {}
        self._changed = asyncio.Condition()
        self._follower: asyncio.Task[None] | None = None
        self._next_tick = self._clock.monotonic() + interval

    async def start(self) -> None:
        self._start()

    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        """An attempt the guardian is stopping (restart, cancel) makes no more model calls: its
        call waits here until the graph stops it."""
        self._start()
        me = (task_id, attempt)
        self._held[me] = self._held.get(me, 0) + 1
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: self._judged >= after and not self._state.holds(*me))
        finally:
            self._held[me] -= 1
        return self._state.notes(task_id, attempt)

    async def held(self) -> list[tuple[str, int]]:
        """The attempts waiting in `before_turn` now (paused, stopping, or the log catching up)."""
        return sorted(k for k, n in self._held.items() if n > 0)

    async def caught_up(self, seq: int) -> int:
        """Return once the log is judged up to `seq`; how far it is judged."""
        self._start()
        async with self._changed:
            await self._changed.wait_for(lambda: self._judged >= seq)
        return self._judged

    async def tick(self) -> int:
        """Look at every watched attempt now (what the timer does), and wait for the model
        assessments it asked for; the events it published."""
        published = await self._judge(list(self._state.watches))
        asked = self._ask()
        await asyncio.gather(*asked)
        return published + len(asked)

    async def stop(self) -> None:
        for task in [self._follower, *self._asking.values(), *self._planning.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _start(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Owned by this actor for its lifetime: fold, judge, publish, in log order."""
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():  # asyncio.wait_for (3.11) can swallow a cancel
                raise asyncio.CancelledError
            wait = max(0.0, self._next_tick - self._clock.monotonic())
            try:
                events = await self._log.next_batch(timeout=min(wait, self._log.poll))
            except Exception:  # the bus restarting: keep the cursor and ask again
                log.warning("guardian.read_failed", run_id=self._run_id, exc_info=True)
                await self._clock.sleep(0.5)
                continue
            for ev in events:
                self._state.apply(ev)
            try:
                await self._judge(self._state.take_changed())
                self._plan()
                if self._clock.monotonic() >= self._next_tick:
                    self._next_tick = self._clock.monotonic() + self._interval
                    await self._judge(list(self._state.watches))
                    self._ask()
            except Exception:  # nothing was applied that was not published: judged again next time
                log.warning("guardian.publish_failed", run_id=self._run_id, exc_info=True)
                continue
            async with self._changed:
                self._judged = self._log.cursor
                self._changed.notify_all()

    async def _judge(self, attempts: list[Attempt]) -> int:
        if not self._enabled or not attempts:
            return 0
        decided = review(self._state, attempts, self._clock.now(), self._rules, self._name)
        if not decided:
            return 0
        decided = [self._stamp(e) for e in decided]
        seqs = await self._bus.publish(decided)
        for ev, seq in zip(decided, seqs, strict=True):
            self._state.apply(ev.model_copy(update={"seq": seq}))
            log.info(
                "guardian.published", run_id=self._run_id, kind=ev.kind, task_id=getattr(ev, "task_id", "")
            )
        async with self._changed:
            self._changed.notify_all()
        return len(decided)

    def _ask(self) -> list[asyncio.Task[None]]:
        """Start an assessment for each attempt the policy flags and none is running for."""
        if not self._enabled or self._model is None:
            return []
        started = []
        for ask in to_assess(self._state, self._clock.now(), self._rules):
            if ask.attempt not in self._asking:
                started.append(asyncio.create_task(self._assess(ask)))
                self._asking[ask.attempt] = started[-1]
        return started

    def _plan(self) -> None:
        """Ask the planner for each replan decided (in this life or before it) and not answered."""
        for key, r in sorted(self._state.replans.items()):
            if key not in self._planning:
                self._planning[key] = asyncio.create_task(self._rewrite(key, r))

    async def _rewrite(self, key: Attempt, r: Replan) -> None:
        """One planner call; whatever it answers, or if it fails, one `guardian.replanned` event,
        which lets the next attempt make its first model call."""
        (task, attempt), got, words = key, {}, {}
        try:
            if self._model is None:
                raise RuntimeError("no planner model is configured")
            reply = await self._model.complete(
                model=self._planner_name,
                system=replan.SYSTEM,
                tools=[replan.TOOL],
                messages=[
                    {
                        "role": "user",
                        "content": replan.request(self._state.goals.get(task, ""), r.last, r.why),
                    }
                ],
                tag=CallTag(task, "planner", f"{task}/{attempt}/planner", self._holder),
            )
            got = {"model": reply.model, "usage": reply.usage, "cost_usd": reply.cost_usd}
            rewrite = replan.parse(reply.tool_uses)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the attempt goes on with the rung's fixed words
            rewrite = f"the planner call failed: {exc}"
        if isinstance(rewrite, str):
            words = {"error": rewrite}
        else:
            words = {"prompt": rewrite.prompt, "rationale": rewrite.rationale, "note": replan.note(rewrite)}
        ev = GuardianReplanned(
            id=f"guardian-{self._run_id}-{task}-{attempt}-replanned", ts=self._clock.now(),
            run_id=self._run_id, task_id=task, attempt=attempt, source=self._name,
            intervention=r.intervention, **words, **got,
        )  # fmt: skip
        await self._publish_own(ev, self._planning, key)

    async def _assess(self, ask: Ask) -> None:
        """One model call; whatever it answers, or if it fails, one `guardian.assessed` event."""
        (task, attempt), got = ask.attempt, {}
        try:
            assert self._model is not None
            reply = await self._model.complete(
                model=self._model_name,
                system=assessment.SYSTEM,
                tools=[assessment.TOOL],
                messages=[{"role": "user", "content": ask.prompt}],
                tag=CallTag(task, "guardian", f"{task}/{attempt}/guardian", self._holder),
            )
            verdict = assessment.parse(reply.tool_uses)
            got = {"model": reply.model, "usage": reply.usage, "cost_usd": reply.cost_usd}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed call is an unknown verdict, never an aligned one
            verdict = assessment.Verdict("unknown", error=f"the model call failed: {exc}")
        a = verdict.answer
        ev = GuardianAssessed(
            id=f"guardian-{self._run_id}-{task}-{attempt}-assessed-{ask.turn}",
            ts=self._clock.now(), run_id=self._run_id, task_id=task, attempt=attempt, source=self._name,
            turn=ask.turn, reason=ask.reason, verdict=verdict.verdict, error=verdict.error,
            score=a.score if a else None, needs_steering=a.needs_steering if a else False,
            steering_type=a.steering_type if a else None,
            recommendation=a.recommendation if a else "", summary=a.summary if a else "", **got,
        )  # fmt: skip
        await self._publish_own(ev, self._asking, ask.attempt)

    async def _publish_own(self, ev: Event, calls: dict[Attempt, asyncio.Task[None]], key: Attempt) -> None:
        """Publish what a model call came to; it is applied when the log brings it back. If the
        publish fails, the call is made again (the fold still asks for it)."""
        try:
            await self._bus.publish([ev])
            log.info(ev.kind, run_id=self._run_id, task_id=key[0], attempt=key[1])
        except Exception:
            log.warning("guardian.publish_failed", run_id=self._run_id, kind=ev.kind, exc_info=True)
        finally:
            calls.pop(key, None)

    def _stamp(self, ev: Event) -> Event:
        """An id from what the event is about: the n-th intervention on an attempt, the outcome
        of one intervention, and the orders that go with an intervention."""
        task, attempt = getattr(ev, "task_id", ""), getattr(ev, "attempt", 0)
        w = self._state.watches.get((task, attempt))
        n = len(w.taken) if w is not None else 0
        base = f"guardian-{self._run_id}-{task}-{attempt}"
        match ev.kind:
            case "guardian.outcome":
                key = f"{base}-outcome-{ev.intervention}"
            case "guardian.intervened":
                key = f"{base}-{n}"
            case _:
                key = f"{base}-{n}-{ev.kind}"
        return ev.model_copy(update={"id": key, "ts": self._clock.now()})
