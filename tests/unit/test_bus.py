"""The bus over a real SQLite log: delivery order, filters, long-polls, a second writer, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from omoi.actors.bus import BusActor
from omoi.runtime.errors import StoreError
from omoi.runtime.log.events import Event, TaskOutput, TaskReady
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.log.subscription import Subscription


def outputs(n: int, tag: str = "x") -> list[Event]:
    return [TaskOutput(run_id="r", task_id="a", attempt=1, tail=f"{tag}{i}") for i in range(n)]


async def test_publish_returns_seqs_and_readers_filter_by_prefix(tmp_path: Path) -> None:
    bus = BusActor(SqliteEventStore(tmp_path / "e.db"))
    assert await bus.publish([*outputs(2), TaskReady(run_id="r", task_id="a", attempt=1)]) == [1, 2, 3]
    assert [e.seq for e in await bus.read(0, ("task.ready",))] == [3]
    assert [e.seq for e in await bus.read(1)] == [2, 3]


async def test_a_long_poll_wakes_on_publish(tmp_path: Path) -> None:
    bus = BusActor(SqliteEventStore(tmp_path / "e.db"))
    waiting = asyncio.ensure_future(bus.read(0, ("task.ready",), timeout=30))
    await bus.publish(outputs(3))  # not matching: the reader keeps waiting
    await asyncio.sleep(0)
    assert not waiting.done()
    await bus.publish([TaskReady(run_id="r", task_id="a", attempt=1)])
    assert [e.seq for e in await asyncio.wait_for(waiting, 5)] == [4]


async def test_rows_of_another_writer_are_delivered_in_order(tmp_path: Path) -> None:
    bus = BusActor(SqliteEventStore(tmp_path / "e.db"), resync=0.01)
    other = SqliteEventStore(tmp_path / "e.db")  # the graph writing its decisions ahead
    await bus.publish(outputs(2, "bus"))
    other.append(outputs(2, "graph"))
    await bus.publish(outputs(1, "bus"))  # not contiguous with the bus's tail: it reads the gap
    assert [e.tail for e in await bus.read(0)] == ["bus0", "bus1", "graph0", "graph1", "bus0"]  # type: ignore[union-attr]
    other.append(outputs(1, "late"))  # no sync call at all: the long-poll's resync finds it
    late = await asyncio.wait_for(bus.read(5, timeout=30), 5)
    assert [(e.seq, e.tail) for e in late] == [(6, "late0")]  # type: ignore[union-attr]


async def test_a_restarted_bus_continues_the_log(tmp_path: Path) -> None:
    first = BusActor(SqliteEventStore(tmp_path / "e.db"))
    await first.publish(outputs(3))
    second = BusActor(SqliteEventStore(tmp_path / "e.db"))
    assert await second.publish(outputs(2)) == [4, 5]
    sub = Subscription(second, None, after=2)
    assert [e.seq for e in await sub.next_batch(timeout=0)] == [3, 4, 5]
    assert sub.cursor == 5


class _Commits(SqliteEventStore):
    """The real store, remembering the size of each commit, and refusing any with a `bad` event."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits: list[int] = []

    def append(self, events: Sequence[Event]) -> list[Event]:
        if any(getattr(e, "tail", "").startswith("bad") for e in events):
            raise StoreError("refused")
        self.commits.append(len(events))
        return super().append(events)


async def test_publishes_that_arrive_together_share_one_commit_and_a_bad_batch_fails_alone(
    tmp_path: Path,
) -> None:
    store = _Commits(tmp_path / "e.db")
    bus = BusActor(store)
    batches = [outputs(1, "a"), outputs(2, "b"), [*outputs(1, "c"), *outputs(1, "bad")], outputs(1, "d")]
    answers = await asyncio.gather(*(bus.publish(b) for b in batches), return_exceptions=True)
    assert answers[:2] == [[1], [2, 3]]  # each its own seqs, in arrival order
    assert isinstance(answers[2], StoreError)
    assert answers[3] == [4]
    assert store.commits == [1, 2, 1]  # the group was refused; each batch alone then, but the bad one
    assert [e.tail for e in await bus.read(0)] == ["a0", "b0", "b1", "d0"]  # type: ignore[union-attr]
    assert await asyncio.gather(bus.publish(outputs(1)), bus.publish(outputs(1))) == [[5], [6]]
    assert store.commits[-1] == 2  # together: one commit
