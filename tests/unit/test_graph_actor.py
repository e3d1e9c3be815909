"""The graph actor as a plain object: real bus class over an in-memory log, scripted sandboxes,
a fake clock. The same class runs as a Ray actor in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omoi.actors.bus import BusActor
from omoi.actors.graph import GraphActor
from omoi.runtime.errors import CycleError
from omoi.runtime.log.events import Event, RunStarted, TaskAdded
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.run.execution import TaskRequest, TaskResult
from omoi.runtime.run.state import fold
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.testing import FakeClock, ScriptedExecutor, succeed


def t(task_id: str, *deps: str, **kw: object) -> TaskSpec:
    return TaskSpec(id=task_id, run="true", deps=deps, **kw)  # type: ignore[arg-type]


class Harness:
    def __init__(
        self,
        specs: list[TaskSpec],
        behaviour: Callable[[TaskRequest], TaskResult] = succeed,
        *,
        max_parallel: int = 4,
        manual: bool = False,
    ) -> None:
        self.bus = BusActor(MemoryEventStore())
        self.specs = specs
        self.clock = FakeClock()
        self.executor = ScriptedExecutor(behaviour, manual=manual)
        self.max_parallel = max_parallel

    async def seed(self) -> None:
        await self.bus.publish(
            [
                # noop: no branches, so a succeeded task counts as merged (the queue has its own tests)
                RunStarted(run_id="r", repo="/repo", base_commit="base", sandbox="noop"),
                *[TaskAdded(run_id="r", task_id=s.id, spec=s, order=i) for i, s in enumerate(self.specs)],
            ]
        )

    def graph(self) -> GraphActor:
        return GraphActor("r", self.bus, self.executor, clock=self.clock, max_parallel=self.max_parallel)

    async def log(self) -> list[Event]:
        return await self.bus.read(0, limit=100_000)


async def settle() -> None:
    """Let every runnable coroutine run (the fake executor completes in a few loop turns)."""
    for _ in range(200):
        await asyncio.sleep(0)


def kinds_for(events: list[Event], task_id: str) -> list[str]:
    return [e.kind for e in events if getattr(e, "task_id", None) == task_id]


async def test_diamond_runs_in_dependency_order_and_integrates_sinks() -> None:
    h = Harness([t("a"), t("b", "a"), t("c", "a"), t("d", "b", "c")])
    await h.seed()
    finished = await asyncio.wait_for(h.graph().run(), 5)
    assert finished.status == "succeeded"
    assert finished.branch == "omoi/r/_merged"
    assert finished.seq
    started = [r.task_id for r in h.executor.requests]
    assert started[0] == "a"
    assert started[-1] == "d"
    assert set(started[1:3]) == {"b", "c"}
    d = next(r for r in h.executor.requests if r.task_id == "d")
    assert d.base == "base"  # the integration head: what a noop run merged is its base
    assert d.branch == "omoi/r/d"


async def test_max_parallel_bounds_running_tasks() -> None:
    h = Harness([t(f"t{i}") for i in range(6)], max_parallel=2, manual=True)
    await h.seed()
    run = asyncio.ensure_future(h.graph().run())
    await settle()
    assert len(h.executor.requests) == 2
    h.executor.release("t0")
    await settle()
    assert len(h.executor.requests) == 3
    h.executor.release(*[f"t{i}" for i in range(6)])
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    running, peak = 0, 0
    for ev in await h.log():
        running += {"task.started": 1, "task.succeeded": -1}.get(ev.kind, 0)
        peak = max(peak, running)
    assert peak == 2


async def test_retry_waits_for_backoff_on_the_clock() -> None:
    attempts: list[int] = []

    def flaky(req: TaskRequest) -> TaskResult:
        attempts.append(req.attempt)
        if req.attempt == 1:
            return TaskResult(status="failed", exit_code=1, error="command failed: exit code 1")
        return succeed(req)

    h = Harness([t("a", retries=2, backoff=30.0)], flaky)
    await h.seed()
    run = asyncio.ensure_future(h.graph().run())
    await settle()
    assert attempts == [1]
    h.clock.advance(29.0)
    await settle()
    assert attempts == [1], "retried before the backoff passed"
    h.clock.advance(1.0)
    finished = await asyncio.wait_for(run, 5)
    assert attempts == [1, 2]
    assert finished.status == "succeeded"
    log = await h.log()
    assert kinds_for(log, "a") == [
        "task.added",
        "task.ready",
        "task.started",
        "task.failed",
        "task.retrying",
        "task.ready",
        "task.started",
        "task.succeeded",
    ]
    retrying = next(e for e in log if e.kind == "task.retrying")
    assert retrying.attempt == 2
    assert retrying.delay_s == 30.0


async def test_final_failure_skips_dependents_with_reason() -> None:
    def fail_b(req: TaskRequest) -> TaskResult:
        if req.task_id == "b":
            return TaskResult(
                status="failed", exit_code=3, error="command failed: exit code 3", output_tail="oops"
            )
        return succeed(req)

    h = Harness([t("a"), t("b", "a"), t("c", "b"), t("d", "c"), t("e", "a")], fail_b)
    await h.seed()
    finished = await asyncio.wait_for(h.graph().run(), 5)
    state = fold("r", await h.log())
    assert finished.status == "failed"
    assert "task 'b' failed" in (finished.error or "")
    assert {i: s.status for i, s in state.tasks.items()} == {
        "a": "succeeded",
        "b": "failed",
        "c": "skipped",
        "d": "skipped",
        "e": "succeeded",
    }
    assert state.tasks["c"].error == "dependency 'b' failed"
    assert state.tasks["d"].error == "dependency 'c' skipped"
    assert finished.branch is None  # nothing to deliver from a failed run that merged nothing
    failed = next(e for e in await h.log() if e.kind == "task.failed")
    assert failed.output_tail == "oops"
    assert failed.final


async def test_cancel_a_running_task_and_then_the_run() -> None:
    h = Harness([t("a"), t("b"), t("c", "a")], manual=True)
    await h.seed()
    g = h.graph()
    run = asyncio.ensure_future(g.run())
    await settle()
    await g.cancel("a", reason="not needed")
    await settle()
    assert ("a", 1) in h.executor.cancelled
    await g.cancel(None, reason="user stop")
    finished = await asyncio.wait_for(run, 5)
    state = fold("r", await h.log())
    assert finished.status == "cancelled"
    assert state.tasks["a"].status == "cancelled"
    assert state.tasks["a"].error == "not needed"
    assert state.tasks["b"].status == "cancelled"
    assert state.tasks["c"].status in ("cancelled", "skipped")


async def test_tasks_added_mid_run_are_scheduled_and_bad_ones_refused() -> None:
    h = Harness([t("a"), t("b", "a")], manual=True)
    await h.seed()
    g = h.graph()
    run = asyncio.ensure_future(g.run())
    await settle()
    before = len(await h.log())
    with pytest.raises(CycleError):
        await g.add_tasks([t("x", "y"), t("y", "x")])
    assert len(await h.log()) == before, "a refused batch must publish nothing"
    await g.add_tasks([t("c", "a"), t("d", "c", "b")])
    h.executor.release("a", "b", "c", "d")
    finished = await asyncio.wait_for(run, 5)
    assert finished.status == "succeeded"
    assert [r.task_id for r in h.executor.requests][-1] == "d"


async def test_restarted_graph_replays_and_never_reruns_succeeded_tasks() -> None:
    h = Harness([t("a"), t("b", "a"), t("c", "b")], manual=True)
    await h.seed()
    first = h.graph()
    run = asyncio.ensure_future(first.run())
    h.executor.release("a")
    await settle()
    assert [r.task_id for r in h.executor.requests] == ["a", "b"]
    await first.stop()  # the first graph "dies" with b running
    await settle()
    assert run.cancelled()
    second = h.graph()  # same log, same sandboxes: b is re-attached, a is not run again
    run2 = asyncio.ensure_future(second.run())
    await settle()
    h.executor.release("b", "c")
    finished = await asyncio.wait_for(run2, 5)
    assert finished.status == "succeeded"
    assert [r.task_id for r in h.executor.requests] == ["a", "b", "c"]
    succeeded = [e.task_id for e in await h.log() if e.kind == "task.succeeded"]  # type: ignore[union-attr]
    assert sorted(succeeded) == ["a", "b", "c"]


async def test_lost_sandbox_is_retried_without_counting_a_failure() -> None:
    h = Harness([t("a", "b"), t("b")], manual=True)
    await h.seed()
    first = h.graph()
    run = asyncio.ensure_future(first.run())
    await settle()
    await first.stop()
    await settle()
    assert run.cancelled()
    h.executor = ScriptedExecutor()  # the sandboxes are gone (e.g. the whole driver died)
    finished = await asyncio.wait_for(h.graph().run(), 5)
    state = fold("r", await h.log())
    assert finished.status == "succeeded"
    assert state.tasks["b"].attempt == 2
    assert state.tasks["b"].failures == 0
    assert state.tasks["b"].interruptions == 1


# ---- property: random DAGs, random failures ----------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[TaskSpec], dict[tuple[str, int], bool]]:
    n = draw(st.integers(1, 12))
    specs = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        specs.append(
            TaskSpec(
                id=f"t{i}",
                run="true",
                deps=tuple(f"t{d}" for d in deps),
                retries=draw(st.integers(0, 2)),
                backoff=0,
            )
        )
    fails = {(f"t{i}", a): draw(st.booleans()) for i in range(n) for a in (1, 2, 3)}
    return specs, fails


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.integers(1, 4))
def test_no_task_starts_before_its_deps_succeeded_and_all_end(
    case: tuple[list[TaskSpec], dict[tuple[str, int], bool]], max_parallel: int
) -> None:
    specs, fails = case

    def behaviour(req: TaskRequest) -> TaskResult:
        if fails[(req.task_id, req.attempt)]:
            return TaskResult(status="failed", exit_code=1, error="boom")
        return succeed(req)

    async def scenario() -> list[Event]:
        h = Harness(specs, behaviour, max_parallel=max_parallel)
        await h.seed()
        await asyncio.wait_for(h.graph().run(), 10)
        return await h.log()

    log = asyncio.run(scenario())
    succeeded: set[str] = set()
    deps = {s.id: set(s.deps) for s in specs}
    for ev in log:
        if ev.kind == "task.started":
            assert deps[ev.task_id] <= succeeded, (
                f"{ev.task_id} started before {deps[ev.task_id] - succeeded}"
            )
        elif ev.kind == "task.succeeded":
            assert ev.task_id not in succeeded
            succeeded.add(ev.task_id)
    state = fold("r", log)
    assert state.finished is not None
    assert state.all_terminal()
    for s in specs:
        task = state.tasks[s.id]
        assert task.attempt <= s.retries + 1
        ancestors_failed = any(state.tasks[d].status != "succeeded" for d in s.deps)
        assert (task.status == "skipped") == ancestors_failed
    assert (state.finished.status == "succeeded") == all(
        t.status == "succeeded" for t in state.tasks.values()
    )
