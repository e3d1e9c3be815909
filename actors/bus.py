"""The event bus of one run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from omoi.runtime.events import Event, matches
from omoi.runtime.store import EventStore


class BusActor:
    """Appends events to the run's durable log, then makes them readable by every subscriber.

    State: the store (source of truth) and a bounded in-memory tail of recent events, so catching-up
    subscribers rarely touch disk. Handles `publish` (a batch is one call, durable before it returns)
    and `read` (long-poll from a subscriber's own cursor, filtered by kind prefix). Subscribers keep
    their cursor, so there is no shared queue for a slow or dead subscriber to block.
    If it dies: Ray restarts it; it reopens the store and goes on from the last seq on disk. A
    publish that was in flight is re-sent by Ray and stored once, because appends are idempotent by
    event id; readers simply poll again from their cursor."""

    def __init__(self, store: EventStore, recent: int = 20_000) -> None:
        self._store = store
        self._keep = recent
        self._recent: list[Event] = store.read(after=max(0, store.last_seq() - recent))
        self._changed: asyncio.Event | None = None

    async def publish(self, events: Sequence[Event]) -> list[int]:
        """Append durably, wake readers, and answer with each event's seq (not the events: the
        publisher has them, and shipping them back would double the serialization)."""
        stored = self._store.append(list(events))
        last_cached = (self._recent[-1].seq or 0) if self._recent else 0
        self._recent.extend(e for e in stored if (e.seq or 0) > last_cached)
        if len(self._recent) > 2 * self._keep:
            del self._recent[: len(self._recent) - self._keep]
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return [e.seq or 0 for e in stored]

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        scanned = after  # a narrow filter must not rescan the same events on every wake-up
        while True:
            events, scanned = self._read_now(scanned, prefixes, limit)
            remaining = deadline - loop.time()
            if events or remaining <= 0:
                return events
            if self._changed is None:
                self._changed = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def last_seq(self) -> int:
        return self._store.last_seq()

    def _read_now(self, after: int, prefixes: tuple[str, ...] | None, limit: int) -> tuple[list[Event], int]:
        """Matching events after `after`, and the seq up to which the log was looked at."""
        first = (self._recent[0].seq or 1) if self._recent else self._store.last_seq() + 1
        if after + 1 < first:
            events = self._store.read(after, prefixes, limit)
            return events, (events[-1].seq or after) if len(events) >= limit else self._store.last_seq()
        out: list[Event] = []
        scanned = after
        for ev in self._recent[max(0, after + 1 - first) :]:
            scanned = ev.seq or scanned
            if matches(ev.kind, prefixes):
                out.append(ev)
                if len(out) >= limit:
                    break
        return out, scanned

    async def close(self) -> None:
        self._store.close()
