"""The integrator: the run's merge queue, sole writer of `omoi/<run>/_merged`."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import structlog

from omoi.actors import merging
from omoi.actors.merge_requests import RungRequests
from omoi.policies.merge.ladder import BATCH, climb, halves, merge_order
from omoi.runtime import names
from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.errors import OmoiError
from omoi.runtime.git import repo as git
from omoi.runtime.log import events as E
from omoi.runtime.log.events import Event
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.merge.prompts import failed_command
from omoi.runtime.merge.state import Entry, MergeState
from omoi.runtime.ports import BusPort, ExecutorPort

log = structlog.get_logger("omoi.integrator")
RADAR_INTERVAL_S = 30.0


class IntegratorActor:
    """Owns the merge queue: every succeeded task's branch on its way to the integration head, as
    a fold over the log (`runtime.merge.state`), and the rung attempts it runs on its sandbox slot.

    Handles `run` (follow the log until the run ends; a repeated call joins) and `stop`. Emits
    `merge.queued` when a task succeeds; `merge.started`, `verify.*` and `merge.succeeded` as a
    batch of ready branches (dependencies merged, fewest predicted conflicts first) is merged
    and verified, the head moving only once the checks pass (a red batch is bisected, a single
    red branch retried once for flakes); `merge.conflicted` and `merge.resolved` along the
    conflict ladder (rule, rerun, agent, resolver, human), `merge.needs_human`, `merge.failed`;
    and `merge.conflict_predicted` from its radar over running branches. Reads
    `merge.human_resolved` (`omoi resolve`). The branch moves to a verified head just before its
    `merge.succeeded` is published, so whoever reads that event finds the branch there.
    If it dies: Ray restarts it and re-sends `run`; it folds the log, puts the branch back at the
    last verified head, and redoes whatever step was under way (a merge, a check, a rung attempt)."""

    def __init__(
        self,
        run_id: str,
        git_dir: str | Path,
        bus: BusPort,
        executor: ExecutorPort | None,
        *,
        slot: str = "",
        clock: Clock | None = None,
        radar_interval: float = RADAR_INTERVAL_S,
        name: str = "integrator",
    ) -> None:
        self._run_id, self._git, self._bus, self._exec = run_id, Path(git_dir), bus, executor
        self._slot = slot
        self._clock, self._radar_every, self._name = clock or SystemClock(), radar_interval, name
        self._st = MergeState(run_id)
        self._asks, self._counts = RungRequests(self._st, run_id), merging.ConflictCounts()
        self._main: asyncio.Task[str] | None = None
        self._wake = asyncio.Event()
        self._working: dict[str, asyncio.Task[None]] = {}
        self._mine: set[str] = set()  # ids of events published and applied here, not yet seen back
        self._radar_at = 0.0

    async def run(self) -> str:
        """Merge until the run ends; returns the integration head."""
        if self._main is None:
            self._main = asyncio.create_task(self._drive())
        return await asyncio.shield(self._main)

    async def stop(self) -> None:  # shutdown, or a test standing in for a crash
        if self._main is not None and not self._main.done():
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    # ---- the loop ------------------------------------------------------------------------------

    async def _drive(self) -> str:
        sub = Subscription(self._bus, MergeState.READS, batch=5000)
        for ev in await sub.so_far():
            self._st.apply(ev)
        if self._st.sandbox == "noop":  # no branches are written: succeeded means merged
            return self._st.base
        if self._st.head:  # the head the log verified is the branch's, whatever a crash left
            await asyncio.to_thread(git.set_branch, self._git, names.run_branch(self._run_id), self._st.head)
        follower = asyncio.create_task(self._follow(sub))
        self._radar_at = self._clock.monotonic() + self._radar_every
        try:
            while not self._st.over:
                await self._step()
                await self._sleep()
        finally:
            follower.cancel()
            for work in self._working.values():
                work.cancel()
        return self._st.integration_head

    async def _follow(self, sub: Subscription) -> None:
        while True:
            for ev in await sub.next_batch(timeout=5.0):
                if ev.id in self._mine:
                    self._mine.discard(ev.id)
                    continue
                self._st.apply(ev)
                self._wake.set()

    async def _sleep(self) -> None:
        delays = [self._radar_at - self._clock.monotonic()]
        now, limit = self._clock.now(), self._st.merge_timeout_s
        for e in self._st.waiting_on_person():
            if limit is not None and e.waiting_since is not None:
                delays.append(limit - (now - e.waiting_since).total_seconds())
        timer = asyncio.ensure_future(self._clock.sleep(max(0.0, min(delays))))
        woke = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([timer, woke], return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            woke.cancel()
        self._wake.clear()

    async def _step(self) -> None:
        fresh = [e for e in self._st.entries.values() if not e.announced]
        await self._publish([E.MergeQueued(**self._of(e), commit=e.tip) for e in fresh])
        for e in self._st.waiting_on_person():
            await self._person(e)
        for e in list(self._st.entries.values()):
            rung_due = e.status == "conflicted" and e.rung in ("regenerate", "rerun", "agent", "resolver")
            if rung_due and e.task_id not in self._working:
                self._working[e.task_id] = asyncio.create_task(self._rung(e))
        if self._clock.monotonic() >= self._radar_at:
            self._radar_at = self._clock.monotonic() + self._radar_every
            await self._radar()
        ready = [e.task_id for e in self._st.mergeable() if e.task_id not in self._working]
        if ready and not self._st.over:
            await self._merge(ready)
            self._wake.set()  # a batch takes at most 4: step again at once for the rest

    # ---- merging -------------------------------------------------------------------------------

    async def _merge(self, ready: list[str]) -> None:
        head = self._st.integration_head
        tips = {t: self._st.entries[t].tip for t in ready}  # room for all in one batch: plan order
        counts = await asyncio.to_thread(self._counts, self._git, head, tips) if len(ready) > BATCH else {}
        batch: list[tuple[str, merging.Onto]] = []
        for tid in merge_order(ready, counts, self._st.order):
            if len(batch) == BATCH:
                break
            e = self._st.entries[tid]
            o = await asyncio.to_thread(merging.onto, self._git, head, e.tip or head, tid)
            out: list[Event] = []
            if o.resolved:
                files = tuple(f for f, _ in o.resolved)
                how = ", ".join(f"{f}: {rule}" for f, rule in o.resolved)
                out.append(E.MergeConflicted(**self._of(e), files=files, head=head, next="rule"))
                out.append(E.MergeResolved(**self._of(e), files=files, how="rule", detail=how))
            if not o.clean:
                out += self._climb(e, o.unresolved, head)
            else:
                batch.append((tid, o))
                head = o.head
            await self._publish(out)
        if batch:
            await self._land([t for t, _ in batch], head, {t: o.changed for t, o in batch})

    async def _land(self, tasks: list[str], candidate: str, changed: dict[str, tuple[str, ...]]) -> None:
        """Verify the candidate; advance the head if green, else bisect down to the culprit."""
        old = self._st.integration_head
        await self._publish(
            [E.MergeStarted(run_id=self._run_id, tasks=tuple(tasks), head=old, source=self._name)]
        )
        failure = await self._verify(tasks, candidate)
        if failure is None:
            out: list[Event] = []
            for tid in tasks:
                e = self._st.entries[tid]
                if e.rung is not None and e.rung != "rule":
                    out.append(E.MergeResolved(**self._of(e), files=e.files, **self._asks.resolved(e)))  # type: ignore[arg-type]
                out.append(E.MergeSucceeded(**self._of(e), head=candidate, files=changed.get(tid, ())))
            # branch first: the run may end once the event is in (a lone move is undone on restart)
            await asyncio.to_thread(git.set_branch, self._git, names.run_branch(self._run_id), candidate)
            await self._publish(out)
            return
        if len(tasks) > 1:  # bisect: each half is merged onto the head as it is by then
            for half in halves(tasks):
                await self._merge(half)
            return
        e = self._st.entries[tasks[0]]
        command, code, tail = failure
        detail = f"`{command}` exited {code} on the merged result:\n{tail}"
        await self._publish(self._climb(e, (), old, detail=detail, semantic=True))

    async def _verify(self, tasks: list[str], candidate: str) -> tuple[str, int | None, str] | None:
        """None when the checks pass on the candidate (a lone branch gets a second round)."""
        commands = self._asks.checks(tasks)
        if not commands:
            return None
        failure: tuple[str, int | None, str] | None = None
        for round_no in (1, 2) if len(tasks) == 1 else (1,):
            ids = {"run_id": self._run_id, "tasks": tuple(tasks), "commit": candidate, "round": round_no}
            await self._publish([E.VerifyStarted(**ids, commands=commands, source=self._name)])
            res = await self._execute(self._asks.verify(candidate, commands, self._st.verifies))
            if res is not None and res.status == "succeeded":
                await self._publish([E.VerifyPassed(**ids, duration_s=res.duration_s, source=self._name)])
                return None
            tail = res.output_tail if res is not None else "the check's sandbox was lost"
            code = res.exit_code if res is not None else None
            failure = (failed_command(commands, tail), code, tail[-4000:])
            v = E.VerifyFailed(
                **ids, command=failure[0], exit_code=code, output_tail=tail[-4000:], source=self._name
            )
            await self._publish([v])
        return failure

    # ---- the ladder ----------------------------------------------------------------------------

    def _climb(
        self, e: Entry, files: tuple[str, ...], head: str, *, detail: str = "", semantic: bool = False
    ) -> list[Event]:
        is_agent, made = self._st.specs[e.task_id].agent is not None, bool(self._asks.regenerators(files))
        return climb(self._of(e), e, is_agent, files, head, self._st.merge_timeout_s, detail, semantic, made)

    async def _rung(self, e: Entry) -> None:
        """One rung's attempt in the merge slot: its new tip is queued, or the ladder goes on."""
        try:
            head, on_merge = self._st.integration_head, e.rung != "rerun"  # a re-run starts from the head
            tree = await asyncio.to_thread(merging.rung_tree, self._git, head, e.tip) if on_merge else None
            res = await self._execute(self._asks.rung(e, tree))
            if res is not None and res.status == "succeeded" and res.commit:
                await self._publish([E.MergeQueued(**self._of(e), commit=res.commit)])
                return
            # the attempt reset the task's branch to the head: the work to merge is still `e.tip`
            branch = names.task_branch(self._run_id, e.task_id)
            await asyncio.to_thread(git.set_branch, self._git, branch, e.tip)
            why = (res.error or "failed") if res is not None else "its sandbox was lost"
            head = self._st.integration_head
            detail = e.detail if not e.files else f"the {e.rung} attempt failed: {why}"
            await self._publish(self._climb(e, e.files, head, detail=detail, semantic=not e.files))
        finally:
            self._working.pop(e.task_id, None)
            self._wake.set()

    async def _person(self, e: Entry) -> None:
        limit, since = self._st.merge_timeout_s, e.waiting_since
        if e.take is not None:
            head, branch = self._st.integration_head, names.task_branch(self._run_id, e.task_id)
            if e.take == "branch":
                tip = await asyncio.to_thread(git.branch_head, self._git, branch) or e.tip
            else:
                tip = await asyncio.to_thread(merging.take, self._git, head, e.tip, e.take, e.task_id)
            await self._publish([E.MergeQueued(**self._of(e), commit=tip)])
        elif limit is not None and since is not None and (self._clock.now() - since).total_seconds() >= limit:
            why = f"nobody resolved the conflict in {', '.join(e.files)} within {limit:g}s (--merge-timeout)"
            await self._publish([E.MergeFailed(**self._of(e), reason=why)])

    # ---- the radar -----------------------------------------------------------------------------

    async def _radar(self) -> None:
        running = {t: base for t, (_attempt, base) in self._st.running.items()}
        head = self._st.integration_head
        found = await asyncio.to_thread(merging.radar, self._git, self._run_id, head, running)
        fresh = [(t, f) for t, f in found.items() if self._st.predicted.get(t) != f]
        await self._publish(
            [
                E.MergeConflictPredicted(run_id=self._run_id, tasks=t, files=f, head=head, source=self._name)
                for t, f in fresh
            ]
        )

    # ---- plumbing ------------------------------------------------------------------------------

    def _of(self, e: Entry) -> dict[str, Any]:
        return {"run_id": self._run_id, "task_id": e.task_id, "source": self._name}

    async def _execute(self, request: Any) -> Any:
        if self._exec is None:
            raise OmoiError("this integrator has no sandbox slot to run checks or rung attempts in")
        try:
            return await self._exec.execute(self._slot, request)
        except OmoiError as exc:
            log.warning(
                "integrator.attempt_lost", run_id=self._run_id, task_id=request.task_id, error=str(exc)
            )
            return None

    async def _publish(self, events: list[Event]) -> None:
        """Durable first; applied here at once (the follower skips them when they come back)."""
        if not events:
            return
        stamped = [ev.model_copy(update={"ts": self._clock.now()}) for ev in events]
        await self._bus.publish(stamped)
        for ev in stamped:
            self._mine.add(ev.id)
            self._st.apply(ev)
