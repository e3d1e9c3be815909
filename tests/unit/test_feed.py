"""The API's live feed over a real log store: a stream catches up from the log, then follows the
live tail with nothing twice; a stream that does not keep up is dropped, and resuming from the
last seq it got loses nothing."""

from __future__ import annotations

import asyncio

from omoi.http.feed import Feed
from omoi.runtime.log.events import Event, TaskOutput
from omoi.runtime.log.store import MemoryEventStore


def _store() -> tuple[MemoryEventStore, Feed]:
    store = MemoryEventStore()
    feed = Feed(
        lambda after, kind, limit: store.read(after, (kind,) if kind else None, limit),
        store.last_seq,
        poll=0.01,
        capacity=3,
    )
    return store, feed


def _out(n: int, start: int = 0) -> list[Event]:
    return [TaskOutput(run_id="r", task_id="a", attempt=1, tail=f"{start + i}") for i in range(n)]


async def test_a_slow_stream_is_dropped_and_resumes_from_its_last_seq_with_nothing_lost() -> None:
    store, feed = _store()
    store.append(_out(2))
    stream = feed.follow(0)
    got = [await anext(stream), await anext(stream)]  # caught up from the log
    assert [e.seq for e in got if e] == [1, 2]
    await asyncio.wait_for(feed.caught_up(2), 10)  # the poller follows the tail from here
    assert await anext(stream) is None  # caught up: it waits on the live tail, and nothing comes
    store.append(_out(10, start=2))  # more than the stream's queue holds, while it reads nothing
    await asyncio.wait_for(feed.caught_up(12), 10)  # the poller read the tail
    rest = [e async for e in stream if e is not None]  # what its queue held, then it ends
    assert [e.seq for e in rest] == [3, 4, 5]
    resumed = feed.follow(rest[-1].seq or 0)
    after = [await anext(resumed) for _ in range(7)]
    assert [e.seq for e in after if e] == list(range(6, 13))
    await resumed.aclose()
    await feed.close()


async def test_a_stream_joins_the_live_tail_with_nothing_twice() -> None:
    store, feed = _store()
    store.append(_out(2))
    stream = feed.follow(0, kind="task.")
    seqs = [(await anext(stream)).seq for _ in range(2)]  # type: ignore[union-attr]
    for n in range(3):
        store.append(_out(1, start=10 + n))
        while (ev := await anext(stream)) is None:
            pass
        seqs.append(ev.seq)
    assert seqs == [1, 2, 3, 4, 5]
    await stream.aclose()
    await feed.close()
