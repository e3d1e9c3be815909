"""When a guardian asks a model about an agent attempt, what it shows it, and what it makes of
the answer. Pure over a trajectory and plain values; the guardian actor makes the call.

The model is asked only on the guardian's timer and only when something says it is worth it (a
signal at warn or act, or the cheap filter: most recent calls failing, or many turns without an
edit). An LLM-free filter like this one saved about 30% of a supervisor's tokens with no loss of
success (SupervisorAgent, 2025). The model sees excerpts (the goal, the signals, the last calls
and their errors), not the whole trajectory: monitors judge better that way. An answer that is
not a well-formed `report_assessment` call is "unknown", never "aligned", and an assessment only
ever adds a signal: it cannot hide a deterministic one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omoi.policies.supervision.answers import tool_answer
from omoi.policies.supervision.signals import Signal
from omoi.runtime.supervision.trajectory import EDITS, Trajectory

NAME = "assessment"  # the signal an assessment that asks for steering raises
TOOL_NAME = "report_assessment"
TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Report your assessment of the agent's trajectory. Call it exactly once.",
    "input_schema": {
        "type": "object",
        "properties": {
            "aligned": {"type": "boolean", "description": "the agent is working towards its task"},
            "score": {"type": "number", "minimum": 0, "maximum": 1, "description": "alignment, 0 to 1"},
            "needs_steering": {"type": "boolean"},
            "steering_type": {"type": "string", "enum": ["guidance", "correction", "emergency"]},
            "recommendation": {"type": "string", "description": "what the agent should do next"},
            "summary": {"type": "string", "description": "what the agent is doing, in one sentence"},
        },
        "required": ["aligned", "score", "needs_steering", "recommendation", "summary"],
    },
}
SYSTEM = (
    "You supervise an AI coding agent working on one task in a git repository. You are shown "
    "excerpts of its trajectory: its task, signals a deterministic monitor raised, and its most "
    "recent tool calls with their errors. Judge whether it is making progress towards its task. "
    "Answer only by calling report_assessment. Ask for steering only when the agent is off track "
    "or stuck, and then recommend one concrete next step."
)
RECENT_CALLS = 12
CLIP = 240


@dataclass(frozen=True)
class AssessRules:
    grace_s: float = 120.0  # a new agent is not assessed before it has worked this long
    idle_turns: int = 8  # the cheap filter: this many turns without an edit ...
    failing: float = 0.5  # ... or this share of the recent calls failing


class Answer(BaseModel):
    """The tool input a usable assessment has."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    aligned: bool
    score: float = Field(ge=0, le=1)
    needs_steering: bool
    steering_type: Literal["guidance", "correction", "emergency"] | None = None
    recommendation: str = ""
    summary: str = ""


@dataclass(frozen=True)
class Verdict:
    verdict: Literal["aligned", "drifting", "unknown"]
    answer: Answer | None = None
    error: str = ""


def wanted(
    t: Trajectory, signals: Sequence[Signal], now: datetime, assessed_turn: int, rules: AssessRules
) -> str | None:
    """Why the model should look at this attempt now, or None (no call: nothing new, too young,
    or nothing suspicious)."""
    if t.turns <= assessed_turn or not t.settled:
        return None
    if t.started_at is not None and (now - t.started_at).total_seconds() < rules.grace_s:
        return None
    if signals:
        return "signals: " + ", ".join(sorted({s.name for s in signals}))
    recent = t.calls[-RECENT_CALLS:]
    if len(recent) >= 4 and sum(c.error is not None for c in recent) / len(recent) >= rules.failing:
        return f"filter: {sum(c.error is not None for c in recent)} of the last {len(recent)} calls failed"
    last_edit = max((c.turn for c in t.calls if c.tool in EDITS), default=0)
    if t.turns - last_edit >= rules.idle_turns:
        return f"filter: {t.turns - last_edit} turns without an edit"
    return None


def excerpts(t: Trajectory, goal: str, signals: Sequence[Signal]) -> str:
    """What the model is shown: a page, whatever the trajectory's length."""
    lines = [f"Task {t.task_id} (attempt {t.attempt}): {_clip(goal, 1200)}"]
    lines.append(f"Turns so far: {t.turns}; tokens spent: {t.tokens}.")
    if t.declared:
        lines.append("Files the task names: " + ", ".join(t.declared[:20]))
    edited = sorted({c.path for c in t.calls if c.tool in EDITS and c.path})
    lines.append("Files edited: " + (", ".join(edited[:20]) or "none"))
    lines.append("Files read: " + (", ".join(sorted(t.reads)[:20]) or "none"))
    if signals:
        lines.append("Monitor signals:")
        lines += [f"- {s.name} ({s.level}): {s.evidence}" for s in signals]
    lines.append(f"Last {min(RECENT_CALLS, len(t.calls))} tool calls (oldest first):")
    for c in t.calls[-RECENT_CALLS:]:
        result = "ok" if c.error is None else "error: " + _clip(_last_line(c.error), CLIP)
        lines.append(f"- turn {c.turn} {_clip(c.key, CLIP)} -> {result}")
    return "\n".join(lines)


def parse(tool_uses: Sequence[dict[str, Any]]) -> Verdict:
    """The verdict in a reply's tool calls; "unknown" (with why) unless it is well-formed."""
    answer = tool_answer(tool_uses, TOOL_NAME, Answer)
    if isinstance(answer, str):
        return Verdict("unknown", error=answer)
    drifting = answer.needs_steering or not answer.aligned
    return Verdict("drifting" if drifting else "aligned", answer)


def as_signal(verdict: str, needs_steering: bool, recommendation: str, score: float | None) -> Signal | None:
    """An assessment asking for steering is a signal to act on; anything else adds nothing."""
    if verdict != "drifting" or not needs_steering:
        return None
    seen = f"score {score:.2f}" if score is not None else "no score"
    advice = recommendation.strip() or "no recommendation given"
    return Signal(NAME, "act", f"a supervising model judged the work off track ({seen}): {advice}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
