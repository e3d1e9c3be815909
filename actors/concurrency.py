"""The cluster-wide limits on model calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

from omoi.policies.concurrency import Semaphores
from omoi.runtime.clock import Clock, SystemClock

log = structlog.get_logger("omoi.concurrency")


class LivenessPort(Protocol):
    async def alive(self, holder: str) -> bool:
        """Whether the actor named `holder` still exists."""
        ...


class ConcurrencyActor:
    """Owns: one FIFO counting semaphore per provider/model key, as leases held or waited for.

    Handles `acquire` (returns once the lease holds a slot), `release` (gives a slot back or leaves
    the queue; repeated calls are harmless), `release_holder` (everything of a holder that died)
    and `stats`. While somebody waits, it checks every `sweep` seconds that the holders of the full
    keys are alive, so a killed agent's slot comes back even if nobody reports the death.
    If it dies: it is restarted empty; callers waiting in `acquire` get an error and their model
    call fails and is retried by the client, and leases held by calls in flight are forgotten,
    so for the length of those calls a key may admit more than its limit."""

    def __init__(
        self, liveness: LivenessPort | None = None, clock: Clock | None = None, sweep: float = 1.0
    ) -> None:
        self._sems = Semaphores()
        self._granted: dict[str, asyncio.Future[None]] = {}
        self._liveness, self._clock, self._sweep = liveness, clock or SystemClock(), sweep
        self._sweeper: asyncio.Task[None] | None = None

    async def acquire(self, key: str, limit: int, holder: str, lease: str) -> None:
        if lease not in self._granted:
            fut = asyncio.get_running_loop().create_future()
            self._granted[lease] = fut
            if self._sems.request(lease, key, limit, holder):
                fut.set_result(None)
            elif self._liveness is not None and self._sweeper is None:
                self._sweeper = asyncio.create_task(self._sweep_dead_holders())
        await asyncio.shield(self._granted[lease])

    async def release(self, lease: str) -> None:
        self._wake(self._sems.release(lease))
        fut = self._granted.pop(lease, None)
        if fut is not None and not fut.done():
            fut.cancel()

    async def release_holder(self, holder: str) -> None:
        self._wake(self._sems.release_holder(holder))

    async def stats(self) -> dict[str, dict[str, int]]:
        return self._sems.stats()

    def _wake(self, granted: list[str]) -> None:
        for lease in granted:
            fut = self._granted.get(lease)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def _sweep_dead_holders(self) -> None:
        """Owned by this actor; ends when nobody waits any more and starts again with the next waiter."""
        assert self._liveness is not None
        try:
            while holders := self._sems.holders_with_waiters():
                for holder in holders:
                    with contextlib.suppress(Exception):  # a failed check is no evidence of death
                        if holder and not await self._liveness.alive(holder):
                            log.info("concurrency.holder_dead", holder=holder)
                            await self.release_holder(holder)
                await self._clock.sleep(self._sweep)
        finally:
            self._sweeper = None
