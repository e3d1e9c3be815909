"""A subscriber's own cursor over the log: the subscriber's queue, which it alone advances.

Because the queue is a position in the durable log, a slow subscriber holds nothing up and costs the
bus no memory, a dead one loses nothing, and replaying from any seq is the same call."""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator, Sequence

from omoi.runtime.log.events import Event, matches
from omoi.runtime.ports import BusPort


def advance(cursor: int, events: list[Event]) -> tuple[list[Event], int]:
    """The events past `cursor` and the cursor after them. Delivery is at-least-once, so anything
    at or below the cursor is a repeat and is dropped: every reader of the log moves this way."""
    fresh = [e for e in events if e.seq is not None and e.seq > cursor]
    return fresh, max((e.seq for e in fresh if e.seq is not None), default=cursor)


def scan_after(
    window: Sequence[Event], after: int, prefixes: tuple[str, ...] | None, limit: int
) -> tuple[list[Event], int]:
    """The events of `window` (sorted by seq) past `after` that match `prefixes`, at most `limit`,
    and the seq up to which the window was looked at. By seq, not by position: a row the store
    could not read leaves a gap in the seqs."""
    out: list[Event] = []
    scanned = after
    for ev in window[bisect.bisect_right(window, after, key=lambda e: e.seq or 0) :]:
        scanned = ev.seq or scanned
        if matches(ev.kind, prefixes):
            out.append(ev)
            if len(out) >= limit:
                break
    return out, scanned


class Subscription:
    """`poll`: how long one read may wait for news (a long-poll at the bus) when iterating."""

    def __init__(
        self,
        bus: BusPort,
        prefixes: tuple[str, ...] | None = None,
        after: int = 0,
        batch: int = 1000,
        poll: float = 1.0,
    ) -> None:
        self.bus, self.prefixes, self.cursor, self.batch, self.poll = bus, prefixes, after, batch, poll

    async def next_batch(self, timeout: float | None = None) -> list[Event]:
        """The next events after the cursor, waiting at most `timeout` s (default: `poll`)."""
        wait = self.poll if timeout is None else timeout
        fresh, self.cursor = advance(
            self.cursor, await self.bus.read(self.cursor, self.prefixes, self.batch, wait)
        )
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
