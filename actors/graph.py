"""The graph actor: owns a run's DAG and drives it to the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence

from omoi.policies.progression import Decisions, Outcome, Progression
from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.errors import OmoiError
from omoi.runtime.log.events import Event, RunCancelRequested, RunFinished, TaskAdded, TaskCancelRequested
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.names import run_branch
from omoi.runtime.ports import BusPort, ExecutorPort
from omoi.runtime.run.execution import TaskResult
from omoi.runtime.run.state import FOLDED, RunState
from omoi.runtime.run.tasks import TaskSpec

_WATCHED = (
    "run.cancel_requested", "task.cancel_requested", "task.restart_requested", "task.added", "spec.finished",
    "merge.succeeded", "merge.failed",
)  # fmt: skip


class GraphActor:
    """Owns the run's task DAG and every task's status, as a fold over the event log, and the
    sandbox slots its running attempts hold.

    Handles `run` (drive the run to `run.finished` and return that event), `add_tasks` (validated
    first: a refused batch publishes nothing), `cancel`, `snapshot`, `stats` and `stop`. Emits
    `task.ready`, `task.started`, `task.succeeded`, `task.failed`, `task.retrying`, `task.skipped`,
    `task.cancelled` and `run.finished`, as decided by `policies.progression`; reads cancel and
    restart requests (a person's, the guardian's) and additions that others publish, and the
    merge queue's `merge.succeeded` and `merge.failed`: a task's dependents start once its work
    is on the integration head, from that head, and the run ends once every succeeded branch is
    merged or refused. Every event is durable before the action it announces (write-ahead), so a
    replay of the log rebuilds exactly this state.
    If it dies: Ray restarts it and re-sends `run`; it replays the log and re-attaches to running
    attempts by sandbox name. A lost sandbox means a retry that does not count as a failure, and a
    succeeded task is never run again."""

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        executor: ExecutorPort,
        *,
        max_parallel: int = 4,
        ordering: str = "critical-path",
        clock: Clock | None = None,
        name: str = "graph",
    ) -> None:
        self._run_id, self._bus, self._executor = run_id, bus, executor
        self._clock, self._name = clock or SystemClock(), name
        self._state = RunState(run_id)
        self._progress = Progression(
            self._state,
            source=name,
            max_parallel=max_parallel,
            ordering=ordering,
            sandbox_name=executor.sandbox_name,
        )
        self._outbox: list[Event] = []
        self._launches: list[tuple[str, int, Awaitable[TaskResult]]] = []
        self._inflight: dict[str, asyncio.Task[TaskResult]] = {}
        self._completions: list[tuple[str, int, Outcome]] = []
        self._helpers: set[asyncio.Future[None]] = set()
        self._main: asyncio.Task[RunFinished] | None = None
        self._wake, self._replayed = asyncio.Event(), asyncio.Event()
        self._closing = False
        self._stats = dict.fromkeys(
            ("steps", "publishes", "events", "completions", "publish_us", "step_us", "idle_us"), 0
        )

    # ---- messages ------------------------------------------------------------------------------

    async def run(self) -> RunFinished:
        return await asyncio.shield(self._ensure_main())

    async def add_tasks(self, specs: Sequence[TaskSpec]) -> list[str]:
        await self._ready()
        self._state.graph.check(specs)
        base = len(self._state.tasks)
        for i, spec in enumerate(specs):
            self._emit(
                TaskAdded(run_id=self._run_id, task_id=spec.id, spec=spec, order=base + i, source=self._name)
            )
        await self._flush()
        self._wake.set()
        return [s.id for s in specs]

    async def cancel(self, task_id: str | None = None, reason: str = "cancelled by user") -> None:
        await self._ready()
        if task_id is None:
            self._emit(RunCancelRequested(run_id=self._run_id, reason=reason, source=self._name))
        else:
            self._emit(
                TaskCancelRequested(run_id=self._run_id, task_id=task_id, reason=reason, source=self._name)
            )
        await self._flush()
        self._wake.set()

    async def snapshot(self) -> dict[str, str]:
        await self._ready()
        return {t.id: t.status for t in self._state.in_order()}

    async def stats(self) -> dict[str, int]:
        """Loop counters: how well completions and events are batched, and where time goes."""
        return dict(self._stats)

    async def stop(self) -> None:
        """Stop driving the run (shutdown, or a test standing in for a crash). Running attempts are
        left to their sandboxes; the log has everything a successor needs to re-attach."""
        if self._main is not None and not self._main.done():
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    # ---- the loop ------------------------------------------------------------------------------

    def _ensure_main(self) -> asyncio.Task[RunFinished]:
        if self._main is None:
            self._main = asyncio.create_task(self._drive())
        return self._main

    async def _ready(self) -> None:
        self._ensure_main()
        await self._replayed.wait()

    async def _drive(self) -> RunFinished:
        sub = Subscription(self._bus, FOLDED, batch=5000)  # the kinds the fold reads, not the output
        while batch := await sub.next_batch(timeout=0):
            for ev in batch:
                self._state.apply(ev)
        if self._state.started is None:
            raise OmoiError(f"run {self._run_id}: the log has no run.started event")
        self._replayed.set()
        watcher = asyncio.create_task(self._watch(Subscription(self._bus, _WATCHED, sub.cursor)))
        try:
            for t in self._state.with_status("running"):
                self._track(t.id, t.attempt, self._executor.reattach(t.sandbox or "", t.id, t.attempt))
            while self._state.finished is None:
                waiting = self._state.awaiting_spec  # a goal's tasks come with spec.finished
                if self._state.plan_only_done or (waiting and self._state.cancel_reason is not None):
                    await self._finish()
                    continue
                if not waiting:
                    t0 = self._clock.monotonic()
                    completions, self._completions = self._completions, []
                    self._take(self._progress.step(self._clock.now(), completions))
                    self._count(steps=1, completions=len(completions), step_us=self._since(t0))
                    await self._flush()
                    if self._done() and not self._inflight and self._state.finished is None:
                        await self._finish()
                        continue
                t0 = self._clock.monotonic()
                await self._sleep_until_something_happens()
                self._count(idle_us=self._since(t0))
            return self._state.finished
        finally:
            self._closing = True
            watcher.cancel()
            for attempt in self._inflight.values():
                attempt.cancel()  # our wait for it, not the attempt: that belongs to its sandbox
            for helper in self._helpers:
                helper.cancel()

    async def _watch(self, sub: Subscription) -> None:
        while True:
            for ev in await sub.next_batch(timeout=5.0):
                self._state.apply(ev)
                self._wake.set()

    async def _sleep_until_something_happens(self) -> None:
        waits: list[asyncio.Task[object]] = [asyncio.create_task(self._wake.wait())]
        delay = self._progress.next_timer(self._clock.now())
        if delay is not None:
            waits.append(asyncio.create_task(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    def _done(self) -> bool:
        """Every task is terminal and the merge queue has settled each succeeded one (a cancelled
        run does not wait for merges)."""
        st = self._state
        return st.all_terminal() and (st.cancel_reason is not None or st.merges_settled())

    async def _finish(self) -> None:
        branch = commit = None
        st = self._state
        if not st.plan_only_done and st.outcome() == "succeeded":  # a failed run delivers nothing
            branch, commit = run_branch(self._run_id), st.integration_head
        self._take(self._progress.finish(self._clock.now(), branch=branch, commit=commit, error=None))
        await self._flush()

    # ---- plumbing ------------------------------------------------------------------------------

    def _emit(self, ev: Event) -> None:
        self._progress.emit(ev, self._clock.now())
        self._take(self._progress.take())

    def _take(self, decisions: Decisions) -> None:
        self._outbox += decisions.events
        for launch in decisions.launches:
            req = launch.request
            self._launches.append((req.task_id, req.attempt, self._executor.execute(launch.sandbox, req)))
        for c in decisions.cancels:  # the cancel request itself is already in the log
            self._helpers.add(asyncio.ensure_future(self._executor.cancel(c.sandbox, c.task_id, c.attempt)))

    async def _flush(self) -> None:
        """Publish what was decided, then (and only then) start what it announced."""
        if self._outbox:
            batch, self._outbox = self._outbox, []
            t0 = self._clock.monotonic()
            seqs = await self._bus.publish(batch)
            self._count(publishes=1, events=len(batch), publish_us=self._since(t0))
            self._state.last_seq = max(self._state.last_seq, *seqs)
            for ev, seq in zip(batch, seqs, strict=True):
                if ev.kind == "run.finished":  # hand back the event as the log holds it
                    self._state.finished = ev.model_copy(update={"seq": seq})
        launches, self._launches = self._launches, []
        for task_id, attempt, work in launches:
            self._track(task_id, attempt, work)

    def _track(self, task_id: str, attempt: int, work: Awaitable[TaskResult]) -> None:
        task: asyncio.Task[TaskResult] = asyncio.ensure_future(work)
        self._inflight[task_id] = task

        def done(fut: asyncio.Task[TaskResult]) -> None:
            if self._inflight.get(task_id) is fut:
                del self._inflight[task_id]
            if self._closing:
                return
            if fut.cancelled():
                outcome: Outcome = TaskResult(status="cancelled", error="execution was cancelled")
            else:
                outcome = fut.exception() or fut.result()
            self._completions.append((task_id, attempt, outcome))
            self._wake.set()

        task.add_done_callback(done)

    def _since(self, t0: float) -> int:
        return int((self._clock.monotonic() - t0) * 1e6)

    def _count(self, **deltas: int) -> None:
        for key, delta in deltas.items():
            self._stats[key] += delta
