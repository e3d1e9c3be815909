"""A subscriber's own cursor over the log: the subscriber's queue, which it alone advances.

Because the queue is a position in the durable log, a slow subscriber holds nothing up and costs the
bus no memory, a dead one loses nothing, and replaying from any seq is the same call."""

from __future__ import annotations

from collections.abc import AsyncIterator

from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort


class Subscription:
    def __init__(
        self, bus: BusPort, prefixes: tuple[str, ...] | None = None, after: int = 0, batch: int = 1000
    ) -> None:
        self.bus, self.prefixes, self.cursor, self.batch = bus, prefixes, after, batch

    async def next_batch(self, timeout: float = 1.0) -> list[Event]:
        """The next events after the cursor (at-least-once: anything at or below it is dropped)."""
        events = await self.bus.read(self.cursor, self.prefixes, self.batch, timeout)
        fresh = [e for e in events if e.seq is not None and e.seq > self.cursor]
        if fresh:
            self.cursor = max(e.seq for e in fresh if e.seq is not None)
        return fresh

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            for ev in await self.next_batch():
                yield ev

    async def so_far(self) -> list[Event]:
        """Every matching event the log holds now, past the cursor (which moves to the end): what
        an actor folds its state from when it starts again."""
        out: list[Event] = []
        while batch := await self.next_batch(timeout=0):
            out += batch
        return out
