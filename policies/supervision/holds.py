"""Releasing a held task once the work it waited for ended: resumed, and restarted from the
integration head when that work was merged (the head now holds it). Pure over a Holds fold."""

from __future__ import annotations

from omoi.runtime.log.events import AgentResumed, Event, TaskRestartRequested
from omoi.runtime.supervision.holds import Holds


def releases(run_id: str, holds: Holds, source: str) -> list[Event]:
    out: list[Event] = []
    for h, merged in holds.releasable():
        common = {"run_id": run_id, "task_id": h.task, "attempt": h.attempt}
        key = f"{holds.owner}-{run_id}-{h.awaited}-{h.task}"  # ids from what they are: once each
        out.append(AgentResumed(**common, id=f"{key}-released", source=holds.source(h)))
        if merged:
            why = f"{h.awaited} was merged: going on from the integration head"
            out.append(TaskRestartRequested(**common, id=f"{key}-restart", source=source, reason=why))
    return out
