"""The spec's state machine: which phases a goal goes through, in what order, and what happens
after each submission, review and gate decision. Pure: the spec actor asks, then acts.

    intent ─> explore ─> requirements ─> design ─> tasks ─> (tasks are published)
                           (explicit goals skip design; trivial goals get one task, no model)

Within a phase: submit ─> evaluate ─(below threshold: retry with the issues, at most 3 times)─>
gate: auto | review (a reviewer says OKAY or REJECT with at most 3 issues; a reject redoes the
phase, at most twice) | human (wait for approve/reject; a reject redoes the phase with the reason)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Phase = Literal["intent", "explore", "requirements", "design", "tasks"]
Intent = Literal["trivial", "explicit", "open_ended"]

PHASES: dict[Intent, tuple[Phase, ...]] = {
    "trivial": ("explore", "tasks"),
    "explicit": ("explore", "requirements", "tasks"),
    "open_ended": ("explore", "requirements", "design", "tasks"),
}
GATED: frozenset[Phase] = frozenset({"requirements", "design", "tasks"})  # the explore phase is facts
MAX_RETRIES = 3  # submissions sent back by the evaluator, per phase attempt
MAX_REJECTIONS = 2  # reviewer or human rejections per phase before it fails (human: unbounded)


def phases(intent: Intent) -> tuple[Phase, ...]:
    return PHASES[intent]


def next_phase(intent: Intent, done: Iterable[str]) -> Phase | None:
    finished = set(done)
    return next((p for p in PHASES[intent] if p not in finished), None)


@dataclass(frozen=True)
class AfterSubmission:
    """`accept`: the submission stands (go to the gate); else `retry` with feedback, or `fail`."""

    action: Literal["accept", "retry", "fail"]
    reason: str = ""


def after_evaluation(
    passed: bool, retries_used: int, feedback: str, max_retries: int = MAX_RETRIES
) -> AfterSubmission:
    if passed:
        return AfterSubmission("accept")
    if retries_used < max_retries:
        return AfterSubmission("retry", feedback)
    return AfterSubmission("fail", f"still failing its checks after {max_retries} retries:\n{feedback}")


@dataclass(frozen=True)
class AfterGate:
    action: Literal["proceed", "redo", "fail"]
    reason: str = ""


def after_gate(decision: Literal["approve", "reject"], rejections: int, by: str, reason: str) -> AfterGate:
    """`rejections` counts this one. A person may reject as often as they like; a reviewer agent
    is bounded, so two models cannot argue forever."""
    if decision == "approve":
        return AfterGate("proceed")
    if by == "human" or rejections <= MAX_REJECTIONS:
        return AfterGate("redo", reason)
    return AfterGate("fail", f"rejected {rejections} times by the {by}; last: {reason}")


def on_timeout(policy: Literal["approve", "reject", "fail"], waited_s: float) -> tuple[str, str]:
    """What a human gate's timeout means: (approve | reject | fail, the reason recorded)."""
    return policy, f"no decision within {waited_s:g}s (gate timeout policy: {policy})"


# ---- the intent gate's deterministic fallback ----------------------------------------------------

_TRIVIAL = re.compile(
    r"\b(typo|spelling|rename|bump|version|comment|docstring|readme|changelog|whitespace|format(ting)?|"
    r"lint|license)\b",
    re.I,
)
_STEPS = re.compile(r"(^|\n)\s*(\d+[.)]|[-*])\s+\S")
_OPEN = re.compile(
    r"\b(design|architecture|system|support|implement|authentication|migrate|refactor|redesign)\b", re.I
)


def classify(goal: str, paths: Iterable[str] = ()) -> tuple[Intent, str]:
    """Without a model: short goals about a trivial kind of change are trivial; goals that list
    steps or name files of the repository are explicit; everything else is open-ended."""
    words = goal.split()
    named = sorted({p for p in paths if p in goal or (len(p) > 6 and p.rsplit("/", 1)[-1] in words)})
    if len(words) <= 12 and _TRIVIAL.search(goal) and not _OPEN.search(goal):
        return "trivial", f"a short goal about a small kind of change ('{_TRIVIAL.search(goal).group(0)}')"  # type: ignore[union-attr]
    if _STEPS.search(goal):
        return "explicit", "the goal lists its steps"
    if named and len(words) <= 40:
        return "explicit", f"the goal names files of the repository: {', '.join(named[:5])}"
    return "open_ended", "no steps or files named: the goal needs requirements and a design first"
