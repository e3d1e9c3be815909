"""The cluster-wide limits on model calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import Protocol

import structlog

from omoi.policies.concurrency import Semaphores
from omoi.runtime.clock import Clock, SystemClock

log = structlog.get_logger("omoi.concurrency")
_GONE = 10_000  # released leases remembered, so a late `hold` cannot claim one


class LivenessPort(Protocol):
    async def alive(self, holder: str) -> bool:
        """Whether the actor named `holder` still exists."""
        ...


class ConcurrencyActor:
    """Owns: one FIFO counting semaphore per provider/model key, as leases held or waited for.

    Handles `acquire` (returns once the lease holds a slot), `hold` (open for as long as the lease
    is held), `release` (gives a slot back or leaves the queue; repeated calls are harmless),
    `release_holder` (everything of a holder that died) and `stats`. While somebody waits, it
    checks every `sweep` seconds that the holders of the full keys are alive, so a killed agent's
    slot comes back even if nobody reports the death.
    If it dies: Ray restarts it empty and re-sends every call in flight. Waiting `acquire`s queue
    again, and each held lease's open `hold` re-claims its slot, so the table is rebuilt from its
    callers and the limits hold across the restart. A released lease's late `hold` claims nothing."""

    def __init__(
        self, liveness: LivenessPort | None = None, clock: Clock | None = None, sweep: float = 1.0
    ) -> None:
        self._sems = Semaphores()
        self._granted: dict[str, asyncio.Future[None]] = {}
        self._released: dict[str, asyncio.Future[None]] = {}  # lease -> resolved when released
        self._gone: OrderedDict[str, None] = OrderedDict()  # recently released leases
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

    async def hold(self, key: str, limit: int, holder: str, lease: str) -> None:
        """Returns when `lease` is released. A lease this actor does not know, and has not seen
        released, was held before a restart: it is claimed back at once."""
        loop = asyncio.get_running_loop()
        if lease in self._gone:
            return
        if lease not in self._granted:
            self._sems.claim(lease, key, limit, holder)
            self._granted[lease] = loop.create_future()
            self._granted[lease].set_result(None)
        await asyncio.shield(self._released.setdefault(lease, loop.create_future()))

    async def release(self, lease: str) -> None:
        self._wake(self._sems.release(lease))
        fut = self._granted.pop(lease, None)
        if fut is not None and not fut.done():
            fut.cancel()
        done = self._released.pop(lease, None)
        if done is not None and not done.done():
            done.set_result(None)
        self._gone[lease] = None
        while len(self._gone) > _GONE:
            self._gone.popitem(last=False)

    async def release_holder(self, holder: str) -> None:
        for lease in self._sems.leases_of(holder):
            await self.release(lease)

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
