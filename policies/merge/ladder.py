"""The conflict ladder: which rung takes a conflict the rules could not resolve, and the order
in which ready branches are merged. Pure over plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from omoi.runtime.log import events as E
from omoi.runtime.log.events import Event
from omoi.runtime.merge.state import Entry

Next = Literal["regenerate", "rerun", "agent", "resolver", "human", "fail"]

MAX_FILES = 20  # a conflict over more files than this goes straight to a person: no model sees it
MAX_RERUNS = 2  # a command re-run whose result conflicts again (the head moved meanwhile)
BATCH = 4  # branches merged and verified together; a red batch is bisected


def next_rung(
    is_agent: bool, tried: Sequence[str], files: int, *, semantic: bool = False, generated: bool = False
) -> Next:
    """The rung after those `tried`. Files that are all `generated` are first rewritten by their
    command on the merged result. A command task is re-run on the integration head; an agent
    task's own agent resolves it, then a neutral resolver; a person comes last. A semantic
    conflict (verification red) is never a command's to fix: it fails with the output."""
    if semantic:
        if not is_agent:
            return "fail"
        return "agent" if "agent" not in tried else "fail"
    if generated and "regenerate" not in tried:
        return "regenerate"
    if files > MAX_FILES:
        return "human" if "human" not in tried else "fail"
    reruns: list[Next] = ["rerun"] * MAX_RERUNS
    steps: list[Next] = [*reruns, "human"] if not is_agent else ["agent", "resolver", "human"]
    for i, step in enumerate(steps):
        if tried.count(step) < steps[: i + 1].count(step):
            return step
    return "fail"


def merge_order(ready: Sequence[str], conflicts: Mapping[str, int], order: Mapping[str, int]) -> list[str]:
    """Fewest predicted conflicting files against the head first, then plan order."""
    return sorted(ready, key=lambda t: (conflicts.get(t, 0), order.get(t, 0)))


def halves(batch: Sequence[str]) -> tuple[list[str], list[str]]:
    mid = (len(batch) + 1) // 2
    return list(batch[:mid]), list(batch[mid:])


def climb(
    common: dict[str, Any],
    e: Entry,
    is_agent: bool,
    files: tuple[str, ...],
    head: str,
    timeout_s: float | None,
    detail: str = "",
    semantic: bool = False,
    generated: bool = False,
) -> list[Event]:
    """The events that hand a conflict to its next rung, or end it. A person's resolution that
    conflicts again goes back to the person."""
    rung: Next = (
        "human"
        if e.rung == "human" and not semantic
        else next_rung(is_agent, e.tried, len(files), semantic=semantic, generated=generated)
    )
    out: list[Event] = [E.MergeConflicted(**common, files=files, head=head, next=rung, detail=detail)]
    if rung == "human":
        out.append(E.MergeNeedsHuman(**common, files=files, head=head, timeout_s=timeout_s))
    elif rung == "fail":
        why = detail.split("\n", 1)[0] if detail else f"conflicts in {', '.join(files)} were not resolved"
        out.append(
            E.MergeFailed(
                **common,
                reason=f"verification failed: {why}" if semantic else why,
                output_tail=detail[-4000:],
            )
        )
    return out
