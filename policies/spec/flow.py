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

from omoi.policies.completion import DocumentRules
from omoi.runtime.log.events import Intent, Phase
from omoi.runtime.run.tasks import Role
from omoi.runtime.spec.documents import IntentDecision

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


GatePolicy = Literal["approve", "reject", "fail"]


def on_timeout(policy: GatePolicy, waited_s: float) -> tuple[GatePolicy, str]:
    """What a human gate's timeout means: (approve | reject | fail, the reason recorded)."""
    return policy, f"no decision within {waited_s:g}s (gate timeout policy: {policy})"


@dataclass(frozen=True)
class Judgement:
    """How one spec conversation is judged: its agent only reads, and an evaluated submission is
    accepted, sent back with its problems, or failed after `retries` (runtime.spec.writer asks)."""

    rules: DocumentRules
    retries: int = MAX_RETRIES

    def after_evaluation(self, passed: bool, retries_used: int, feedback: str) -> AfterSubmission:
        return after_evaluation(passed, retries_used, feedback, self.retries)


def judgement(role: Role, continuations: int, retries: int = MAX_RETRIES) -> Judgement:
    return Judgement(DocumentRules(role, continuations), retries)


# ---- who writes each phase, and what a missing answer means ----------------------------------------

CATEGORY: dict[str, str] = {"intent": "quick", "explore": "default", "review": "default"}  # else deep
ROLE: dict[str, Role] = {"intent": "planner", "explore": "explorer", "review": "reviewer"}  # else planner
INTENT_RETRIES = 1  # the intent gate has a rule-based fallback: one retry is enough


def category(step: str) -> str:
    """The model category a phase (or `review`, `intent`) is written with."""
    return CATEGORY.get(step, "deep")


def role(step: str) -> Role:
    return ROLE.get(step, "planner")


def needs_model(phase: Phase, done: Iterable[str]) -> bool:
    """A trivial goal (no requirements were written) gets its one task without a model."""
    return not (phase == "tasks" and "requirements" not in set(done))


def explorer_failed_stands(phase: Phase) -> bool:
    """The explorer's findings only add to the static pass, which stands alone: its failure is
    logged and the spec goes on with no findings. Any other phase without a document fails."""
    return phase == "explore"


def review_decision(verdict: str, issues: Iterable[str]) -> tuple[Literal["approve", "reject"], str]:
    """A reviewer's OKAY approves; anything else rejects, with its issues as the reason."""
    if verdict == "OKAY":
        return "approve", ""
    return "reject", "\n".join(f"- {i}" for i in issues) or "- (no reason given)"


def intent_of(
    decision: IntentDecision | str, goal: str, paths: Iterable[str]
) -> tuple[Intent, str, Literal["model", "rules"]]:
    """The model's decision when it handed one in, else the rules' (saying why they decided)."""
    if isinstance(decision, IntentDecision):
        return decision.intent, decision.reason, "model"
    intent, reason = classify(goal, paths)
    return intent, f"{reason} (the model gave no decision: {decision})", "rules"


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
    trivial = _TRIVIAL.search(goal)
    if len(words) <= 12 and trivial and not _OPEN.search(goal):
        return "trivial", f"a short goal about a small kind of change ('{trivial.group(0)}')"
    if _STEPS.search(goal):
        return "explicit", "the goal lists its steps"
    if named and len(words) <= 40:
        return "explicit", f"the goal names files of the repository: {', '.join(named[:5])}"
    return "open_ended", "no steps or files named: the goal needs requirements and a design first"
