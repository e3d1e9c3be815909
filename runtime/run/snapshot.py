"""A run's folded state kept next to its log, so that reading a long run costs its tail.

A snapshot at seq S is `fold` over the log's `FOLDED` events with seq <= S. Whoever folds the log
from a snapshot (or from its start) and finds a long tail stores a new one: `omoi status`,
`omoi resume`. Seqs are gap-free and given in order under the log's write lock, so the events
after S are exactly what the snapshot lacks. A snapshot from another version of the fold, of
another run, or one that does not parse is ignored and the log folded from its start: the log
is the source of truth, a snapshot only a shortcut into it. JSON, never pickle: host-side code
reads it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import ValidationError

from omoi.runtime.errors import OmoiError, StoreError
from omoi.runtime.log.events import Event, RunFinished, RunStarted, SpecFinished, Usage
from omoi.runtime.run.state import FOLDED, RunState, TaskState
from omoi.runtime.run.tasks import TaskSpec

log = structlog.get_logger("omoi.snapshot")

# What a snapshot was folded by. Bump it when `RunState.apply` would fold the same log differently.
VERSION = 1
SAVE_AFTER = 2_000  # folded events past the last snapshot before a reader stores a new one

_E = TypeVar("_E", RunStarted, RunFinished, SpecFinished)
_TASK_TIMES = ("not_before", "started_at", "ended_at")
_RUN_SETS = ("changed", "cancel_requested", "restart_requested")


class SnapshotLog(Protocol):
    """The part of the event store a snapshot needs (`SqliteEventStore` is one)."""

    unreadable: dict[int, str]

    def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Event]: ...

    def snapshot(self) -> tuple[int, str] | None: ...

    def save_snapshot(self, seq: int, body: str) -> None: ...


def dump(state: RunState, unreadable: dict[int, str] | None = None) -> str:
    """Every field of the state (and the log rows the fold could not read), as JSON."""
    tasks = []
    for t in state.tasks.values():
        row: dict[str, Any] = {f.name: getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "spec"}
        row.update({k: _time(row[k]) for k in _TASK_TIMES})
        tasks.append({"spec": t.spec.model_dump(mode="json"), **row})
    body = {
        "version": VERSION,
        "folded": list(FOLDED),
        "run_id": state.run_id,
        "last_seq": state.last_seq,
        "started": _event(state.started),
        "finished": _event(state.finished),
        "spec": _event(state.spec),
        "cancel_reason": state.cancel_reason,
        "rejected": [list(r) for r in state.rejected],
        **{name: sorted(getattr(state, name)) for name in _RUN_SETS},
        "usage": state.usage.model_dump(mode="json"),
        "cost_usd": state.cost_usd,
        "merged": state.merged,
        "merge_failed": state.merge_failed,
        "last_head": state.last_head,
        "tasks": tasks,
        "unreadable": {str(seq): why for seq, why in (unreadable or {}).items()},
    }
    return json.dumps(body, separators=(",", ":"))


def load(run_id: str, body: str) -> tuple[RunState, dict[int, str]]:
    """The state `dump` wrote, and the unreadable rows it named; ValueError if it is not one of
    this run's snapshots from this version of the fold."""
    data = json.loads(body)
    if data.get("version") != VERSION or data.get("folded") != list(FOLDED) or data.get("run_id") != run_id:
        raise ValueError("the snapshot is of another run or of another version of the fold")
    state = RunState(run_id)
    state.last_seq = data["last_seq"]
    state.started = _parse(RunStarted, data["started"])
    state.finished = _parse(RunFinished, data["finished"])
    state.spec = _parse(SpecFinished, data["spec"])
    state.cancel_reason = data["cancel_reason"]
    state.rejected = [(a, b) for a, b in data["rejected"]]
    for name in _RUN_SETS:
        setattr(state, name, set(data[name]))
    state.usage = Usage.model_validate(data["usage"])
    state.cost_usd = data["cost_usd"]
    state.merged, state.merge_failed = data["merged"], data["merge_failed"]
    state.last_head = data["last_head"]
    for row in data["tasks"]:
        spec = TaskSpec.model_validate(row.pop("spec"))
        row.update({k: datetime.fromisoformat(row[k]) if row[k] else None for k in _TASK_TIMES})
        task = TaskState(spec=spec, **row)
        state.graph.add([spec], [task.order])  # in the order the fold added them: deps come first
        state.tasks[spec.id] = task
        state.ids_with_status(task.status).add(spec.id)
    return state, {int(seq): why for seq, why in data["unreadable"].items()}


def fold_log(run_id: str, events: SnapshotLog) -> tuple[RunState, dict[int, str]]:
    """The run's state: its latest snapshot, if usable, and the folded events after it. Stores a
    new snapshot when that tail was long (best effort: a log that cannot be written is still read).
    Returns the state and the rows the fold could not read, with why."""
    state, unreadable, after = RunState(run_id), dict[int, str](), 0
    stored = events.snapshot()
    if stored is not None:
        try:
            state, unreadable = load(run_id, stored[1])
            after = stored[0]
        except (ValueError, KeyError, TypeError, ValidationError, OmoiError) as exc:
            log.info("snapshot.ignored", run_id=run_id, seq=stored[0], error=str(exc))
            state, unreadable = RunState(run_id), {}
    tail = events.read(after=after, prefixes=FOLDED)
    for ev in tail:
        state.apply(ev)
    unreadable.update(events.unreadable)
    if len(tail) >= SAVE_AFTER:
        with contextlib.suppress(StoreError):
            events.save_snapshot(state.last_seq, dump(state, unreadable))
    return state, unreadable


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(ev: Event | None) -> dict[str, Any] | None:
    return ev.model_dump(mode="json") if ev is not None else None


def _parse(kind: type[_E], data: dict[str, Any] | None) -> _E | None:
    return kind.model_validate(data) if data is not None else None
