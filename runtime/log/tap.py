"""One reader of the bus for every follower in a process.

The supervisor process hosts five followers (budget, guardian, discovery, conductor, scheduler).
Each used to long-poll the bus on its own, so every step of the graph cost the bus five reads, five
serializations of the same events and five actor round trips. Behind a `Tap` they share one read
of the log's tail: the bus serves one reader per process, and each follower filters what the tap
holds. Followers keep their own cursors, so nothing about delivery changes: at-least-once, in seq
order, nothing before it is durable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from omoi.runtime.log.events import Event
from omoi.runtime.log.subscription import advance, scan_after
from omoi.runtime.ports import BusPort

log = structlog.get_logger("omoi.tap")


class Tap:
    """A BusPort over another: `publish` passes through; `read` is served from a bounded window
    of the log's tail that one background read keeps current. A read from before the window (a
    follower folding the log from its start) goes to the bus itself, as it did without a tap.

    The window starts where the first waiting read starts, so a process that only replays never
    starts the background read. `keep`: events held (the window is trimmed to it past twice that)."""

    def __init__(self, bus: BusPort, *, keep: int = 20_000, batch: int = 5000, poll: float = 5.0) -> None:
        self.bus, self._keep, self._batch, self._poll = bus, keep, batch, poll
        self._events: list[Event] = []
        self._start: int | None = None  # the window holds every event in (start, tail]
        self._tail = 0
        self._moved: asyncio.Event | None = None
        self._reader: asyncio.Task[None] | None = None

    async def publish(self, events: Sequence[Event]) -> list[int]:
        return await self.bus.publish(events)

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        if self._start is None and timeout > 0:
            self._open(after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        scanned = after
        while True:
            if self._start is None or scanned < self._start:  # the window moved past the reader
                return await self.bus.read(scanned, prefixes, limit, max(0.0, deadline - loop.time()))
            events, scanned = self._serve(scanned, prefixes, limit)
            remaining = deadline - loop.time()
            if events or remaining <= 0:
                return events
            moved = self._moved
            assert moved is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), remaining)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _open(self, at: int) -> None:
        self._start = self._tail = at
        self._moved = asyncio.Event()
        self._reader = asyncio.create_task(self._follow())

    def _serve(self, after: int, prefixes: tuple[str, ...] | None, limit: int) -> tuple[list[Event], int]:
        """Matching events after `after`, and the seq up to which the window was looked at."""
        out, scanned = scan_after(self._events, after, prefixes, limit)
        return out, scanned if len(out) >= limit else max(scanned, self._tail)

    async def _follow(self) -> None:
        while True:
            try:
                batch = await self.bus.read(self._tail, None, self._batch, self._poll)
            except Exception:  # the bus restarting: readers wait on the window meanwhile
                log.warning("tap.read_failed", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            fresh, self._tail = advance(self._tail, batch)
            if not fresh:
                continue
            self._events += fresh
            if len(self._events) > 2 * self._keep:
                cut = len(self._events) - self._keep
                self._start = self._events[cut - 1].seq or self._start
                del self._events[:cut]
            assert self._moved is not None
            self._moved.set()
            self._moved = asyncio.Event()
