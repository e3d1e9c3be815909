"""When the conductor asks a model whether the run hangs together, what it shows it, and what it
makes of the answer. Pure over a ConductorState; the conductor actor makes the call.

Asked only with a new picture of the run (a `conductor.assessed` about to be written) and only
when there is something to weigh: two or more agents at work, a stall, or a budget pace over. The
model sees excerpts (each running task's goal and files, who waits on what, what the conductor
already ordered or told), not the agents' conversations. It answers through `report_coherence`;
an answer that is not a well-formed call is "unknown". Its messages go only to running tasks,
tagged `[omoi conductor]`, into their next model request: advice, never an order the rules did
not make (ordering and pausing stay deterministic, so a replay decides the same)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omoi.policies.supervision.answers import tool_answer
from omoi.policies.supervision.conductor import TAG
from omoi.runtime.log.events import ConductorActed, ConductorAssessed
from omoi.runtime.supervision.conduct import ConductorState

TOOL_NAME = "report_coherence"
TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Report whether the run's agents work as one team. Call it exactly once.",
    "input_schema": {
        "type": "object",
        "properties": {
            "coherent": {"type": "boolean", "description": "the tasks add up to the goal, without clashes"},
            "score": {"type": "number", "minimum": 0, "maximum": 1, "description": "coherence, 0 to 1"},
            "issues": {"type": "array", "items": {"type": "string"}, "description": "what is at odds"},
            "messages": {
                "type": "array",
                "description": "advice for a running task's agent, at most one per task",
                "items": {
                    "type": "object",
                    "properties": {"task": {"type": "string"}, "text": {"type": "string"}},
                    "required": ["task", "text"],
                },
            },
            "summary": {"type": "string", "description": "the run's state, in one sentence"},
        },
        "required": ["coherent", "score", "summary"],
    },
}
SYSTEM = (
    "You oversee several AI coding agents working on one git repository at the same time, each on "
    "its own task. You are shown each running task's goal and files, what waits on a person, and "
    "what was already done to keep them apart. Judge whether they work as one team: duplicated "
    "work, tasks that contradict each other, work no task covers. Answer only by calling "
    "report_coherence. Send a message only to a task whose agent should change what it does, "
    "with one concrete instruction."
)
CLIP = 400
MAX_MESSAGES = 4


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    task: str
    text: str = Field(min_length=1)


class Answer(BaseModel):
    """The tool input a usable coherence assessment has."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    coherent: bool
    score: float = Field(ge=0, le=1)
    issues: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class Verdict:
    coherence: Literal["coherent", "incoherent", "unknown"]
    answer: Answer | None = None
    error: str = ""


def wanted(state: ConductorState, picture: ConductorAssessed) -> str | None:
    """Why a model should look at the run now, or None."""
    agents = [t for t in state.running if t in state.agents]
    if len(agents) >= 2:
        return f"{len(agents)} agents at work"
    if picture.stalled:
        return "the run is stalled"
    if picture.pace == "over":
        return "the budget pace is over"
    return None


def excerpts(state: ConductorState, picture: ConductorAssessed) -> str:
    lines = [f"Run {state.run_id}: {picture.summary}", "Running tasks:"]
    for task in sorted(state.running):
        prompt, files = state.agents.get(task, ("(a command, not an agent)", ()))
        named = f" Files: {', '.join(files[:12])}." if files else ""
        lines.append(f"- {task} (attempt {state.running[task][0]}): {_clip(prompt, CLIP)}{named}")
    if picture.waiting:
        lines += ["Waiting on a person:", *(f"- {w}" for w in picture.waiting)]
    held = sorted(" + ".join(sorted(pair)) for pair in state.ordered)
    if held:
        lines.append("Already ordered (one waits for the other): " + "; ".join(held))
    if picture.overlaps:
        lines.append("Already told they name the same files: " + "; ".join(picture.overlaps))
    return "\n".join(lines)


def parse(tool_uses: Sequence[dict[str, Any]]) -> Verdict:
    answer = tool_answer(tool_uses, TOOL_NAME, Answer)
    if isinstance(answer, str):
        return Verdict("unknown", error=answer)
    return Verdict("coherent" if answer.coherent else "incoherent", answer)


def judged(picture: ConductorAssessed, verdict: Verdict, spend: dict[str, Any]) -> ConductorAssessed:
    """The picture with the model's verdict on it."""
    a = verdict.answer
    return picture.model_copy(
        update={
            "coherence": verdict.coherence,
            "score": a.score if a else None,
            "issues": a.issues if a else (),
            "error": verdict.error,
            **spend,
        }
    )


def messages(state: ConductorState, picture: ConductorAssessed, verdict: Verdict) -> list[ConductorActed]:
    """The model's advice to running tasks, one each, ids from the assessment they came with."""
    out: list[ConductorActed] = []
    seen: set[str] = set()
    for m in verdict.answer.messages if verdict.answer else ():
        if m.task not in state.running or m.task in seen or len(out) >= MAX_MESSAGES:
            continue
        seen.add(m.task)
        text = m.text if m.text.startswith(TAG) else f"{TAG} {m.text.strip()}"
        out.append(
            ConductorActed(
                id=f"{picture.id}-message-{m.task}", run_id=state.run_id, task_id=m.task,
                attempt=state.running[m.task][0], source=picture.source, action="message", reason=text,
            )
        )  # fmt: skip
    return out


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
