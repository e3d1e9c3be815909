"""What a person or a program may inject into a run's log, and the checks each kind passes first.

One path for every way in (the Python API, `omoi inject` and the other CLI verbs, the HTTP API,
a schedule firing): an injection names an allowed `kind` and its `data`; it is built into an event
(a bad field is refused naming `data.<field>`), checked against the run as its log says it is now
(the task exists and has not ended, the question is open, the gate waits, ...), and appended in
one transaction. Events the run writes about itself (`task.succeeded`, `merge.*`, ...) are
forbidden: a forged success would merge work nobody checked. An injection with an `id` already
in the log is that event again, whatever the run did since: a retried request is idempotent.
`build` and `check` are pure over a list of events; `runtime.run.submit` reads and writes a run's
log with them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from omoi.runtime.errors import InjectionRefused
from omoi.runtime.log.events import (
    EVENT_ADAPTER,
    AgentNeedsInput,
    AgentPaused,
    DiscoveryAwaiting,
    Event,
    SpecGateWaiting,
    event_kinds,
)
from omoi.runtime.run.injectable import ALLOWED
from omoi.runtime.run.state import RunState, fold

# What a schedule may inject when it fires: kinds that need nothing from the run at that moment.
SCHEDULABLE = (
    "run.cancel_requested",
    "task.cancel_requested",
    "agent.paused",
    "agent.resumed",
    "budget.raised",
)
FILLED = ("run_id", "kind", "seq")  # set here, never taken from `data`
_FILLED_BY_CHECK: dict[str, dict[str, Any]] = {  # from the run, once `check` sees it
    "task.added": {"task_id": "", "order": 0},
    "discovery.decided": {"task_id": ""},
}


def build(
    run_id: str, kind: str, data: Mapping[str, Any], *, id: str | None = None, source: str = "api"
) -> Event:
    """The event an injection asks for; InjectionRefused names the kind or the field."""
    if kind not in ALLOWED:
        if kind in event_kinds():
            raise InjectionRefused(
                f"'{kind}' is written by the run itself and cannot be injected; "
                f"one of: {', '.join(sorted(ALLOWED))}",
                why="forbidden",
                field="kind",
            )
        raise InjectionRefused(f"unknown kind '{kind}'; one of: {', '.join(sorted(ALLOWED))}", field="kind")
    for name in FILLED:
        if name in data:
            raise InjectionRefused(f"data.{name} is set by omoi, leave it out", field=f"data.{name}")
    filled = _FILLED_BY_CHECK.get(kind, {})
    body: dict[str, Any] = {"source": source, **filled, **data, "run_id": run_id, "kind": kind}
    if id is not None:
        body["id"] = id
    try:
        return EVENT_ADAPTER.validate_python(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or "data"  # [0] is the kind's tag
        raise InjectionRefused(f"data.{where}: {err['msg']}", field=f"data.{where}") from exc


def check(ev: Event, log: Sequence[Event], state: RunState | None = None) -> Event:
    """The event as it goes into the log (an attempt filled in from the run), or InjectionRefused
    (`conflict`: the run is not in a state that takes it; `not_found`: no such task)."""
    state = state or fold(ev.run_id, list(log))
    rule = _RULES.get(ev.kind)
    ev = rule(ev, log, state) if rule is not None else ev  # first: it names the task or the field
    if state.finished is not None:
        raise InjectionRefused(
            f"run '{ev.run_id}' has finished ({state.finished.status}); nothing can be injected",
            why="conflict",
        )
    return ev


def _task(ev: Event, state: RunState, *, agent: bool = False) -> None:
    task_id = getattr(ev, "task_id", "")
    t = state.tasks.get(task_id)
    if t is None:
        known = sorted(i for i, x in state.tasks.items() if not agent or x.spec.agent is not None)
        hint = f"; its {'agent ' if agent else ''}tasks: {', '.join(known)}" if known else ""
        raise InjectionRefused(
            f"run '{ev.run_id}' has no task '{task_id}'{hint}", why="not_found", field="data.task_id"
        )
    if agent and t.spec.agent is None:
        raise InjectionRefused(
            f"task '{task_id}' runs a command, not an agent", why="conflict", field="data.task_id"
        )
    if t.terminal:
        raise InjectionRefused(
            f"task '{task_id}' has ended ({t.status})", why="conflict", field="data.task_id"
        )


def _cancel(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    _task(ev, state)
    return ev


def _answered(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    task_id = getattr(ev, "task_id", "")
    asks = ("agent.needs_input", "agent.answered")
    last = next((e for e in reversed(log) if e.kind in asks and getattr(e, "task_id", "") == task_id), None)
    if not isinstance(last, AgentNeedsInput):
        asked = sorted({e.task_id for e in log if isinstance(e, AgentNeedsInput)})
        hint = f"; tasks that asked: {', '.join(asked)}" if asked else ""
        raise InjectionRefused(
            f"task '{task_id}' of run '{ev.run_id}' has no open question{hint}",
            why="conflict",
            field="data.task_id",
        )
    _task(ev, state, agent=True)
    return ev.model_copy(update={"attempt": last.attempt})


def _hold(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    _task(ev, state, agent=True)
    task_id = getattr(ev, "task_id", "")
    holds = [
        e.kind
        for e in log
        if e.kind in ("agent.paused", "agent.resumed") and getattr(e, "task_id", "") == task_id
    ]
    paused = bool(holds) and holds[-1] == "agent.paused"
    if isinstance(ev, AgentPaused) and paused:
        raise InjectionRefused(f"task '{task_id}' of run '{ev.run_id}' is already paused", why="conflict")
    if not isinstance(ev, AgentPaused) and not paused:
        raise InjectionRefused(f"task '{task_id}' of run '{ev.run_id}' is not paused", why="conflict")
    return ev


def _message(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    _task(ev, state, agent=True)
    t = state.tasks[getattr(ev, "task_id", "")]
    return ev.model_copy(update={"attempt": t.attempt})


def _gate(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    phase = getattr(ev, "phase", "")
    decided = {(e.phase, e.attempt) for e in log if e.kind == "spec.gate_decided"}  # type: ignore[union-attr]
    open_ = [e for e in log if isinstance(e, SpecGateWaiting) and (e.phase, e.attempt) not in decided]
    mine = [e for e in open_ if e.phase == phase]
    if not mine:
        hint = (
            f"; waiting now: {', '.join(sorted({e.phase for e in open_}))}"
            if open_
            else "; no phase is waiting"
        )
        raise InjectionRefused(
            f"run '{ev.run_id}' has no {phase} phase waiting for a decision{hint}",
            why="conflict",
            field="data.phase",
        )
    if getattr(ev, "decision", "") == "reject" and not getattr(ev, "reason", "").strip():
        raise InjectionRefused(
            "a rejection needs a reason: it tells the spec what to change", field="data.reason"
        )
    return ev.model_copy(update={"attempt": mine[-1].attempt})


def _discovery(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    seq = getattr(ev, "discovery", 0)
    ended = ("discovery.decided", "discovery.recorded", "discovery.rejected")
    done = {getattr(e, "discovery", 0) for e in log if e.kind in ended}
    waiting = {e.discovery: e for e in log if isinstance(e, DiscoveryAwaiting) and e.discovery not in done}
    if seq not in waiting:
        hint = f"waiting now: {', '.join(map(str, sorted(waiting)))}" if waiting else "none is waiting"
        raise InjectionRefused(
            f"run '{ev.run_id}' has no discovery {seq} waiting for a decision; {hint}", why="conflict",
            field="data.discovery",
        )  # fmt: skip
    if getattr(ev, "decision", "") == "reject" and not getattr(ev, "reason", "").strip():
        raise InjectionRefused(
            "a rejection needs a reason: it is recorded with the discovery", field="data.reason"
        )
    w = waiting[seq]
    return ev.model_copy(update={"task_id": w.task_id, "attempt": w.attempt})


def _budget(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    scope, tokens, usd = (
        getattr(ev, "scope", "run"),
        getattr(ev, "add_tokens", 0),
        getattr(ev, "add_usd", 0.0),
    )
    if tokens == 0 and usd == 0:
        raise InjectionRefused("give a positive amount to raise the budget by", field="data.add_tokens")
    if scope != "run" and scope not in state.tasks:
        raise InjectionRefused(
            f"run '{ev.run_id}' has no task '{scope}' (the scope is 'run' or a task id)", why="not_found",
            field="data.scope",
        )  # fmt: skip
    return ev


def _added(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    spec = ev.spec  # type: ignore[union-attr]
    try:
        state.graph.check([spec])
    except Exception as exc:  # a duplicate id, an unknown dependency, a cycle
        raise InjectionRefused(f"data.spec: {exc}", why="conflict", field="data.spec") from exc
    return ev.model_copy(update={"task_id": spec.id, "order": len(state.tasks)})


def _scheduled(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    spec = ev.schedule  # type: ignore[union-attr]
    if any(e.kind == "schedule.created" and e.schedule.id == spec.id for e in log):  # type: ignore[union-attr]
        raise InjectionRefused(
            f"run '{ev.run_id}' has a schedule '{spec.id}' already", why="conflict", field="data.schedule.id"
        )
    if spec.message is not None:
        msg = build(ev.run_id, "agent.message", spec.message)
        _task(msg, state, agent=True)
    else:
        kind = str((spec.event or {}).get("kind", ""))
        if kind not in SCHEDULABLE:
            raise InjectionRefused(
                f"a schedule may inject one of: {', '.join(SCHEDULABLE)} (or a message), not '{kind}'",
                field="data.schedule.event.kind",
            )
        try:
            build(ev.run_id, kind, (spec.event or {}).get("data") or {})
        except InjectionRefused as exc:
            raise InjectionRefused(f"data.schedule.event: {exc}", field="data.schedule.event") from exc
    return ev


def _unscheduled(ev: Event, log: Sequence[Event], state: RunState) -> Event:
    sid = getattr(ev, "schedule_id", "")
    known = {e.schedule.id for e in log if e.kind == "schedule.created"}  # type: ignore[union-attr]
    gone = {getattr(e, "schedule_id", "") for e in log if e.kind == "schedule.cancelled"}
    if sid not in known - gone:
        live = ", ".join(sorted(known - gone)) or "none"
        raise InjectionRefused(
            f"run '{ev.run_id}' has no active schedule '{sid}' (active: {live})",
            why="not_found",
            field="data.schedule_id",
        )
    return ev


_RULES: dict[str, Callable[[Event, Sequence[Event], RunState], Event]] = {
    "task.cancel_requested": _cancel,
    "agent.answered": _answered,
    "agent.message": _message,
    "agent.paused": _hold,
    "agent.resumed": _hold,
    "spec.gate_decided": _gate,
    "discovery.decided": _discovery,
    "budget.raised": _budget,
    "task.added": _added,
    "schedule.created": _scheduled,
    "schedule.cancelled": _unscheduled,
}
