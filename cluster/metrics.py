"""A run's metrics on Ray's dashboard (`ray.util.metrics`, exported by Ray as `ray_omoi_*`), every
one tagged with the run id. They are read off the events where the actors are wrapped: the bus
(`DurableBus`) counts what the log gains, whoever wrote it; a subscriber's proxy (`BusProxy.read`)
measures how long an event took to reach it; a sandbox slot says whether its warm container is
ready. The log stays the source of truth: after a restart the gauges are folded again from it,
and the counters start again from zero as Prometheus counters do."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram

from omoi.runtime.log.events import Event
from omoi.runtime.run.state import FOLDED, STATUSES, RunState

LAG_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_METRICS: dict[str, Any] = {}


def _metric(kind: type[Any], name: str, description: str, tags: tuple[str, ...], **kw: Any) -> Any:
    """One object per metric and process: Ray aggregates by name and tags."""
    if name not in _METRICS:
        _METRICS[name] = kind(name, description=description, tag_keys=("run_id", *tags), **kw)
    return _METRICS[name]


class RunMetrics:
    """What the bus sees of a run, as gauges and counters."""

    READS = (*FOLDED, "agent.started", "agent.finished")  # what `fold` needs of a log read again

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._state = RunState(run_id)
        self._agents: set[tuple[str, int]] = set()
        self._last: dict[str, int] = {}  # the gauges' values as last set
        self._tasks = _metric(Gauge, "omoi_tasks", "Tasks of the run by state.", ("state",))
        self._running = _metric(Gauge, "omoi_agents_running", "Agent attempts running now.", ())
        self._tokens = _metric(
            Counter, "omoi_model_tokens", "Model tokens, by model and kind.", ("model", "kind")
        )
        self._cost = _metric(Counter, "omoi_cost_usd", "Model cost in USD by model.", ("model",))
        self._retries = _metric(Counter, "omoi_model_retries", "Model calls retried, by status.", ("status",))
        self._actions = _metric(
            Counter, "omoi_interventions", "Guardian interventions by action.", ("action",)
        )
        self._merges = _metric(
            Counter, "omoi_merge_conflicts", "Merge conflicts by how they were resolved.", ("resolution",)
        )

    def fold(self, events: Iterable[Event]) -> None:
        """The gauges from a log read from its start (a bus started again)."""
        for ev in events:
            self._apply(ev)
        self._gauges()

    def observe(self, events: Iterable[Event]) -> None:
        """What the log just gained."""
        run = {"run_id": self.run_id}
        for ev in events:
            self._apply(ev)
            match ev.kind:
                case "agent.turn":
                    u = ev.usage
                    for kind, n in (
                        ("input", u.input_tokens), ("output", u.output_tokens),
                        ("cache_write", u.cache_write_tokens), ("cache_read", u.cache_read_tokens),
                    ):  # fmt: skip
                        if n:
                            self._tokens.inc(n, {**run, "model": ev.model, "kind": kind})
                    if ev.cost_usd:
                        self._cost.inc(ev.cost_usd, {**run, "model": ev.model})
                case "guardian.assessed" | "guardian.replanned" | "conductor.assessed" if ev.usage.total:
                    self._tokens.inc(ev.usage.total, {**run, "model": ev.model or "?", "kind": "supervision"})
                    if ev.cost_usd:
                        self._cost.inc(ev.cost_usd, {**run, "model": ev.model or "?"})
                case "model.retried":
                    self._retries.inc(1, {**run, "status": str(ev.status or "connection")})
                case "guardian.intervened":
                    self._actions.inc(1, {**run, "action": ev.action})
                case "merge.resolved":
                    self._merges.inc(1, {**run, "resolution": ev.how})
                case _:
                    pass
        self._gauges()

    def _apply(self, ev: Event) -> None:
        self._state.apply(ev)
        task, attempt = getattr(ev, "task_id", ""), getattr(ev, "attempt", 0)
        match ev.kind:
            case "agent.started" if ev.role != "oracle":
                self._agents.add((task, attempt))
            case "agent.finished" | "task.succeeded" | "task.failed" | "task.cancelled":
                self._agents.discard((task, attempt))
            case "task.retrying":  # `attempt` is the next one: the last has ended
                self._agents.discard((task, attempt - 1))
            case _:
                pass

    def _gauges(self) -> None:
        """Only what changed: the bus calls this on every append."""
        counts = self._state.counts()
        for state in STATUSES:
            if self._last.get(state) != counts.get(state, 0):
                self._last[state] = counts.get(state, 0)
                self._tasks.set(self._last[state], {"run_id": self.run_id, "state": state})
        if self._last.get("agents") != len(self._agents):
            self._last["agents"] = len(self._agents)
            self._running.set(len(self._agents), {"run_id": self.run_id})


def observe_lag(events: Iterable[Event]) -> None:
    """Publish → delivered, for each event a subscriber just read."""
    now = time.time()
    lag = _metric(
        Histogram, "omoi_bus_lag_seconds", "From an event's creation to its delivery to a subscriber.", (),
        boundaries=LAG_BOUNDARIES,
    )  # fmt: skip
    for ev in events:
        lag.observe(max(0.0, now - ev.ts.timestamp()), {"run_id": ev.run_id})


_POOL: dict[tuple[str, str], int] = {}


def pool_ready(run_id: str, slot: str, ready: int) -> None:
    """Set on change only: a slot reports after every attempt, and a record costs a call into Ray."""
    if _POOL.get((run_id, slot)) == ready:
        return
    _POOL[(run_id, slot)] = ready
    _metric(Gauge, "omoi_sandbox_pool_ready", "Warm sandboxes ready, by slot.", ("slot",)).set(
        ready, {"run_id": run_id, "slot": slot}
    )
