"""A tap shares one read of the bus among a process's followers, without changing what each sees."""

from __future__ import annotations

import asyncio
from pathlib import Path

from omoi.actors.bus import BusActor
from omoi.runtime.log.events import Event, TaskOutput, TaskReady
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.log.tap import Tap


class CountingBus(BusActor):
    """The real bus, counting the reads that reach it."""

    reads = 0

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        self.reads += 1
        return await super().read(after, prefixes, limit, timeout)


def outputs(n: int) -> list[Event]:
    return [TaskOutput(run_id="r", task_id="a", attempt=1, tail=str(i)) for i in range(n)]


async def test_followers_behind_one_tap_each_see_their_kinds_in_order(tmp_path: Path) -> None:
    bus = CountingBus(SqliteEventStore(tmp_path / "e.db"))
    tap = Tap(bus)
    await bus.publish(outputs(2))
    ready, everything = Subscription(tap, ("task.ready",)), Subscription(tap, None)
    assert [e.seq for e in await everything.so_far()] == [1, 2]  # replay: straight from the bus
    waits = [asyncio.ensure_future(s.next_batch(timeout=30)) for s in (ready, everything)]
    await asyncio.sleep(0)
    before = bus.reads
    for i in range(5):
        await bus.publish([*outputs(1), TaskReady(run_id="r", task_id=f"t{i}", attempt=1)])
    got_ready = await asyncio.wait_for(waits[0], 5)
    got_all = await asyncio.wait_for(waits[1], 5)
    assert {e.kind for e in got_ready} == {"task.ready"}
    assert got_ready[0].seq == 4
    assert [e.seq for e in got_all] == sorted(e.seq or 0 for e in got_all)
    assert got_all[0].seq == 3
    while ready.cursor < 12:
        assert all(e.kind == "task.ready" for e in await ready.next_batch(timeout=5))
    while everything.cursor < 12:
        await everything.next_batch(timeout=5)
    # Two followers, five publishes: the bus served the tap's reads only, at most one per publish
    # and the one waiting now (each follower reading for itself would make twice that).
    assert bus.reads - before <= 5 + 2
    await tap.close()


async def test_a_reader_from_before_the_window_reads_the_bus(tmp_path: Path) -> None:
    bus = CountingBus(SqliteEventStore(tmp_path / "e.db"))
    tap = Tap(bus, keep=2)
    live = Subscription(tap, None)
    waiting = asyncio.ensure_future(live.next_batch(timeout=30))
    await asyncio.sleep(0)
    await bus.publish(outputs(10))
    assert (await asyncio.wait_for(waiting, 5))[0].seq == 1
    while live.cursor < 10:
        await live.next_batch(timeout=5)
    late = await tap.read(0, None, 1000, 0)  # trimmed away from the window: the bus has it all
    assert [e.seq for e in late] == list(range(1, 11))
    await tap.close()
