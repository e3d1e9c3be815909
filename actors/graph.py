"""The graph actor: owns a run's DAG and drives it to the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from datetime import datetime

import structlog

from omoi.policies import retry
from omoi.policies.scheduling import ORDERINGS, free_slots
from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.errors import OmoiError
from omoi.runtime.events import (
    Event,
    RunCancelRequested,
    RunFinished,
    TaskAdded,
    TaskCancelled,
    TaskCancelRequested,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from omoi.runtime.execution import TaskRequest, TaskResult
from omoi.runtime.ports import BusPort, ExecutorPort, IntegratorPort
from omoi.runtime.runstate import RunState, TaskState, run_branch, task_branch
from omoi.runtime.subscription import Subscription
from omoi.runtime.tasks import TaskSpec

log = structlog.get_logger("omoi.graph")
_WATCHED = ("run.cancel_requested", "task.cancel_requested", "task.added")
Outcome = TaskResult | BaseException


class GraphActor:
    """Owns the run's task DAG and every task's status, as a fold over the event log, and the
    sandbox slots its running attempts hold.

    Handles `run` (drive the run to `run.finished` and return that event), `add_tasks` (validated
    first: a refused batch publishes nothing), `cancel` and `snapshot`. Emits `task.ready`,
    `task.started`, `task.succeeded`, `task.failed`, `task.retrying`, `task.skipped`,
    `task.cancelled` and `run.finished`; reads cancel requests and additions others publish.
    Every event is durable before the action it announces (write-ahead), so after a restart a replay
    of the log rebuilds exactly this state.
    If it dies: Ray restarts it and re-sends `run`; it replays the log and re-attaches to running
    attempts by sandbox name. A lost sandbox means a retry that does not count as a failure, and a
    succeeded task is never run again."""

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        executor: ExecutorPort,
        integrator: IntegratorPort,
        *,
        max_parallel: int = 4,
        ordering: str = "critical-path",
        clock: Clock | None = None,
        name: str = "graph",
    ) -> None:
        self._run_id, self._bus, self._executor, self._integrator = run_id, bus, executor, integrator
        self._max_parallel, self._order = max_parallel, ORDERINGS[ordering]
        self._clock, self._name = clock or SystemClock(), name
        self._state = RunState(run_id)
        self._outbox: list[Event] = []
        self._launches: list[tuple[str, Awaitable[TaskResult]]] = []
        self._inflight: dict[str, asyncio.Task[TaskResult]] = {}
        self._completions: list[tuple[str, int, Outcome]] = []
        self._cancelling: set[tuple[str, int]] = set()
        self._helpers: set[asyncio.Task[object]] = set()
        self._main: asyncio.Task[RunFinished] | None = None
        self._wake = asyncio.Event()
        self._replayed = asyncio.Event()
        self._closing = False
        self._backoff: set[str] = set()
        self._stats = {
            "steps": 0,
            "publishes": 0,
            "events": 0,
            "completions": 0,
            "publish_us": 0,
            "step_us": 0,
            "idle_us": 0,
        }

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

    async def stop(self) -> None:
        """Stop driving the run (shutdown, or a test standing in for a crash). Running attempts are
        left to their sandboxes; the log has everything a successor needs to re-attach."""
        if self._main is not None and not self._main.done():
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    async def stats(self) -> dict[str, int]:
        """Loop counters: how well completions and events are batched."""
        return dict(self._stats)

    async def snapshot(self) -> dict[str, str]:
        await self._ready()
        return {t.id: t.status for t in self._state.in_order()}

    # ---- the loop ------------------------------------------------------------------------------

    def _ensure_main(self) -> asyncio.Task[RunFinished]:
        if self._main is None:
            self._main = asyncio.create_task(self._drive())
        return self._main

    async def _ready(self) -> None:
        self._ensure_main()
        await self._replayed.wait()

    async def _drive(self) -> RunFinished:
        sub = Subscription(self._bus, None)
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
                t0 = self._clock.monotonic()
                self._step()
                self._stats["step_us"] += int((self._clock.monotonic() - t0) * 1e6)
                await self._flush()
                if self._state.all_terminal() and not self._inflight and self._state.finished is None:
                    await self._finish()
                    continue
                t0 = self._clock.monotonic()
                await self._sleep_until_something_happens()
                self._stats["idle_us"] += int((self._clock.monotonic() - t0) * 1e6)
            return self._state.finished
        finally:
            self._closing = True
            watcher.cancel()
            for task in [*self._inflight.values(), *self._helpers]:
                task.cancel()

    async def _watch(self, sub: Subscription) -> None:
        while True:
            for ev in await sub.next_batch(timeout=5.0):
                self._state.apply(ev)
                self._wake.set()

    async def _sleep_until_something_happens(self) -> None:
        waits: list[asyncio.Task[object]] = [asyncio.create_task(self._wake.wait())]
        delay = self._next_timer()
        if delay is not None:
            waits.append(asyncio.create_task(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        self._wake.clear()

    def _next_timer(self) -> float | None:
        now = self._clock.now()
        waits = [(nb - now).total_seconds() for i in self._backoff if (nb := self._state.tasks[i].not_before)]
        return max(0.0, min(waits)) if waits else None

    # ---- decisions (synchronous: state changes through the fold, actions wait for the flush) ----

    def _step(self) -> None:
        completions, self._completions = self._completions, []
        self._stats["steps"] += 1
        self._stats["completions"] += len(completions)
        for task_id, attempt, outcome in completions:
            self._on_completion(self._state.tasks[task_id], attempt, outcome)
        cancelling = self._state.tasks.keys() if self._state.cancel_reason else self._state.cancel_requested
        for task_id in sorted(cancelling, key=self._state.graph.topo_index):
            t = self._state.tasks[task_id]
            if not t.terminal:
                self._cancel(t, self._state.cancel_reason or t.cancel_reason or "cancelled")
        now = self._clock.now()
        # Skipping a task changes its dependents: keep going until nothing changes.
        while candidates := self._state.take_changed() + self._due(now):
            for task_id in candidates:
                t = self._state.tasks[task_id]
                if t.status not in ("pending", "ready"):
                    continue
                if blocker := self._state.blocker(task_id):
                    self._backoff.discard(task_id)
                    reason = f"dependency '{blocker.id}' {blocker.status}"
                    self._emit(
                        TaskSkipped(
                            run_id=self._run_id,
                            task_id=task_id,
                            attempt=t.attempt,
                            blocked_by=blocker.id,
                            source=self._name,
                            reason=reason,
                        )
                    )
                elif t.status == "pending" and self._state.deps_succeeded(task_id):
                    if t.not_before is not None and t.not_before > now:
                        self._backoff.add(task_id)
                    else:
                        self._backoff.discard(task_id)
                        self._emit(
                            TaskReady(
                                run_id=self._run_id, task_id=task_id, attempt=t.attempt + 1, source=self._name
                            )
                        )
        self._dispatch()

    def _due(self, now: datetime) -> list[str]:
        """Tasks whose retry backoff has passed."""
        due = [i for i in self._backoff if (nb := self._state.tasks[i].not_before) is None or nb <= now]
        self._backoff.difference_update(due)
        return due

    def _dispatch(self) -> None:
        ready = list(self._state.ids_with_status("ready"))
        n = free_slots(self._max_parallel, self._state.count("running"))
        if not ready or n == 0:
            return
        busy = {self._state.tasks[i].sandbox for i in self._state.ids_with_status("running")}
        slots = (
            s for s in (self._executor.sandbox_name(i) for i in range(self._max_parallel)) if s not in busy
        )
        depth, graph = self._state.graph.remaining_depth(), self._state.graph
        orders = {tid: graph.order(tid) for tid in ready}
        for task_id, sandbox in zip(self._order(ready, depth, orders)[:n], slots, strict=False):
            t = self._state.tasks[task_id]
            self._emit(
                TaskStarted(
                    run_id=self._run_id,
                    task_id=task_id,
                    attempt=t.attempt + 1,
                    sandbox=sandbox,
                    source=self._name,
                )
            )
            req = TaskRequest(
                run_id=self._run_id,
                task_id=task_id,
                attempt=t.attempt,
                command=t.spec.run,
                timeout=t.spec.timeout,
                env=t.spec.env,
                branch=task_branch(self._run_id, task_id),
                base=self._base(),
                merges=tuple(self._state.dep_branches(task_id)),
            )
            self._launches.append((task_id, self._executor.execute(sandbox, req)))

    def _on_completion(self, t: TaskState, attempt: int, outcome: Outcome) -> None:
        self._cancelling.discard((t.id, attempt))
        if t.terminal or t.status != "running" or t.attempt != attempt:
            return
        common = {"run_id": self._run_id, "task_id": t.id, "attempt": attempt, "source": self._name}
        cancel_reason = self._state.cancel_reason or t.cancel_reason
        if isinstance(outcome, TaskResult) and outcome.status == "succeeded":
            self._emit(
                TaskSucceeded(
                    **common,
                    branch=task_branch(self._run_id, t.id),
                    commit=outcome.commit,
                    duration_s=outcome.duration_s,
                )
            )
        elif cancel_reason is not None:
            self._emit(TaskCancelled(**common, reason=cancel_reason))
        elif isinstance(outcome, TaskResult) and outcome.status == "failed":
            decision = retry.after_failure(t.failures + 1, t.spec.retries, t.spec.backoff)
            self._emit(
                TaskFailed(
                    **common,
                    error=outcome.error or "failed",
                    exit_code=outcome.exit_code,
                    output_tail=outcome.output_tail,
                    final=not decision.retry,
                )
            )
            if decision.retry:
                self._emit(
                    TaskRetrying(
                        **{**common, "attempt": attempt + 1},
                        delay_s=decision.delay_s,
                        reason=outcome.error or "failed",
                    )
                )
        else:  # the sandbox died, or stopped the attempt without being asked to: not the task's fault
            reason = f"interrupted: {outcome.error if isinstance(outcome, TaskResult) else outcome}"
            if retry.after_interruption(t.interruptions).retry:
                self._emit(
                    TaskRetrying(**{**common, "attempt": attempt + 1}, reason=reason, counts_as_failure=False)
                )
            else:
                self._emit(TaskFailed(**common, error=reason, final=True))

    def _cancel(self, t: TaskState, reason: str) -> None:
        if t.status != "running":
            self._emit(
                TaskCancelled(
                    run_id=self._run_id, task_id=t.id, attempt=t.attempt, reason=reason, source=self._name
                )
            )
        elif (t.id, t.attempt) not in self._cancelling:
            self._cancelling.add((t.id, t.attempt))
            self._helpers.add(asyncio.ensure_future(self._executor.cancel(t.sandbox or "", t.id, t.attempt)))

    async def _finish(self) -> None:
        status, branch, commit, error = self._state.outcome(), None, None, None
        if status == "succeeded":
            try:
                # Every task branch already holds its ancestors' work, so merging the sinks (in
                # dependency order) merges everything, without a merge commit per ancestor.
                commit = await self._integrator.integrate(
                    self._run_id,
                    self._base(),
                    [task_branch(self._run_id, tid) for tid in self._state.graph.sinks()],
                )
                branch = run_branch(self._run_id)
            except OmoiError as exc:
                status, error = "failed", f"integration failed: {exc}"
        failed = next((t for t in self._state.in_order() if t.status == "failed"), None)
        if failed is not None and error is None:
            error = f"task '{failed.id}' failed: {failed.error}"
        self._emit(
            RunFinished(
                run_id=self._run_id,
                status=status,
                branch=branch,
                commit=commit,
                error=error,
                counts=self._state.counts(),
                source=self._name,
            )
        )
        await self._flush()

    # ---- plumbing ------------------------------------------------------------------------------

    def _emit(self, ev: Event) -> None:
        ev = ev.model_copy(update={"ts": self._clock.now()})
        self._state.apply(ev)
        self._outbox.append(ev)

    async def _flush(self) -> None:
        """Publish what was decided, then (and only then) start what it announced."""
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._stats["publishes"] += 1
            self._stats["events"] += len(batch)
            t0 = self._clock.monotonic()
            seqs = await self._bus.publish(batch)
            self._stats["publish_us"] += int((self._clock.monotonic() - t0) * 1e6)
            self._state.last_seq = max(self._state.last_seq, *seqs)
            for ev, seq in zip(batch, seqs, strict=True):
                if ev.kind == "run.finished":  # hand back the event as the log holds it
                    self._state.finished = ev.model_copy(update={"seq": seq})
        launches, self._launches = self._launches, []
        for task_id, work in launches:
            self._track(task_id, self._state.tasks[task_id].attempt, work)

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

    def _base(self) -> str:
        assert self._state.started is not None
        return self._state.started.base_commit
