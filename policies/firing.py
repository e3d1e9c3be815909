"""What a schedule's fire writes. Pure over a run's Schedules and the time passed in.

- Due now or earlier: one `schedule.fired` (the n-th) and its payload, the event or the message
  it carries (id `<fired id>-payload`, so a replay or a repeated publish writes nothing twice).
- Missed more than once (the scheduler was down): it fires once, for the latest time it was due,
  and goes on from there: catch-up without a burst.
- Overlap policy skip: a message schedule whose previous message the agent has not read yet
  fires `skipped` (its payload is left out) rather than stacking a second one.
- A message schedule whose task has ended is cancelled, naming the task."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from omoi.runtime.errors import InjectionRefused
from omoi.runtime.log.events import Event, ScheduleCancelled, ScheduleFired
from omoi.runtime.run import injection
from omoi.runtime.run.schedules import Entry, Schedules


def fire(state: Schedules, now: datetime, source: str) -> list[Event]:
    out: list[Event] = []
    for sid, e, due in state.due():
        if due > now:
            continue
        target = (e.spec.message or {}).get("task_id")
        if target is not None and target in state.ended:
            out.append(_cancel(state, sid, f"task {target} has ended", source))
            continue
        missed = 0
        if e.spec.every is not None:  # fire once for the latest time it was due
            missed = math.floor((now - due).total_seconds() / e.spec.every)
            due += timedelta(seconds=missed * e.spec.every)
        n = e.fired + 1
        key = f"schedule-{state.run_id}-{sid}-{n}"
        common = {"id": key, "run_id": state.run_id, "source": source, "schedule_id": sid, "n": n, "due": due}
        late = f"{missed} fires missed while the scheduler was down; fired once" if missed else ""
        if e.unread is not None:
            why = "the previous message is not read yet (overlap: skip)"
            out.append(ScheduleFired(**common, skipped=True, reason=why))
            continue
        try:
            payload = _payload(state.run_id, e, f"{key}-payload", source)
        except InjectionRefused as exc:
            out.append(_cancel(state, sid, f"its payload is refused: {exc}", source))
            continue
        out += [ScheduleFired(**common, reason=late), payload]
    return out


def next_in(state: Schedules, now: datetime) -> float | None:
    """Seconds until the next schedule is due (0 if one is due now), or None."""
    dues = [d for _, _, d in state.due()]
    return max(0.0, (min(dues) - now).total_seconds()) if dues else None


def _payload(run_id: str, e: Entry, ident: str, source: str) -> Event:
    if e.spec.message is not None:
        data = {"task_id": e.spec.message.get("task_id", ""), "text": e.spec.message.get("text", "")}
        return injection.build(run_id, "agent.message", data, id=ident, source=source)
    event = e.spec.event or {}
    return injection.build(
        run_id, str(event.get("kind", "")), event.get("data") or {}, id=ident, source=source
    )


def _cancel(state: Schedules, sid: str, reason: str, source: str) -> ScheduleCancelled:
    return ScheduleCancelled(
        id=f"schedule-{state.run_id}-{sid}-ended",
        run_id=state.run_id,
        source=source,
        schedule_id=sid,
        reason=reason,
    )
