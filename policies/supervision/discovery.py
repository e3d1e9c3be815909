"""Which discoveries become tasks: de-duplication against the run's tasks and earlier discoveries,
the bounds on discovered work, and the events that spawn a task and hold its reporter. Pure over
plain values and a DiscoveryState.

Similarity is deterministic and cheap: the Jaccard index of the two texts' word sets (lower case,
words of 3+ letters, common English words left out), title and description together. Two
discoveries about the same thing share most of their distinctive words; a model would judge
better but costs a call per pair and answers differently on a replay."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from omoi.policies.supervision.holds import releases
from omoi.runtime.log.events import (
    AgentDiscovery,
    AgentPaused,
    DiscoveryAwaiting,
    DiscoveryRecorded,
    DiscoveryRejected,
    DiscoveryTaskSpawned,
    Event,
)
from omoi.runtime.run.tasks import AgentSpec, TaskSpec
from omoi.runtime.supervision.discoveries import DiscoveryState

KINDS = (
    "bug",
    "missing_requirement",
    "optimization",
    "security",
    "performance",
    "integration",
    "tech_debt",
    "clarification",
)
DUPLICATE = 0.6  # at least this similar to an existing task or discovery: the same work
_COMMON = (
    "the and for with that this from into when then than are was were has have had not but can "
    "should would could will must may its all any each some our their there here also only "
    "add adds added fix fixes fixed make makes use uses used file files code task"
)
_STOP = frozenset(_COMMON.split(" "))


@dataclass(frozen=True)
class Limits:
    per_run: int = 20  # OMOI_DISCOVERY_MAX
    per_task: int = 5  # OMOI_DISCOVERY_PER_TASK
    depth: int = 3  # OMOI_DISCOVERY_DEPTH: a task discovered by a discovered task is depth 2, ...
    gate: Literal["auto", "review", "human"] = "auto"  # OMOI_DISCOVERY_GATE


def words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z][a-z0-9_]{2,}", text.lower()) if w not in _STOP)


def similarity(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def duplicate_of(text: str, known: Mapping[str, str], threshold: float = DUPLICATE) -> str | None:
    """The id of the most similar known task or discovery at or above `threshold`, ties to the
    first known; None when the work is new."""
    best, score = None, threshold
    for ident, other in known.items():
        s = similarity(text, other)
        if s >= score and (best is None or s > score):
            best, score = ident, s
    return best


def refusal(
    kind: str, depth: int, spawned_in_run: int, spawned_by_task: int, limits: Limits = Limits()
) -> str | None:
    """Why a new discovery may not become a task, or None. `depth` is the new task's: 1 when the
    reporter is a planned task, one more than the reporter's otherwise."""
    if kind not in KINDS:
        return f"unknown type '{kind}' (one of: {', '.join(KINDS)})"
    if depth > limits.depth:
        return f"a chain of discoveries {depth} deep (OMOI_DISCOVERY_DEPTH is {limits.depth})"
    if spawned_in_run >= limits.per_run:
        return (
            f"the run has spawned {spawned_in_run} discovered tasks (OMOI_DISCOVERY_MAX is {limits.per_run})"
        )
    if spawned_by_task >= limits.per_task:
        return (
            f"this task has spawned {spawned_by_task} discovered tasks "
            f"(OMOI_DISCOVERY_PER_TASK is {limits.per_task})"
        )
    return None


def decide(state: DiscoveryState, limits: Limits, source: str) -> list[Event]:
    """Events for every undecided report (in log order) and every reporter to release. A spawned
    task's id is `disc-<n>`, n counting the run's discovered tasks; its text is the report's."""
    out: list[Event] = []
    spawned, counts = len(state.spawned), dict(state.by_reporter)
    known = dict(state.known)
    for seq, report in sorted(state.undecided.items()):
        common = {
            "run_id": state.run_id,
            "task_id": report.task_id,
            "attempt": report.attempt,
            "source": source,
        }
        key = f"discovery-{state.run_id}-{seq}"  # ids from what they decide: a replay writes nothing twice
        text = f"{report.title} {report.description}"
        depth = state.depth.get(report.task_id, 0) + 1
        why = refusal(report.type, depth, spawned, counts.get(report.task_id, 0), limits)
        dup = None if why else duplicate_of(text, known)
        decision, words, who = state.decided.get(seq, ("", "", ""))
        if not (why or dup) and limits.gate != "auto" and not decision:
            if seq not in state.awaiting:
                waits = DiscoveryAwaiting(
                    **common, id=f"{key}-awaiting", discovery=seq, title=report.title, gate=limits.gate
                )
                out.append(waits)
            known[f"discovery {seq}"] = text  # a later report of the same work repeats this one
            continue
        if why or dup or decision == "reject":
            judge = "the reviewer" if who == "reviewer" else "a person"
            reason = why or (f"it repeats {dup}" if dup else f"rejected by {judge}: {words}")
            out.append(
                DiscoveryRejected(
                    **common, id=f"{key}-rejected", discovery=seq, reason=reason, duplicate_of=dup
                )
            )
            continue
        spawned += 1
        counts[report.task_id] = counts.get(report.task_id, 0) + 1
        new_id = next(f"disc-{n}" for n in range(spawned, spawned + 1000) if f"disc-{n}" not in state.tasks)
        known[new_id] = text
        spec = TaskSpec(
            id=new_id,
            description=f"[{report.type}, {report.priority}] {report.title}",
            agent=AgentSpec(prompt=prompt_of(report)),
        )
        blocks = report.blocks_current
        out += [
            DiscoveryRecorded(**common, id=f"{key}-recorded", discovery=seq, title=report.title),
            DiscoveryTaskSpawned(
                **common, id=f"{key}-spawned", discovery=seq, spec=spec, depth=depth, blocks=blocks
            ),
        ]
        if blocks:
            why = f"waiting for {new_id} ({report.title}) to be merged"
            out.append(AgentPaused(**common, id=f"{key}-paused", reason=why))
    return out + releases(state.run_id, state.holds, source)


def prompt_of(report: AgentDiscovery) -> str:
    evidence = f"\n\nEvidence: {report.evidence}" if report.evidence else ""
    who = (
        f"Asked for by the conductor while the run waited on task {report.task_id}"
        if report.role == "conductor"
        else f"Found by the agent of task {report.task_id} while it worked"
    )
    about = f"a {report.type}, priority {report.priority}"
    return f"{report.title}\n\n{report.description}{evidence}\n\n({who}; {about}.)"
