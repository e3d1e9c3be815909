"""The shape of an actor that follows its run's log: fold a batch, decide, publish durably, act."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.log.events import Event
from omoi.runtime.log.subscription import Subscription, advance
from omoi.runtime.ports import BusPort

log = structlog.get_logger("omoi.follower")


class Follower:
    """Subclasses say what they follow (`FOLLOWS`), how an event changes their fold (`_apply`),
    what they decide over it (`_decide`, events with ids derived from what they decide, so a
    replay or a repeated publish writes nothing twice) and what they do once that is durable
    (`_act`). Their own events are applied as soon as they are published; met again in the log,
    they are skipped. With an `interval`, `_timed` decides too, every `interval` seconds of the
    clock; a subclass whose `_due` names a time on the clock decides again then, without waiting
    for the log to move (a fake clock's `advance` wakes it)."""

    FOLLOWS: tuple[str, ...] = ()
    POLL = 30.0  # longest wait on the log (bounds how long `stop` takes)

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
        self._log = Subscription(bus, self.FOLLOWS, poll=min(interval or self.POLL, self.POLL))
        self._follower: asyncio.Task[None] | None = None
        self._own: set[str] = set()  # ids of what this life published and applied already
        self._moved = asyncio.Condition()  # notified once a batch is folded and decided on

    async def start(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def caught_up(self, seq: int) -> None:
        """Return once the log up to `seq` (of the kinds it follows) is folded and decided on."""
        async with self._moved:
            await self._moved.wait_for(lambda: self._log.cursor >= seq)

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    def _apply(self, ev: Event) -> None:
        raise NotImplementedError

    def _decide(self) -> list[Event]:
        raise NotImplementedError

    def _due(self) -> float | None:
        """Seconds on the clock until `_decide` should run again though nothing was logged."""
        return None

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
                for ev in await self._next():
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
                async with self._moved:
                    self._moved.notify_all()
            except Exception:  # the bus or a peer restarting: decided again from the fold
                log.warning("follower.step_failed", actor=self._name, exc_info=True)
                await asyncio.sleep(0.5)

    async def _next(self) -> list[Event]:
        """The log's next batch, or nothing once `_due` comes on the clock. A read that loses
        the race is dropped, not awaited: the cursor moves only with a batch that is used."""
        due = self._due()
        if due is None:
            return await self._log.next_batch(timeout=self._wait())
        log = self._log
        wait = self._wait()
        wait = log.poll if wait is None else wait
        reading = asyncio.ensure_future(log.bus.read(log.cursor, log.prefixes, log.batch, wait))
        reading.add_done_callback(lambda t: t.cancelled() or t.exception())  # a lost read's end
        sleeping = asyncio.ensure_future(self._clock.sleep(due))
        try:
            await asyncio.wait({reading, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            if not reading.done():
                reading.cancel()
        if not reading.done() or reading.cancelled():
            return []
        fresh, log.cursor = advance(log.cursor, reading.result())
        return fresh

    def _wait(self) -> float | None:
        if self._interval is None:
            return None
        return min(self._log.poll, max(0.0, self._next_tick - self._clock.monotonic()))
