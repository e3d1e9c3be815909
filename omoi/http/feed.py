"""The live tail of a run's log, fanned out to its streams. One poller per run reads what the
log gained since it last looked and hands each stream its share through a bounded queue; a
stream whose queue is full is a slow reader and is dropped (its client resumes from the last id
it got: the log still has everything). A stream first catches up from the log itself, from the
id it resumes at, so it joins the live tail with nothing missed and nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from omoi.runtime.log.events import Event

Read = Callable[[int, str | None, int], list[Event]]  # after, kind prefix, limit
PAGE = 500


@dataclass(eq=False)
class _Stream:
    kind: str | None
    queue: asyncio.Queue[Event]
    dropped: bool = False


@dataclass
class Feed:
    read: Read
    last_seq: Callable[[], int]
    poll: float = 0.2
    capacity: int = 1000
    last: int = 0
    _streams: set[_Stream] = field(default_factory=set)
    _poller: asyncio.Task[None] | None = None
    _moved: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def caught_up(self, seq: int) -> None:
        """Return once the poller has read the log up to `seq`."""
        async with self._moved:
            await self._moved.wait_for(lambda: self.last >= seq)

    async def follow(self, after: int, kind: str | None = None) -> AsyncIterator[Event | None]:
        """Every event after `after` (of `kind`), then the live ones as they come; None when
        nothing came for a poll (the caller's chance to keep the connection alive). Ends when
        the stream was dropped for reading too slowly."""
        me = _Stream(kind, asyncio.Queue(self.capacity))
        self._streams.add(me)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._run())
        cursor = after
        try:
            while page := await asyncio.to_thread(self.read, cursor, kind, PAGE):  # catch up
                for ev in page:
                    yield ev
                cursor = page[-1].seq or cursor
            while not me.dropped or not me.queue.empty():
                try:
                    ev = await asyncio.wait_for(me.queue.get(), self.poll * 5)
                except TimeoutError:
                    yield None
                    continue
                if (ev.seq or 0) > cursor:
                    cursor = ev.seq or cursor
                    yield ev
        finally:
            self._streams.discard(me)

    async def _run(self) -> None:
        if not self.last:
            self.last = await asyncio.to_thread(self.last_seq)
            async with self._moved:
                self._moved.notify_all()
        while self._streams:
            events = await asyncio.to_thread(self.read, self.last, None, PAGE)
            for s in list(self._streams):
                for ev in events:
                    if s.kind and not ev.kind.startswith(s.kind):
                        continue
                    try:
                        s.queue.put_nowait(ev)
                    except asyncio.QueueFull:
                        s.dropped = True
                        self._streams.discard(s)
                        break
            if events:
                self.last = events[-1].seq or self.last
                async with self._moved:
                    self._moved.notify_all()
            else:
                await asyncio.sleep(self.poll)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
