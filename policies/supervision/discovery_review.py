"""The `review` gate on discoveries: a reviewer model reads the report next to the run's tasks and
approves it as new work or rejects it, through a tool. Pure: what to ask, and what to make of the
answer; the discovery actor makes the call. An answer that is not a well-formed decision, or a
failed call, approves nothing: the discovery then waits for a person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omoi.policies.supervision.answers import tool_answer
from omoi.runtime.log.events import AgentDiscovery

TOOL_NAME = "decide_discovery"
TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Approve the discovery as a new task of the run, or reject it. Call it exactly once.",
    "input_schema": {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "reason": {"type": "string", "description": "why, in one or two sentences"},
        },
        "required": ["decision", "reason"],
    },
}
SYSTEM = (
    "You review what an AI coding agent discovered while it worked on its task: a bug, a missing "
    "requirement, or other work. Approve it if it is real, needed for the run's goal, and not "
    "already covered by one of the run's tasks; reject it otherwise. Answer only by calling "
    "decide_discovery."
)


class Decision(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1)


def request(report: AgentDiscovery, tasks: Mapping[str, str]) -> str:
    listed = "\n".join(f"- {tid}: {text[:200]}" for tid, text in list(tasks.items())[:50])
    evidence = f"\nEvidence: {report.evidence}" if report.evidence else ""
    return (
        f"Reported by the agent of task {report.task_id} ({report.type}, priority {report.priority}):\n"
        f"{report.title}\n{report.description}{evidence}\n\nThe run's tasks:\n{listed or '(none)'}"
    )


def parse(tool_uses: Sequence[dict[str, Any]]) -> Decision | str:
    """The decision, or why the answer is unusable."""
    return tool_answer(tool_uses, TOOL_NAME, Decision)
