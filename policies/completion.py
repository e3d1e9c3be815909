"""When an agent's turn ends: is it done, does it get reminded, checked, repaired, escalated?

Agents stop halfway, claim success with work left, or loop on a failing test. These rules decide
for them: open todos and silent stops are re-prompted (bounded), a claim of completion is checked
by the task's acceptance commands, failures are fed back (bounded repair rounds), and a streak of
failures brings in the oracle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from omoi.policies.permissions import CHANGES_FILES, READ_ONLY, denial, tools_for
from omoi.runtime.agent.loop import Action, Claim


class Next(NamedTuple):
    """`remind`: re-prompt (with the open todos, if any); `check`: run acceptance; `ask`: wait for
    an answer; `fail`: the attempt fails with `reason`."""

    action: Action
    reason: str = ""


class Repair(NamedTuple):
    """After a failed acceptance round: try again (`escalate`: ask the oracle first) or give up."""

    again: bool
    escalate: bool = False
    reason: str = ""


def after_turn(claim: Claim | None, open_todos: int, continuations: int, max_continuations: int) -> Next:
    if claim == "blocked":
        return Next("fail", "blocked")
    if claim == "need_input":
        return Next("ask")
    if open_todos and continuations < max_continuations:
        return Next("remind")
    if claim == "complete":
        return Next("check")  # todos still open after every reminder: acceptance has the last word
    if continuations < max_continuations:
        return Next("remind")
    return Next("fail", f"the agent stopped without finishing after {continuations} reminders")


def after_failed_acceptance(failed_rounds: int, streak: int, repairs: int, escalate_after: int) -> Repair:
    """`failed_rounds` counts every failed round of the attempt, `streak` the consecutive ones
    since the last escalation; `repairs` is how many repair rounds the task allows."""
    if failed_rounds > repairs:
        return Repair(False, reason=f"acceptance still failing after {repairs} repair rounds")
    return Repair(True, escalate=streak >= escalate_after)


@dataclass(frozen=True)
class RoleRules:
    """The rules for one agent of one task (runtime.agent.loop.AgentRules)."""

    role: str
    max_continuations: int = 3
    repairs: int = 5
    escalate_after: int = 3

    def tools(self) -> frozenset[str]:
        return tools_for(self.role)

    def denial(self, tool: str, arguments: dict[str, Any]) -> str | None:
        return denial(self.role, tool, arguments)

    def after_turn(self, claim: Claim | None, open_todos: int, continuations: int) -> Next:
        return after_turn(claim, open_todos, continuations, self.max_continuations)

    def after_failed_acceptance(self, failed_rounds: int, streak: int) -> Repair:
        return after_failed_acceptance(failed_rounds, streak, self.repairs, self.escalate_after)

    def checkpoints(self, tools_run: Sequence[str]) -> bool:
        return not CHANGES_FILES.isdisjoint(tools_run)


@dataclass(frozen=True)
class ConsultRules(RoleRules):
    """An agent consulted for advice (the oracle): its answer is its final message, finish or not."""

    role: str = "oracle"

    def after_turn(self, claim: Claim | None, open_todos: int, continuations: int) -> Next:
        return Next("check") if claim is None else super().after_turn(claim, open_todos, continuations)


@dataclass(frozen=True)
class DocumentRules(RoleRules):
    """An agent that hands in a document (a spec phase, a review) through its submission tool:
    whatever its role, it only reads; nothing it does changes the workspace."""

    def tools(self) -> frozenset[str]:
        return READ_ONLY

    def denial(self, tool: str, arguments: dict[str, Any]) -> str | None:
        if tool not in READ_ONLY:
            allowed = ", ".join(sorted(READ_ONLY))
            return (
                f"writing a spec document, the {self.role} only reads "
                f"(it may use: {allowed}, and its submission tool)"
            )
        return None
