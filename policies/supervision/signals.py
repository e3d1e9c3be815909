"""The guardian's deterministic signals over one agent attempt's trajectory: each a pure function
with a default threshold, evaluated on every event, with no model and no clock read (the time is
passed in). A signal at `warn` is worth a look (it lets the guardian ask a model early); at
`act` it is reason enough to intervene.

They look at structure, not length: a long trajectory is not a failure once difficulty is
accounted for; repetition, editing blind, and finishing untested are."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Literal

from omoi.runtime.supervision.trajectory import EDITS, Call, Trajectory

Level = Literal["warn", "act"]


@dataclass(frozen=True)
class Signal:
    name: str
    level: Level
    evidence: str  # what was seen, in words a model or a person can check against the log


@dataclass(frozen=True)
class Thresholds:
    identical_warn: int = 3  # the same call, back to back
    identical_act: int = 4
    same_error: int = 5  # the same error signature ...
    error_window: int = 30  # ... within this many calls
    action_error: int = 3  # one call that failed, made again and failing again, this many times
    alternation: int = 6  # A-B-A-B... over this many calls
    reverts: int = 2  # a file's content back to an earlier version this many times
    idle_s: float = 600.0  # no turn and no tool call for this long
    timeouts: int = 3
    malformed: int = 3
    bounced: int = 3  # failed acceptance rounds
    burn_margin: float = 1.0  # projected spend over the budget by this factor
    heartbeat_s: float = 30.0  # an agent shows it is alive this often (OMOI_AGENT_HEARTBEAT_INTERVAL)
    unresponsive: int = 3  # heartbeats missed: 1 warn, 2 degraded, this many unresponsive


@dataclass(frozen=True)
class Budget:
    """What the attempt may spend, and the turns it may take (the projection's horizon)."""

    tokens: int | None = None
    usd: float | None = None
    max_turns: int = 50


def error_signature(text: str) -> str:
    """An error as a class, not an instance: the last meaningful line, numbers, addresses and
    quoted names replaced, so `line 12` and `line 13` of the same failure count as one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("exit code")]
    last = lines[-1] if lines else text.strip()
    last = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", last)
    return re.sub(r"(['\"]).*?\1", "'…'", last)[:200]


def identical_calls(t: Trajectory, th: Thresholds) -> Signal | None:
    run = 0
    for call in reversed(t.calls):
        if call.key != t.calls[-1].key:
            break
        run += 1
    if run < th.identical_warn:
        return None
    level: Level = "act" if run >= th.identical_act else "warn"
    return Signal("identical_calls", level, f"{run} identical `{t.calls[-1].tool}` calls in a row")


def repeated_error(t: Trajectory, th: Thresholds) -> Signal | None:
    errors = [error_signature(c.error) for c in t.calls[-th.error_window :] if c.error is not None]
    if not errors:
        return None
    sig, n = Counter(errors).most_common(1)[0]
    if n < th.same_error:
        return None
    return Signal(
        "repeated_error", "act", f"the same error {n} times in the last {th.error_window} calls: {sig}"
    )


def action_error_loop(t: Trajectory, th: Thresholds) -> Signal | None:
    failed = Counter(c.key for c in t.calls if c.error is not None and not c.malformed)
    if not failed:
        return None
    key, n = failed.most_common(1)[0]
    if n < th.action_error:
        return None
    return Signal("action_error_loop", "act", f"one call failed {n} times: {key[:160]}")


def alternation(t: Trajectory, th: Thresholds) -> Signal | None:
    tail = [c.key for c in t.calls[-th.alternation :]]
    if len(tail) < th.alternation or tail[0] == tail[1]:
        return None
    if all(k == tail[i % 2] for i, k in enumerate(tail)):
        tools = " / ".join(c.tool for c in t.calls[-2:])
        return Signal("alternation", "act", f"{th.alternation} calls alternating between two: {tools}")
    return None


def content_reverts(t: Trajectory, th: Thresholds) -> Signal | None:
    for path, versions in t.contents.items():
        back = sum(1 for i, v in enumerate(versions) if v in versions[: i - 1] and versions[i - 1] != v)
        if back >= th.reverts:
            return Signal("content_reverts", "act", f"{path} went back to an earlier version {back} times")
    return None


def idle(t: Trajectory, th: Thresholds, now: datetime) -> Signal | None:
    if t.last_work is None:
        return None
    quiet = (now - t.last_work).total_seconds()
    if quiet < th.idle_s:
        return None
    return Signal("idle", "act", f"no turn and no tool call for {quiet:.0f}s")


def _counted(
    name: str, calls: Sequence[Call], what: Callable[[Call], bool], limit: int, words: str
) -> Signal | None:
    n = sum(1 for c in calls if what(c))
    return Signal(name, "act", f"{n} {words}") if n >= limit else None


def timeouts(t: Trajectory, th: Thresholds) -> Signal | None:
    return _counted("timeouts", t.calls, lambda c: c.timed_out, th.timeouts, "commands timed out")


def malformed(t: Trajectory, th: Thresholds) -> Signal | None:
    return _counted("malformed_calls", t.calls, lambda c: c.malformed, th.malformed, "malformed tool calls")


def bounced(t: Trajectory, th: Thresholds) -> Signal | None:
    if t.bounced < th.bounced:
        return None
    return Signal("bounced", "act", f"{t.bounced} acceptance rounds failed")


def outside_scope(t: Trajectory) -> Signal | None:
    """Edits to files the task does not name (only when it names any; patterns allowed)."""
    if not t.declared:
        return None
    edited = {c.path for c in t.calls if c.tool in EDITS and c.error is None}
    outside = sorted(p for p in edited if not any(p == d or fnmatchcase(p, d) for d in t.declared))
    return (
        Signal("outside_scope", "warn", f"edited files the task does not name: {', '.join(outside[:5])}")
        if outside
        else None
    )


def blind_edits(t: Trajectory) -> Signal | None:
    blind = sorted({c.path for c in t.calls if c.tool == "edit_file" and c.path not in t.reads | t.created})
    return (
        Signal("blind_edit", "warn", f"edited without reading first: {', '.join(blind[:5])}")
        if blind
        else None
    )


def untested_finish(t: Trajectory) -> Signal | None:
    if not t.finished_untested:
        return None
    return Signal("untested_finish", "warn", "finished with no command run since the last edit")


def burn_rate(t: Trajectory, th: Thresholds, budget: Budget) -> Signal | None:
    """Spend per turn so far, projected over the turns the attempt may still take."""
    if t.turns == 0:
        return None
    left = max(0, budget.max_turns - t.turns)
    for spent, limit, unit in ((t.tokens, budget.tokens, "tokens"), (t.cost_usd, budget.usd, "USD")):
        if limit is None:
            continue
        projected = spent + spent / t.turns * left
        if projected > limit * th.burn_margin:
            return Signal(
                "burn_rate", "warn", f"projected {projected:,.4g} {unit} of a budget of {limit:,.4g}"
            )
    return None


def liveness(t: Trajectory, th: Thresholds, now: datetime) -> Signal | None:
    """Heartbeats missed since the attempt's last event: 1 warn, 2 degraded (both `warn`),
    `unresponsive` or more `act` (its process is wedged or gone: restart it). Judged apart from
    the other signals, even mid-turn, and never a reason to ask a model."""
    if t.last_seen is None:
        return None
    quiet = (now - t.last_seen).total_seconds()
    missed = int(quiet // th.heartbeat_s)
    if missed < 1:
        return None
    state = "unresponsive" if missed >= th.unresponsive else "degraded" if missed >= 2 else "late"
    level: Level = "act" if missed >= th.unresponsive else "warn"
    return Signal(
        "heartbeat", level, f"{state}: no sign of life for {quiet:.0f}s ({missed} heartbeats missed)"
    )


def evaluate(
    t: Trajectory, now: datetime, th: Thresholds = Thresholds(), budget: Budget = Budget()
) -> list[Signal]:
    """Every signal that fires now, the ones to act on first."""
    found = [
        identical_calls(t, th) if t.calls else None,
        repeated_error(t, th),
        action_error_loop(t, th),
        alternation(t, th),
        content_reverts(t, th),
        idle(t, th, now),
        timeouts(t, th),
        malformed(t, th),
        bounced(t, th),
        outside_scope(t),
        blind_edits(t),
        untested_finish(t),
        burn_rate(t, th, budget),
    ]
    return sorted((s for s in found if s is not None), key=lambda s: s.level != "act")
