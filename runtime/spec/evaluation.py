"""What a check says of a submitted spec document: a score against a pass mark, and the problems
named. Data only: the checks that produce it are in policies/spec/checks.py."""

from __future__ import annotations

from dataclasses import dataclass

THRESHOLD = 0.8  # the default pass mark; a check may set its own


@dataclass(frozen=True)
class Evaluation:
    score: float
    issues: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()
    threshold: float = THRESHOLD

    @property
    def passed(self) -> bool:
        return not self.blocking and self.score >= self.threshold

    def feedback(self) -> str:
        problems = [*self.blocking, *self.issues]
        return "\n".join(f"- {p}" for p in problems)
