"""What the spec's agents are asked, phase by phase. Each prompt carries the goal, what Explore
found, and the documents of the phases before; each phase hands in its document through a tool,
so the answer is data to check, never prose to scrape."""

from __future__ import annotations

from omoi.runtime.explore.static import Exploration

SUBMIT_TOOLS = {
    "intent": "classify_intent",
    "explore": "report_findings",
    "requirements": "write_requirements",
    "design": "write_design",
    "tasks": "write_tasks",
    "review": "review",
}

_ASKS = {
    "intent": (
        "Decide how much specification this goal needs: trivial (one small change, a single task, no "
        "spec), explicit (the steps are clear: a short list of requirements, then tasks) or open_ended "
        "(requirements and a design first). Call classify_intent."
    ),
    "explore": (
        "Explore the repository for this goal: read the files the change will touch, how tests are "
        "written, the conventions to follow, and the risks. A static analysis already found what is "
        "below; report what it cannot see with report_findings."
    ),
    "requirements": (
        "Write the requirements of this goal: numbered REQ-1, REQ-2, ..., each with acceptance criteria "
        "that a test can check. Ground them in the code that exists. Call write_requirements."
    ),
    "design": (
        "Write the design: the components, their interfaces and the files the change touches. Name real "
        "files and symbols of the repository (listed below); mark new files as change: create. "
        "Call write_design."
    ),
    "tasks": (
        "Split the work into tasks for coding agents, as a dependency DAG: each task small enough for one "
        "agent, with the requirements it implements, the existing files it changes, the new files it "
        "creates, and acceptance commands that exit 0 once it is done, using only the repository's own "
        "commands and tools. Independent tasks must not depend on each other, so they run in parallel. "
        "Call write_tasks."
    ),
}


def phase_message(
    phase: str,
    goal: str,
    exploration: Exploration,
    documents: dict[str, str],
    feedback: str = "",
) -> str:
    parts = [
        f"# Goal\n{goal}",
        f"# Your job\n{_ASKS[phase]}",
        f"# What Explore found\n{exploration.summary()}",
    ]
    if phase == "design":
        symbols = ", ".join(s.name for s in exploration.symbols[:300])
        parts.append(f"# Symbols of the repository (first 300)\n{symbols}")
    if phase == "tasks":
        programs = ", ".join(exploration.programs)
        parts.append(f"# Programs acceptance commands may use\n{programs}")
    for name, text in documents.items():
        parts.append(f"# {name}\n{text}")
    if feedback:
        parts.append(f"# Fix these problems of your last version\n{feedback}")
    return "\n\n".join(parts)


def review_message(phase: str, goal: str, documents: dict[str, str], spec_dir: str) -> str:
    docs = "\n\n".join(f"# {name}\n{text}" for name, text in documents.items())
    return (
        f"# Goal\n{goal}\n\n# Your job\nReview the {phase} of this spec (in {spec_dir}) against the goal and "
        "the code. Answer with review: verdict OKAY if it can be built on as it is, or REJECT with at most 3 "
        f"concrete issues, each saying what to change.\n\n{docs}"
    )


def intent_message(goal: str, exploration: Exploration) -> str:
    return f"# Goal\n{goal}\n\n# The repository\n{exploration.summary(2000)}\n\n{_ASKS['intent']}"
