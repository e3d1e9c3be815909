"""The shape of an actor that follows its run's log: fold a batch, decide, publish durably, act."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.log.events import Event
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.ports import BusPort

log = structlog.get_logger("omoi.follower")


class Follower:
    """Subclasses say what they follow (`FOLLOWS`), how an event changes their fold (`_apply`),
    what they decide over it (`_decide`, events with ids derived from what they decide, so a
    replay or a repeated publish writes nothing twice) and what they do once that is durable
    (`_act`). Their own events are applied as soon as they are published; met again in the log,
    they are skipped. With an `interval`, `_timed` decides too, every `interval` seconds of the
    clock."""

    FOLLOWS: tuple[str, ...] = ()

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        name: str,
        *,
        interval: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._run_id, self._bus, self._name = run_id, bus, name
        self._interval, self._clock = interval, clock or SystemClock()
        self._next_tick = self._clock.monotonic() + (interval or 0.0)
        self._log = Subscription(bus, self.FOLLOWS, poll=min(interval or 30.0, 30.0))
        self._follower: asyncio.Task[None] | None = None
        self._own: set[str] = set()  # ids of what this life published and applied already

    async def start(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    def _apply(self, ev: Event) -> None:
        raise NotImplementedError

    def _decide(self) -> list[Event]:
        raise NotImplementedError

    def _timed(self) -> list[Event]:
        """What the timer decides (nothing, by default)."""
        return []

    async def _act(self) -> None:
        """What follows once the decisions are durable (nothing, by default)."""

    async def _follow(self) -> None:
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():  # asyncio.wait_for (3.11) can swallow a cancel
                raise asyncio.CancelledError
            try:
                for ev in await self._log.next_batch(timeout=self._wait()):
                    if ev.id not in self._own:
                        self._apply(ev)
                decided = self._decide()
                if self._interval is not None and self._clock.monotonic() >= self._next_tick:
                    self._next_tick = self._clock.monotonic() + self._interval
                    decided += self._timed()
                if decided:
                    seqs = await self._bus.publish(decided)
                    for ev, seq in zip(decided, seqs, strict=True):
                        self._own.add(ev.id)
                        self._apply(ev.model_copy(update={"seq": seq}))
                await self._act()
            except Exception:  # the bus or a peer restarting: decided again from the fold
                log.warning("follower.step_failed", actor=self._name, exc_info=True)
                await asyncio.sleep(0.5)

    def _wait(self) -> float | None:
        if self._interval is None:
            return None
        return min(self._log.poll, max(0.0, self._next_tick - self._clock.monotonic()))
