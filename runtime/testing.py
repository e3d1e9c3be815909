"""Fakes for omoi's seams, shipped in the package so users' tests can drive actors in-process:
a clock that only moves when told, and an executor whose tasks finish when the test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from omoi.runtime.errors import SandboxLostError
from omoi.runtime.run.execution import TaskRequest, TaskResult


class FakeClock:
    """Time stands still until `advance`; sleepers wake in deadline order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._ids), fut))
        await fut

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._now += timedelta(seconds=seconds)
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())


Behaviour = Callable[[TaskRequest], TaskResult]


def succeed(req: TaskRequest) -> TaskResult:
    return TaskResult(status="succeeded", exit_code=0, commit=f"c-{req.task_id}-{req.attempt}")


class ScriptedExecutor:
    """Runs each attempt by calling `behaviour(request)`; records every request it saw.

    With `manual=True` attempts wait until `release(task_id)` so a test can hold tasks mid-flight."""

    def __init__(self, behaviour: Behaviour = succeed, *, manual: bool = False) -> None:
        self.behaviour, self.manual = behaviour, manual
        self.requests: list[TaskRequest] = []
        self.cancelled: list[tuple[str, int]] = []
        self._gates: dict[str, asyncio.Event] = {}
        self._running: dict[tuple[str, int], asyncio.Task[TaskResult]] = {}
        self.started = asyncio.Queue[str]()

    def sandbox_name(self, slot: int) -> str:
        return f"sandbox/{slot}"

    async def execute(self, sandbox: str, request: TaskRequest) -> TaskResult:
        self.requests.append(request)
        task = asyncio.ensure_future(self._run(request))
        self._running[(request.task_id, request.attempt)] = task
        return await asyncio.shield(task)  # like a remote call: the caller giving up stops nothing

    async def _run(self, request: TaskRequest) -> TaskResult:
        self.started.put_nowait(request.task_id)
        try:
            if self.manual:
                await self._gates.setdefault(request.task_id, asyncio.Event()).wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return TaskResult(status="cancelled", error="cancelled")
        return self.behaviour(request)

    def release(self, *task_ids: str) -> None:
        for tid in task_ids:
            self._gates.setdefault(tid, asyncio.Event()).set()

    async def reattach(self, sandbox: str, task_id: str, attempt: int) -> TaskResult:
        task = self._running.get((task_id, attempt))
        if task is None:
            raise SandboxLostError(sandbox, task_id, attempt)
        return await asyncio.shield(task)

    async def cancel(self, sandbox: str, task_id: str, attempt: int) -> None:
        self.cancelled.append((task_id, attempt))
        task = self._running.get((task_id, attempt))
        if task is not None:
            task.cancel()
