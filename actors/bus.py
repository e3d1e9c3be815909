"""The event bus of one run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from omoi.runtime.log.events import Event
from omoi.runtime.log.store import EventStore
from omoi.runtime.log.subscription import scan_after


class BusActor:
    """Delivers a run's events from its durable log to every subscriber, and appends what others
    publish to that log first.

    State: the store (the source of truth), a bounded in-memory tail of the log, contiguous up to
    `_tail`, so subscribers rarely touch disk, and the publishes waiting for the next commit.
    Handles `publish` (a batch is one call, durable before it returns; publishes that arrive
    together share one commit), `read` (long-poll from the subscriber's own cursor, filtered by
    kind prefix; there is no shared queue for a slow or dead subscriber to block) and `sync` (take
    in rows another writer appended: the graph writes its own decisions ahead, see
    `cluster.deploy.WriteAheadBus`).
    Nothing is delivered before it is in the log. A lost `sync` delays delivery by at most
    `resync` seconds, because long-polls re-read the log that often.
    If it dies: Ray restarts it; it reloads its tail from the log and goes on. A publish in flight
    is re-sent by Ray and stored once (appends are idempotent by event id); readers poll again
    from their cursor."""

    def __init__(self, store: EventStore, recent: int = 20_000, resync: float = 1.0) -> None:
        self._store, self._keep, self._resync = store, recent, resync
        self._recent: list[Event] = store.read(after=max(0, store.last_seq() - recent))
        self._tail = (self._recent[-1].seq or 0) if self._recent else store.last_seq()
        self._changed: asyncio.Event | None = None
        self._waiting: list[tuple[list[Event], asyncio.Future[list[int]]]] = []  # the next commit's
        self._committer: asyncio.Task[None] | None = None

    async def publish(self, events: Sequence[Event]) -> list[int]:
        """Append durably, wake readers, and answer with each event's seq (not the events: the
        publisher has them, and shipping them back would double the serialization).

        Group commit: publishes that arrive while a commit is being written share the next one,
        one transaction and one fsync for all of them, in the order they arrived. Each is answered
        only once it is durable, and a batch that cannot be stored fails only its own publish."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[int]] = loop.create_future()
        self._waiting.append((list(events), answer))
        if self._committer is None or self._committer.get_loop() is not loop:  # (a test's new loop)
            self._committer = loop.create_task(self._commit())
        return await answer

    async def _commit(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(0)  # publishes already handed to this loop join the group
                group, self._waiting = self._waiting, []
                self._write(group)
        finally:
            self._committer = None

    def _write(self, group: list[tuple[list[Event], asyncio.Future[list[int]]]]) -> None:
        try:
            stored = self._store.append([e for events, _ in group for e in events])
        except Exception as exc:
            if len(group) > 1:  # one publisher's bad batch must not fail the others'
                for one in group:
                    self._write([one])
            elif not group[0][1].done():
                group[0][1].set_exception(exc)
            return
        self._absorb(stored)
        at = 0
        for events, answer in group:
            if not answer.done():  # a publisher cancelled meanwhile: its events are stored all the same
                answer.set_result([e.seq or 0 for e in stored[at : at + len(events)]])
            at += len(events)

    async def sync(self) -> int:
        self._absorb([])
        return self._tail

    async def last_seq(self) -> int:
        return await self.sync()

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
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, self._resync))
            except TimeoutError:
                self._absorb([])

    def _absorb(self, stored: Sequence[Event]) -> None:
        """Extend the tail with `stored` if it continues it, else with whatever the log has beyond it."""
        fresh = sorted((e for e in stored if (e.seq or 0) > self._tail), key=lambda e: e.seq or 0)
        contiguous = all((e.seq or 0) == self._tail + 1 + i for i, e in enumerate(fresh))
        new = fresh if fresh and contiguous else self._store.read(after=self._tail)
        if not new:
            return
        self._recent.extend(new)
        self._tail = new[-1].seq or self._tail
        if len(self._recent) > 2 * self._keep:
            del self._recent[: len(self._recent) - self._keep]
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _read_now(self, after: int, prefixes: tuple[str, ...] | None, limit: int) -> tuple[list[Event], int]:
        """Matching events after `after`, and the seq up to which the log was looked at."""
        first = (self._recent[0].seq or 1) if self._recent else self._tail + 1
        if after + 1 < first:
            events = self._store.read(after, prefixes, limit)
            return events, (events[-1].seq or after) if len(events) >= limit else self._tail
        return scan_after(self._recent, after, prefixes, limit)

    async def close(self) -> None:
        self._store.close()
