"""The ladder's `replan` rung: a planner model rewrites the task's prompt for the next attempt,
from the task, what the stopped attempts did and why they were stopped. Pure: what to ask, and
what to make of the answer; the guardian actor makes the call.

The next attempt waits before its first model call until the rewrite is in the log; if the call
fails or the answer is unusable, it goes on with the rung's fixed words (plan anew before
changing anything), so a failing planner never stalls a task."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from omoi.policies.supervision import assessment
from omoi.policies.supervision.answers import tool_answer
from omoi.policies.supervision.interventions import TAG
from omoi.runtime.supervision.trajectory import Trajectory

TOOL_NAME = "rewrite_task"
TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Give the rewritten task for the agent's next attempt. Call it exactly once.",
    "input_schema": {
        "type": "object",
        "properties": {
            "prompt": {
                "type": "string",
                "description": "the task, rewritten: what to do, and how to check it",
            },
            "rationale": {"type": "string", "description": "what failed before, and what this avoids"},
        },
        "required": ["prompt", "rationale"],
    },
}
SYSTEM = (
    "You plan work for an AI coding agent. Its earlier attempts at a task were stopped because "
    "they got stuck; you are shown the task and excerpts of the last attempt. Rewrite the task "
    "for a fresh attempt: keep its goal, name what to read first, a different approach from the "
    "one that failed, and how to check the result. Answer only by calling rewrite_task."
)


class Rewrite(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: str = Field(min_length=20, max_length=8000)
    rationale: str = ""


def request(goal: str, last: Trajectory, why: str) -> str:
    """What the planner is shown: the task, why the attempts were stopped, the last one's excerpts."""
    return f"Why the attempts were stopped: {why}\n\n" + assessment.excerpts(last, goal, ())


def parse(tool_uses: list[dict[str, Any]]) -> Rewrite | str:
    """The rewrite, or why the answer is unusable."""
    return tool_answer(tool_uses, TOOL_NAME, Rewrite)


def note(rewrite: Rewrite) -> str:
    """What the next attempt's first request carries."""
    return (
        f"{TAG} This is a new attempt, after a restart did not help either. A planner rewrote your "
        f"task; follow this version:\n\n{rewrite.prompt}\n\n(Why: {rewrite.rationale or 'not given'})"
    )
