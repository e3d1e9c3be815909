"""A run's schedules as a fold over its log: each one's spec, how many times it fired and when
it was last due, whether the message it last sent was read, and whether it was cancelled or its
target ended. `apply` is the only way it changes, live or replayed; `due` says when each fires
next, on the clock it is given (`policies.firing` decides what a fire writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from omoi.runtime.log.events import Event, ScheduleSpec

ENDS = ("task.succeeded", "task.skipped", "task.cancelled")


@dataclass
class Entry:
    spec: ScheduleSpec
    created: datetime
    fired: int = 0  # schedule.fired events so far, skipped ones included
    last_due: datetime | None = None
    unread: str | None = None  # id of the last message it sent, until the agent read it
    unread_seq: int | None = None
    cancelled: str | None = None

    def next_due(self) -> datetime | None:
        s = self.spec
        if self.cancelled is not None:
            return None
        if s.at is not None:
            return s.at if self.fired == 0 else None
        assert s.every is not None
        if s.count is not None and self.fired >= s.count:
            return None
        every = timedelta(seconds=s.every)
        due = (s.start or self.created + every) if self.last_due is None else self.last_due + every
        return None if s.until is not None and due > s.until else due


@dataclass
class Schedules:
    run_id: str
    entries: dict[str, Entry] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # tasks that will run no more
    finished: bool = False

    def apply(self, ev: Event) -> None:
        match ev.kind:
            case "schedule.created" if ev.schedule.id not in self.entries:
                self.entries[ev.schedule.id] = Entry(ev.schedule, ev.ts)
            case "schedule.fired" if (e := self.entries.get(ev.schedule_id)) is not None:
                e.fired, e.last_due = max(e.fired, ev.n), ev.due
                if not ev.skipped and e.spec.message is not None:
                    e.unread, e.unread_seq = f"{ev.id}-payload", None
            case "agent.message":
                for e in self.entries.values():
                    if e.unread == ev.id:
                        e.unread_seq = ev.seq
            case "guardian.delivered":
                for e in self.entries.values():
                    if e.unread_seq is not None and e.unread_seq == ev.intervention:
                        e.unread, e.unread_seq = None, None
            case "schedule.cancelled" if (e := self.entries.get(ev.schedule_id)) is not None:
                e.cancelled = e.cancelled or ev.reason
            case "task.failed" if ev.final:
                self.ended.add(ev.task_id)
            case "task.succeeded" | "task.skipped" | "task.cancelled":
                self.ended.add(ev.task_id)
            case "run.finished":
                self.finished = True
            case _:
                pass

    def listing(self) -> list[dict[str, object]]:
        """Each schedule as the log says: its spec, fires so far, when next due, why it ended."""
        return [
            {
                "schedule": e.spec.model_dump(mode="json"),
                "fired": e.fired,
                "next_due": None if self.finished or (d := e.next_due()) is None else d.isoformat(),
                "cancelled": e.cancelled,
            }
            for e in self.entries.values()
        ]

    def due(self) -> list[tuple[str, Entry, datetime]]:
        """Every schedule that fires at some point, with when it is next due."""
        if self.finished:
            return []
        return [(sid, e, d) for sid, e in self.entries.items() if (d := e.next_due()) is not None]
