"""Which discoveries become tasks: de-duplication against the run's tasks and earlier discoveries,
and the bounds on discovered work. Pure over plain values.

Similarity is deterministic and cheap: the Jaccard index of the two texts' word sets (lower case,
words of 3+ letters, common English words left out), title and description together. Two
discoveries about the same thing share most of their distinctive words; a model would judge
better but costs a call per pair and answers differently on a replay."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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
