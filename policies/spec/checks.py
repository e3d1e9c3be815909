"""Is a spec phase's output good enough, and grounded in the repository? Pure checks over the
documents and what Explore found.

Two kinds of problem: blocking ones make a submission unusable (a cycle, an unknown dependency,
an untraced requirement, an acceptance command the repository cannot run) and score 0; the others
lower the score (a file that neither exists nor is created by an earlier task, a symbol that does
not exist, a file the design touches that no task covers). Below the threshold, the phase is sent
back with every issue listed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from omoi.runtime.errors import GraphError
from omoi.runtime.explore.repo_facts import program_of
from omoi.runtime.explore.static import Exploration
from omoi.runtime.run.taskgraph import TaskGraph
from omoi.runtime.run.tasks import AgentSpec, TaskSpec
from omoi.runtime.spec.documents import Design, Requirements, Tasks
from omoi.runtime.spec.evaluation import THRESHOLD, Evaluation


@dataclass(frozen=True)
class Grounding:
    """What exists: tracked files, symbol names (`f`, `C`, `C.m`), programs commands may start."""

    paths: frozenset[str]
    symbols: frozenset[str] = frozenset()
    programs: frozenset[str] = frozenset()

    @classmethod
    def of(cls, exploration: Exploration) -> Grounding:
        return cls(
            frozenset(exploration.paths),
            frozenset(exploration.symbol_names()),
            frozenset(exploration.programs),
        )


def _score(bad: int, total: int, issues: list[str], blocking: list[str], threshold: float) -> Evaluation:
    score = 0.0 if blocking else (1.0 if total == 0 else max(0.0, 1.0 - bad / total))
    return Evaluation(round(score, 3), tuple(issues), tuple(blocking), threshold)


def requirements(doc: Requirements, threshold: float = THRESHOLD) -> Evaluation:
    blocking, issues = [], []
    ids = [r.id for r in doc.requirements]
    if len(set(ids)) != len(ids):
        blocking.append(f"requirement ids repeat: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
    expected = [f"REQ-{i}" for i in range(1, len(ids) + 1)]
    if sorted(ids, key=lambda i: int(i[4:])) != expected and not blocking:
        issues.append(f"number the requirements REQ-1 to REQ-{len(ids)} without gaps (got {', '.join(ids)})")
    for r in doc.requirements:
        vague = [c for c in r.acceptance_criteria if len(c.split()) < 3]
        if vague:
            issues.append(f"{r.id}: acceptance criteria too vague to test: {'; '.join(vague)}")
    return _score(len(issues), max(1, len(doc.requirements)), issues, blocking, threshold)


def design(doc: Design, ground: Grounding, threshold: float = THRESHOLD) -> Evaluation:
    created = {f.path for f in doc.files if f.change == "create"}
    issues: list[str] = []
    refs = 0
    for f in doc.files:
        if f.change != "create":
            refs += 1
            if f.path not in ground.paths:
                issues.append(f"files: '{f.path}' does not exist (mark it change: create if it is new)")
    for c in doc.components:
        for path in c.files:
            refs += 1
            if path not in ground.paths and path not in created:
                issues.append(f"component '{c.name}': file '{path}' neither exists nor is created")
        for sym in c.symbols:
            refs += 1
            if ground.symbols and sym not in ground.symbols and sym.rsplit(".", 1)[-1] not in ground.symbols:
                issues.append(f"component '{c.name}': symbol '{sym}' does not exist in the repository")
    return _score(len(issues), refs, issues, [], threshold)


def tasks(
    doc: Tasks,
    ground: Grounding,
    requirement_ids: Iterable[str] = (),
    design_doc: Design | None = None,
    threshold: float = THRESHOLD,
) -> Evaluation:
    blocking: list[str] = []
    ids = [t.id for t in doc.tasks]
    try:  # the graph's own checks: duplicates, unknown dependencies, cycles, each named
        TaskGraph().check(
            [TaskSpec(id=t.id, deps=tuple(t.deps), agent=AgentSpec(prompt="-")) for t in doc.tasks]
        )
    except GraphError as exc:
        blocking.append(f"tasks: {exc}")
    traced = {r for t in doc.tasks for r in t.requirements}
    for req in requirement_ids:
        if req not in traced:
            blocking.append(f"requirement {req} is not traced by any task (list it in a task's requirements)")
    known_reqs = set(requirement_ids)
    creates = {t.id: set(t.creates) for t in doc.tasks}
    for t in doc.tasks:
        for r in t.requirements:
            if known_reqs and r not in known_reqs:
                blocking.append(f"task '{t.id}': requirements: there is no {r}")
        for command in t.acceptance:
            if not command.strip():
                blocking.append(f"task '{t.id}': acceptance: an empty command")
                continue
            prog = program_of(command)
            runnable = prog in ground.programs or prog.removeprefix("./") in ground.paths | creates[t.id]
            if ground.programs and not runnable:
                known = ", ".join(sorted(p for p in ground.programs if len(p) > 2)[:25])
                blocking.append(
                    f"task '{t.id}': acceptance: `{command}` runs '{prog}', which this repository does not "
                    f"have (it has: {known})"
                )
    issues: list[str] = []
    refs = 0
    ancestors = _ancestors(doc) if not blocking else {}
    for t in doc.tasks:
        earlier = set().union(*(creates.get(a, set()) for a in ancestors.get(t.id, set())))
        for path in t.files:
            refs += 1
            if path not in ground.paths and path not in earlier:
                issues.append(
                    f"task '{t.id}': file '{path}' does not exist and no earlier task creates it "
                    "(put new files in creates, or depend on the task that creates it)"
                )
        for path in t.creates:
            refs += 1
            if path in ground.paths:
                issues.append(f"task '{t.id}': creates '{path}', which already exists (list it in files)")
    if design_doc is not None:
        covered = {p for t in doc.tasks for p in (*t.files, *t.creates)}
        for f in design_doc.files:
            refs += 1
            if f.path not in covered:
                issues.append(f"the design touches '{f.path}', but no task lists it in files or creates")
    return _score(len(issues), refs + len(ids), issues, blocking, threshold)


def _ancestors(doc: Tasks) -> dict[str, set[str]]:
    deps = {t.id: set(t.deps) for t in doc.tasks}
    out: dict[str, set[str]] = {}

    def walk(tid: str) -> set[str]:
        if tid not in out:
            out[tid] = set()
            for d in deps.get(tid, ()):
                out[tid] |= {d, *walk(d)}
        return out[tid]

    for tid in deps:
        walk(tid)
    return out


def evaluate(
    doc: BaseModel, ground: Grounding, reqs: Requirements | None = None, design_doc: Design | None = None
) -> Evaluation:
    """The checks of whichever phase `doc` belongs to, against the phases before it."""
    if isinstance(doc, Requirements):
        return requirements(doc)
    if isinstance(doc, Design):
        return design(doc, ground)
    if isinstance(doc, Tasks):
        return tasks(doc, ground, [r.id for r in reqs.requirements] if reqs else (), design_doc)
    return Evaluation(1.0)


def evaluator(ground: Grounding, done: Mapping[str, BaseModel]) -> Callable[[BaseModel], Evaluation]:
    """The checks of the next phase's submissions, against the phases `done` before it."""
    reqs, design_doc = done.get("requirements"), done.get("design")
    return lambda doc: evaluate(
        doc,
        ground,
        reqs if isinstance(reqs, Requirements) else None,
        design_doc if isinstance(design_doc, Design) else None,
    )
