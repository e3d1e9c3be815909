"""The documents a spec is made of, as the model writes them (through tools whose input schema is
these models) and as people read them (Markdown renderings next to the JSON).

Structure is checked here by pydantic; whether the content is grounded in the repository (files
exist, requirements are traced, commands can run) is judged by policies.spec.checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from omoi.runtime.explore.static import Exploration, Finding
from omoi.runtime.run.plan import Plan
from omoi.runtime.run.tasks import AgentSpec, Identifier, Role, TaskSpec

_REQ = re.compile(r"^REQ-[1-9][0-9]*$")


def _req_id(value: str) -> str:
    if not _REQ.match(value):
        raise ValueError(f"'{value}' is not a requirement id (REQ-1, REQ-2, ...)")
    return value


ReqId = Annotated[str, AfterValidator(_req_id)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Findings(_Doc):
    """What the explorer saw that a static analysis cannot: conventions, how tests are written,
    where the change will have to go, risks."""

    findings: tuple[Finding, ...] = Field(min_length=1, max_length=30)


class IntentDecision(_Doc):
    """How much specification the goal needs."""

    intent: Literal["trivial", "explicit", "open_ended"] = Field(
        description="trivial: one small change, no spec; explicit: the steps are clear, a short spec; "
        "open_ended: a full spec (requirements and design first)"
    )
    reason: str = Field(min_length=1)


class Requirement(_Doc):
    id: ReqId
    title: str = Field(min_length=3)
    description: str = ""
    acceptance_criteria: list[str] = Field(min_length=1, description="observable, testable statements")


class Requirements(_Doc):
    """Numbered requirements (REQ-1, REQ-2, ...), each with acceptance criteria."""

    summary: str = Field(min_length=1)
    requirements: list[Requirement] = Field(min_length=1, max_length=50)


class Component(_Doc):
    name: str = Field(min_length=1)
    responsibility: str = Field(min_length=1)
    files: list[str] = Field(default_factory=list, description="files of the repository it lives in")
    symbols: list[str] = Field(
        default_factory=list, description="existing classes/functions it uses or changes"
    )
    interfaces: list[str] = Field(default_factory=list, description="signatures it offers or changes")


class FileChange(_Doc):
    path: str = Field(min_length=1)
    change: Literal["modify", "create", "delete"]
    why: str = ""


class Design(_Doc):
    """The components, interfaces and files the change touches, naming real files and symbols."""

    overview: str = Field(min_length=1)
    components: list[Component] = Field(min_length=1, max_length=30)
    files: list[FileChange] = Field(min_length=1, max_length=200)
    risks: list[str] = Field(default_factory=list)


class SpecTask(_Doc):
    id: Identifier
    title: str = Field(min_length=1)
    description: str = Field(min_length=1, description="what the agent is asked to do")
    deps: list[Identifier] = Field(default_factory=list)
    role: Role = "worker"
    category: str = Field(default="default", min_length=1)
    requirements: list[ReqId] = Field(default_factory=list, description="the requirements it implements")
    files: list[str] = Field(default_factory=list, description="existing files it changes")
    creates: list[str] = Field(default_factory=list, description="new files it creates")
    acceptance: list[str] = Field(min_length=1, description="commands that exit 0 once the task is done")
    size: Literal["S", "M", "L"] = "M"


class Tasks(_Doc):
    """The tasks as a dependency DAG, each with acceptance commands the repository can run."""

    tasks: list[SpecTask] = Field(min_length=1, max_length=100)


class Review(_Doc):
    """A reviewer's verdict on one phase's documents."""

    verdict: Literal["OKAY", "REJECT"]
    issues: list[str] = Field(default_factory=list, max_length=3, description="concrete issues, at most 3")


# ---- Markdown --------------------------------------------------------------------------------------


def requirements_md(doc: Requirements, goal: str) -> str:
    out = [f"# Requirements\n\nGoal: {goal}\n\n{doc.summary}\n"]
    for r in doc.requirements:
        out.append(f"## {r.id}: {r.title}\n")
        if r.description:
            out.append(f"{r.description}\n")
        out.append("Acceptance criteria:\n" + "\n".join(f"- {c}" for c in r.acceptance_criteria) + "\n")
    return "\n".join(out)


def design_md(doc: Design) -> str:
    out = [f"# Design\n\n{doc.overview}\n", "## Components\n"]
    for c in doc.components:
        out.append(f"### {c.name}\n\n{c.responsibility}\n")
        for label, items in (("Files", c.files), ("Symbols", c.symbols), ("Interfaces", c.interfaces)):
            if items:
                out.append(f"{label}: " + ", ".join(f"`{i}`" for i in items) + "\n")
    out.append(
        "## Files\n\n"
        + "\n".join(f"- `{f.path}` ({f.change}){': ' + f.why if f.why else ''}" for f in doc.files)
    )
    if doc.risks:
        out.append("\n## Risks\n\n" + "\n".join(f"- {r}" for r in doc.risks))
    return "\n".join(out) + "\n"


def tasks_md(doc: Tasks) -> str:
    out = ["# Tasks\n", "| id | title | deps | role | size | requirements |", "|---|---|---|---|---|---|"]
    for t in doc.tasks:
        deps, reqs = ", ".join(t.deps) or "-", ", ".join(t.requirements) or "-"
        out.append(f"| `{t.id}` | {t.title} | {deps} | {t.role} | {t.size} | {reqs} |")
    for t in doc.tasks:
        out.append(f"\n## {t.id}: {t.title}\n\n{t.description}\n")
        if t.files or t.creates:
            out.append(
                "Files: " + ", ".join([*(f"`{f}`" for f in t.files), *(f"`{f}` (new)" for f in t.creates)])
            )
        out.append("\nAcceptance: " + "; ".join(f"`{a}`" for a in t.acceptance))
    return "\n".join(out) + "\n"


def to_plan(doc: Tasks, name: str, read_first: Sequence[str] = ()) -> Plan:
    """The plan the graph runs: each task an agent told which spec files to read first."""
    specs = []
    for t in doc.tasks:
        prompt = t.description
        if read_first:
            prompt += "\n\nThis task is part of a spec: read " + " and ".join(read_first) + " first."
        if t.requirements:
            prompt += f" It implements {', '.join(t.requirements)}."
        specs.append(
            TaskSpec(
                id=t.id,
                deps=tuple(t.deps),
                description=t.title,
                agent=AgentSpec(
                    role=t.role, category=t.category, prompt=prompt, context=(*t.files, *read_first)
                ),
                acceptance=tuple(t.acceptance),
            )
        )
    return Plan(name=name, tasks=tuple(specs))


DOCUMENTS: dict[str, type[BaseModel]] = {
    "explore": Findings,
    "requirements": Requirements,
    "design": Design,
    "tasks": Tasks,
}


def markdown(doc: BaseModel, goal: str) -> str:
    if isinstance(doc, Requirements):
        return requirements_md(doc, goal)
    if isinstance(doc, Design):
        return design_md(doc)
    if isinstance(doc, Tasks):
        return tasks_md(doc)
    return doc.model_dump_json(indent=1)


def texts(done: dict[str, BaseModel], goal: str) -> dict[str, str]:
    """The documents of the phases done, as the next prompt shows them (explore has its summary)."""
    return {name: markdown(d, goal) for name, d in done.items() if name != "explore"}


def file_names(phase: str) -> tuple[str, ...]:
    """The files a phase leaves in the spec folder, its JSON first: `explore.json` (the static
    analysis with the explorer's findings), else `<phase>.json` and `<phase>.md`."""
    return ("explore.json",) if phase == "explore" else (f"{phase}.json", f"{phase}.md")


def render(phase: str, doc: BaseModel, goal: str, exploration: Exploration) -> dict[str, str]:
    names = file_names(phase)
    if isinstance(doc, Findings):
        explored = exploration.model_copy(update={"findings": doc.findings})
        return {names[0]: explored.model_dump_json(indent=1)}
    return {names[0]: doc.model_dump_json(indent=1), names[1]: markdown(doc, goal)}


def parse(phase: str, text: str) -> BaseModel:
    """A phase's document from the JSON it left behind (a resumed spec reads its branch)."""
    if phase == "explore":
        return Findings.model_construct(findings=Exploration.model_validate_json(text).findings)
    return DOCUMENTS[phase].model_validate_json(text)


def single_task(goal: str, exploration: Exploration) -> SpecTask:
    """A trivial goal's one task, checked by the repository's own tests (or linter) if it has any."""
    checks = [*exploration.commands.test, *exploration.commands.lint]
    return SpecTask(
        id="change", title=goal[:80], description=goal, acceptance=[checks[0].command if checks else "true"]
    )
