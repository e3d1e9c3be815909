"""The shapes `omoi status` and `omoi events` print: a run's status as JSON, an event as one line.
Scripts read these, so they change only on purpose."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from omoi.runtime import names

if TYPE_CHECKING:
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


def event_line(fields: dict[str, Any]) -> str:
    """seq, local time, kind, then every non-empty field but the envelope, each cut at 100 chars.
    `fields` is an event as its JSON has it (a stored row, or `model_dump(mode="json")`). Written
    for speed, not `json.dumps` per field: a long log is 100k lines."""
    parts: list[str] = []
    for k, v in fields.items():
        if k in _EVENT_ENVELOPE:
            continue
        kind = v.__class__
        if kind is str:
            if v:
                parts.append(f"{k}={encode_basestring_ascii(v)[:100]}")
        elif kind is int or kind is float:
            parts.append(f"{k}={repr(v)[:100]}")
        elif kind is bool:
            parts.append(f"{k}={'true' if v else 'false'}")
        elif v:  # not None, [] or {}
            parts.append(f"{k}={json.dumps(v)[:100]}")
    return f"{fields['seq']:>6} {_local_time(fields['ts'])} {fields['kind']:<22} {' '.join(parts)}"


def _local_time(ts: str) -> str:
    """HH:MM:SS.mmm in this machine's time zone, from an ISO time as pydantic writes it."""
    if ts[19:20] == ".":  # six digits of fraction, then the zone
        return f"{_local_second(ts[:19], ts[26:])}.{ts[20:23]}"
    return f"{_local_second(ts[:19], ts[19:])}.000"


@lru_cache(maxsize=256)
def _local_second(second: str, zone: str) -> str:  # events come many to a second
    return datetime.fromisoformat(second + zone).astimezone().strftime("%H:%M:%S")
