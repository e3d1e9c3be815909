"""The scheduler actor over an in-memory log on a fake clock: recurring and one-shot schedules
fire on time with their payload, a message is not stacked on an unread one (overlap skip), a
schedule whose task ended stops, and a scheduler started again fires nothing twice and a fire
it missed while down once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from omoi.actors.bus import BusActor
from omoi.actors.scheduler import SchedulerActor
from omoi.runtime.log.events import (
    Event,
    GuardianDelivered,
    RunStarted,
    ScheduleCreated,
    ScheduleSpec,
    TaskSucceeded,
)
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.testing import FakeClock

STATUS = "[STATUS CHECK] report your progress"


class Rig:
    def __init__(self) -> None:
        self.bus, self.clock = BusActor(MemoryEventStore()), FakeClock()
        self.scheduler = self._new()

    def _new(self) -> SchedulerActor:
        return SchedulerActor("r", self.bus, clock=self.clock)

    async def start(self, *specs: ScheduleSpec) -> None:
        await self.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c", ts=self.clock.now())])
        await self.bus.publish([ScheduleCreated(run_id="r", schedule=s, ts=self.clock.now()) for s in specs])
        await self.scheduler.start()

    async def restart(self) -> None:
        await self.scheduler.stop()
        self.scheduler = self._new()

    async def log(self) -> list[Event]:
        return await self.bus.read(0)

    async def until(self, kind: str, n: int) -> list[Any]:
        async with asyncio.timeout(10):
            while len(found := [e for e in await self.log() if e.kind == kind]) < n:
                await self.bus.read((await self.log())[-1].seq or 0, timeout=1.0)
        return found


def message(every: float, **kw: Any) -> ScheduleSpec:
    return ScheduleSpec(id="status", every=every, message={"task_id": "a", "text": STATUS}, **kw)


async def test_a_recurring_message_fires_on_the_clock_and_is_not_stacked_on_an_unread_one() -> None:
    rig = Rig()
    await rig.start(message(300, count=3))
    rig.clock.advance(300)
    (fired,) = await rig.until("schedule.fired", 1)
    (sent,) = await rig.until("agent.message", 1)
    assert (fired.n, fired.skipped, fired.due) == (1, False, rig.clock.now())
    assert (sent.id, sent.task_id, sent.text) == (f"{fired.id}-payload", "a", STATUS)
    rig.clock.advance(300)  # the first one is not read yet: skipped
    second = (await rig.until("schedule.fired", 2))[1]
    assert (second.n, second.skipped) == (2, True)
    assert "not read yet" in second.reason
    read = GuardianDelivered(
        run_id="r", task_id="a", attempt=1, agent="a/1/worker", role="worker", intervention=sent.seq, turn=3
    )
    (seq,) = await rig.bus.publish([read])
    await asyncio.wait_for(rig.scheduler.caught_up(seq), 10)  # it knows the message was read
    rig.clock.advance(300)
    third = (await rig.until("schedule.fired", 3))[2]
    assert (third.n, third.skipped) == (3, False)
    assert len(await rig.until("agent.message", 2)) == 2
    rig.clock.advance(3000)  # count reached: no more
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])  # the log moves
    await rig.until("run.started", 2)
    assert len([e for e in await rig.log() if e.kind == "schedule.fired"]) == 3
    await rig.scheduler.stop()


async def test_a_scheduler_started_again_fires_nothing_twice_and_a_missed_fire_once() -> None:
    rig = Rig()
    await rig.start(message(60))
    rig.clock.advance(60)
    await rig.until("schedule.fired", 1)
    (sent,) = await rig.until("agent.message", 1)
    read = GuardianDelivered(
        run_id="r", task_id="a", agent="a/1/worker", role="worker", intervention=sent.seq, turn=1
    )
    (seq,) = await rig.bus.publish([read])
    await asyncio.wait_for(rig.scheduler.caught_up(seq), 10)
    await rig.restart()  # down for five intervals and a half
    rig.clock.advance(330)
    await rig.scheduler.start()
    fires = await rig.until("schedule.fired", 2)
    assert len(await rig.until("agent.message", 2)) == 2
    late = fires[1]
    assert (late.n, late.due) == (2, rig.clock.now() - timedelta(seconds=30))
    assert late.reason == "4 fires missed while the scheduler was down; fired once"
    await rig.restart()
    await rig.scheduler.start()  # the same log again: nothing is due, nothing is written
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    await rig.until("run.started", 2)
    assert len([e for e in await rig.log() if e.kind == "schedule.fired"]) == 2
    await rig.scheduler.stop()


async def test_a_one_shot_event_fires_once_and_a_message_to_an_ended_task_stops() -> None:
    rig = Rig()
    at = rig.clock.now() + timedelta(seconds=90)
    cancel = ScheduleSpec(
        id="stop-b", at=at, event={"kind": "task.cancel_requested", "data": {"task_id": "b"}}
    )
    await rig.start(cancel, message(60))
    await rig.bus.publish([TaskSucceeded(run_id="r", task_id="a", attempt=1)])
    rig.clock.advance(90)
    (stopped,) = await rig.until("task.cancel_requested", 1)
    (ended,) = await rig.until("schedule.cancelled", 1)
    assert (stopped.task_id, stopped.id) == ("b", "schedule-r-stop-b-1-payload")
    assert (ended.schedule_id, ended.reason) == ("status", "task a has ended")
    assert not [e for e in await rig.log() if e.kind == "agent.message"]
    await rig.scheduler.stop()
