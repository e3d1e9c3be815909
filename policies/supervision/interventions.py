"""What a guardian does about the signals it sees: the intervention ladder, its pacing, and whether
an intervention worked. Pure over plain values; the time is passed in.

The ladder climbs one rung each time signals to act on persist after the last intervention:
steer, steer again, roll back to the last good commit and restart the attempt, replan (a planner
rewrites the task's prompt), cancel, then ask a person. A steer is never stacked on one the agent
has not read yet, and interventions are at least `cooldown_s` apart (the first is not delayed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from omoi.policies.supervision.signals import Signal

Action = Literal["steer", "restart", "replan", "cancel", "ask_human"]
LADDER: tuple[Action, ...] = ("steer", "steer", "restart", "replan", "cancel", "ask_human")
COOLDOWN_S = 300.0
OUTCOME_TURNS = 3  # an intervention worked if its signals cleared within this many turns
TAG = "[omoi guardian]"


@dataclass(frozen=True)
class History:
    """What the guardian has done about one attempt so far (a fold of its events)."""

    taken: tuple[Action, ...] = ()
    last_at: datetime | None = None
    unread: bool = False  # a steer that has not gone into a model request yet


@dataclass(frozen=True)
class Decision:
    action: Action
    signals: tuple[Signal, ...]
    message: str  # what the agent (or the person) is told


def decide(
    signals: Sequence[Signal], history: History, now: datetime, cooldown_s: float = COOLDOWN_S
) -> Decision | None:
    """The next intervention, or None: nothing to act on, a steer still unread, or too soon."""
    acting = tuple(s for s in signals if s.level == "act")
    if not acting or history.unread:
        return None
    if history.last_at is not None and (now - history.last_at).total_seconds() < cooldown_s:
        return None
    action = LADDER[min(len(history.taken), len(LADDER) - 1)]
    return Decision(action, acting, message(action, acting, again=history.taken.count(action)))


def message(action: Action, signals: Sequence[Signal], again: int = 0) -> str:
    """The words of an intervention: what was seen, and what to do instead."""
    seen = "; ".join(s.evidence for s in signals)
    match action:
        case "steer":
            first = "You seem to be stuck" if not again else "You are still stuck, after a first warning"
            return (
                f"{TAG} {first}: {seen}. Stop repeating what fails. Re-read the error, check your "
                "assumptions against the code (read the files involved), and try a different approach."
            )
        case "restart":  # read by the next attempt, in its first request
            return (
                f"{TAG} This is a new attempt. The previous one was stopped and its work rolled back to "
                f"the last good commit, because steering did not help: {seen}. Do not repeat what "
                "failed there; read the code involved first and take a different approach."
            )
        case "replan":
            return (
                f"{TAG} This is a new attempt, after a restart did not help either: {seen}. Before "
                "changing anything, write a short new plan for this task (what to read, what to "
                "change, how to check it) that avoids the approach that failed, then follow it."
            )
        case "cancel":
            return f"{TAG} The task is cancelled: {seen}."
        case "ask_human":
            return f"{TAG} A person is asked to look at this task: {seen}."


def outcome(triggered: Sequence[Signal], now: Sequence[Signal], turns_since: int) -> bool | None:
    """Whether an intervention worked, judged on what the agent did after it: False as soon as
    one of the signals it acted on fires again, True once `OUTCOME_TURNS` turns passed without
    that, None before."""
    names = {s.name for s in triggered}
    if any(s.name in names and s.level == "act" for s in now):
        return False
    return True if turns_since >= OUTCOME_TURNS else None
