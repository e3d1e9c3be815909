"""The shapes `omoi status` and `omoi events` print: a run's status as JSON, an event as one line.
Scripts read these, so they change only on purpose."""

from __future__ import annotations

import json
from typing import Any

from omoi.runtime import names
from omoi.runtime.log.events import Event
from omoi.runtime.run.state import RunState

_EVENT_ENVELOPE = {"id", "run_id", "ts", "seq", "kind", "source", "spec"}


def status_json(state: RunState) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "finished": state.finished.status if state.finished else None,
        "branch": state.finished.branch if state.finished else None,
        "tasks": [
            {
                "id": t.id,
                "status": t.status,
                "attempts": t.attempt,
                "started": t.started_at.isoformat() if t.started_at else None,
                "ended": t.ended_at.isoformat() if t.ended_at else None,
                "branch": names.task_branch(state.run_id, t.id) if t.attempt else None,
                "error": t.error,
            }
            for t in state.in_order()
        ],
    }


def run_outcome(state: RunState) -> str:
    """The line under the status table: how the run ended, or that it has not."""
    if state.finished is None:
        return "run not finished (live, or interrupted: `omoi resume` continues it)"
    f = state.finished
    return f"run {f.status}" + (f": {f.branch}" if f.branch else "") + (f" ({f.error})" if f.error else "")


def event_line(ev: Event) -> str:
    """seq, local time, kind, then every non-empty field but the envelope, each cut at 100 chars."""
    fields = ev.model_dump(mode="json", exclude=_EVENT_ENVELOPE)
    extra = {k: v for k, v in fields.items() if v not in (None, "", [], {})}
    body = " ".join(f"{k}={json.dumps(v)[:100]}" for k, v in extra.items())
    return f"{ev.seq:>6} {ev.ts.astimezone().strftime('%H:%M:%S.%f')[:-3]} {ev.kind:<22} {body}"
