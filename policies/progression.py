"""What follows from a run's state: readiness, skips, cancellations, dispatch, and what an attempt's
outcome means. Pure over a RunState, with the time passed in: the graph actor publishes the events
this returns, then carries out the actions (start an attempt, cancel one)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from omoi.policies import retry
from omoi.policies.scheduling import ORDERINGS, free_slots
from omoi.runtime.errors import SandboxUnplaceableError
from omoi.runtime.log.events import (
    Event,
    RunFinished,
    RunStatus,
    TaskCancelled,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from omoi.runtime.names import task_branch
from omoi.runtime.run.execution import TaskRequest, TaskResult
from omoi.runtime.run.state import RunState, TaskState

Outcome = TaskResult | BaseException


SLOT_DOWN_S = 60.0  # a slot that found no node is not sent tasks for this long, then tried again


@dataclass(frozen=True)
class Launch:
    sandbox: str
    request: TaskRequest


@dataclass(frozen=True)
class Cancel:
    sandbox: str
    task_id: str
    attempt: int


@dataclass
class Decisions:
    """Events to publish (already applied to the state) and actions to take once they are durable."""

    events: list[Event] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)


class Progression:
    """Advances a run. State beyond the fold: tasks waiting out a retry backoff, and attempts
    already asked to stop (both rebuilt from the fold after a restart)."""

    def __init__(
        self,
        state: RunState,
        *,
        source: str,
        max_parallel: int,
        ordering: str = "critical-path",
        sandbox_name: Callable[[int], str],
    ) -> None:
        self.state, self.source, self.max_parallel = state, source, max_parallel
        self.order, self.sandbox_name = ORDERINGS[ordering], sandbox_name
        self.backoff: set[str] = set()
        self.cancelling: set[tuple[str, int]] = set()
        self.down: dict[str, datetime] = {}  # slot -> until when nothing is sent to it (no node for it)
        self._out = Decisions()

    def emit(self, ev: Event, now: datetime) -> Event:
        """Stamp, apply and record an event: the only way this class changes the state."""
        ev = ev.model_copy(update={"ts": now})
        self.state.apply(ev)
        self._out.events.append(ev)
        return ev

    def take(self) -> Decisions:
        out, self._out = self._out, Decisions()
        return out

    def step(self, now: datetime, completions: Iterable[tuple[str, int, Outcome]] = ()) -> Decisions:
        for task_id, attempt, outcome in completions:
            self._on_completion(self.state.tasks[task_id], attempt, outcome, now)
        st = self.state
        for task_id in sorted(
            st.tasks.keys() if st.cancel_reason else st.cancel_requested, key=st.graph.topo_index
        ):
            t = st.tasks[task_id]
            if not t.terminal:
                self._cancel(t, st.cancel_reason or t.cancel_reason or "cancelled", now)
        for task_id in sorted(st.restart_requested, key=st.graph.topo_index):
            t = st.tasks[task_id]  # stopped here; `_on_completion` starts it again
            if t.status == "running" and (t.id, t.attempt) not in self.cancelling:
                self.cancelling.add((t.id, t.attempt))
                self._out.cancels.append(Cancel(t.sandbox or "", t.id, t.attempt))
        # Skipping a task changes its dependents: keep going until nothing changes.
        while candidates := st.take_changed() + self._due(now):
            for task_id in candidates:
                self._reconsider(st.tasks[task_id], now)
        self._dispatch(now)
        return self.take()

    def finish(
        self, now: datetime, *, branch: str | None, commit: str | None, error: str | None
    ) -> Decisions:
        """The run's last event, once every task is terminal (and integration, if any, is done)."""
        spec = self.state.spec
        if error is None and spec is not None and spec.status == "failed":
            error = f"the spec failed: {spec.error}"
        status: RunStatus = self.state.outcome() if error is None else "failed"
        failed = next((t for t in self.state.in_order() if t.status == "failed"), None)
        if failed is not None and error is None:
            error = f"task '{failed.id}' failed: {failed.error}"
        unmerged = next(iter(self.state.merge_failed.items()), None)
        if unmerged is not None and error is None:
            error = f"task '{unmerged[0]}' could not be merged: {unmerged[1]}"
        self.emit(
            RunFinished(
                run_id=self.state.run_id,
                status=status,
                branch=branch,
                commit=commit,
                error=error,
                counts=self.state.counts(),
                source=self.source,
            ),
            now,
        )
        return self.take()

    def next_timer(self, now: datetime) -> float | None:
        """Seconds until the earliest retry backoff ends, or a slot marked down may be tried again
        while tasks are ready, if any."""
        waits = [(nb - now).total_seconds() for i in self.backoff if (nb := self.state.tasks[i].not_before)]
        if self.down and self.state.ids_with_status("ready"):
            waits += [(until - now).total_seconds() for until in self.down.values()]
        return max(0.0, min(waits)) if waits else None

    # ---- internals -----------------------------------------------------------------------------

    def _common(self, t: TaskState, attempt: int) -> dict[str, Any]:
        return {"run_id": self.state.run_id, "task_id": t.id, "attempt": attempt, "source": self.source}

    def _reconsider(self, t: TaskState, now: datetime) -> None:
        if t.status not in ("pending", "ready"):
            return
        if blocker := self.state.blocker(t.id):
            self.backoff.discard(t.id)
            self.emit(
                TaskSkipped(
                    **self._common(t, t.attempt),
                    blocked_by=blocker.id,
                    reason=f"dependency '{blocker.id}' "
                    + ("could not be merged" if blocker.id in self.state.merge_failed else blocker.status),
                ),
                now,
            )
        elif t.status == "pending" and self.state.deps_done(t.id):
            if t.not_before is not None and t.not_before > now:
                self.backoff.add(t.id)
            else:
                self.backoff.discard(t.id)
                self.emit(TaskReady(**self._common(t, t.attempt + 1)), now)

    def _due(self, now: datetime) -> list[str]:
        due = [i for i in self.backoff if (nb := self.state.tasks[i].not_before) is None or nb <= now]
        self.backoff.difference_update(due)
        return due

    def _dispatch(self, now: datetime) -> None:
        st = self.state
        ready = list(st.ids_with_status("ready"))
        n = free_slots(self.max_parallel, st.count("running"))
        if not ready or n == 0:
            return
        busy = {st.tasks[i].sandbox for i in st.ids_with_status("running")}
        self.down = {s: until for s, until in self.down.items() if until > now}
        slots = (
            s
            for s in map(self.sandbox_name, range(self.max_parallel))
            if s not in busy and s not in self.down
        )
        orders = {tid: st.graph.order(tid) for tid in ready}
        assert st.started is not None
        for task_id, sandbox in zip(
            self.order(ready, st.graph.remaining_depth(), orders)[:n], slots, strict=False
        ):
            t = st.tasks[task_id]
            base = st.integration_head
            keep = t.keep_work
            self.emit(
                TaskStarted(**self._common(t, t.attempt + 1), sandbox=sandbox, base=base, keep_work=keep), now
            )
            request = TaskRequest(
                run_id=st.run_id,
                task_id=task_id,
                attempt=t.attempt,
                command=t.spec.run or "",
                agent=t.spec.agent,
                acceptance=t.spec.acceptance,
                timeout=t.spec.timeout,
                env=t.spec.env,
                branch=task_branch(st.run_id, task_id),
                base=base,
                keep_work=keep,
                network=t.spec.network,
            )
            self._out.launches.append(Launch(sandbox, request))

    def _on_completion(self, t: TaskState, attempt: int, outcome: Outcome, now: datetime) -> None:
        self.cancelling.discard((t.id, attempt))
        if t.terminal or t.status != "running" or t.attempt != attempt:
            return  # a late or repeated answer for an attempt already settled
        common = self._common(t, attempt)
        cancel_reason = self.state.cancel_reason or t.cancel_reason
        if isinstance(outcome, TaskResult) and outcome.status == "succeeded":
            self.emit(
                TaskSucceeded(
                    **common,
                    branch=task_branch(self.state.run_id, t.id),
                    commit=outcome.commit,
                    duration_s=outcome.duration_s,
                    node=outcome.node,
                ),
                now,
            )
        elif cancel_reason is not None:
            self.emit(TaskCancelled(**common, reason=cancel_reason), now)
        elif t.restart_reason is not None:  # however it ended, it was asked to start again
            reason = f"restarted: {t.restart_reason}"
            self.emit(
                TaskRetrying(**{**common, "attempt": attempt + 1}, reason=reason, counts_as_failure=False),
                now,
            )
        elif isinstance(outcome, TaskResult) and outcome.status == "failed":
            decision = retry.after_failure(t.failures + 1, t.spec.retries, t.spec.backoff)
            self.emit(
                TaskFailed(
                    **common,
                    error=outcome.error or "failed",
                    exit_code=outcome.exit_code,
                    output_tail=outcome.output_tail,
                    final=not decision.retry,
                ),
                now,
            )
            if decision.retry:
                self.emit(
                    TaskRetrying(
                        **{**common, "attempt": attempt + 1},
                        delay_s=decision.delay_s,
                        reason=outcome.error or "failed",
                    ),
                    now,
                )
        else:  # the sandbox died, or stopped the attempt unasked: not the task's fault
            if isinstance(outcome, SandboxUnplaceableError):  # its node is gone: use the slots left
                self.down[outcome.sandbox] = now + timedelta(seconds=SLOT_DOWN_S)
            reason = f"interrupted: {outcome.error if isinstance(outcome, TaskResult) else outcome}"
            if retry.after_interruption(t.interruptions).retry:
                self.emit(
                    TaskRetrying(
                        **{**common, "attempt": attempt + 1}, reason=reason, counts_as_failure=False
                    ),
                    now,
                )
            else:
                self.emit(TaskFailed(**common, error=reason, final=True), now)

    def _cancel(self, t: TaskState, reason: str, now: datetime) -> None:
        if t.status != "running":
            self.emit(TaskCancelled(**self._common(t, t.attempt), reason=reason), now)
        elif (t.id, t.attempt) not in self.cancelling:
            self.cancelling.add((t.id, t.attempt))
            self._out.cancels.append(Cancel(t.sandbox or "", t.id, t.attempt))
