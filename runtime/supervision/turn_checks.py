"""The two checks before an agent's model call, made together where the budget and the guardian
share a process (the run's supervisor actor): one round trip per turn instead of two."""

from __future__ import annotations

from dataclasses import dataclass

from omoi.runtime.ports import BudgetPort, SupervisionPort
from omoi.runtime.supervision.state import Note


@dataclass(frozen=True)
class TurnChecks:
    """A SupervisorPort over a budget and a guardian."""

    budget: BudgetPort
    guardian: SupervisionPort

    async def admit(self, task_id: str, after: int = 0) -> None:
        await self.budget.admit(task_id, after)

    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        return await self.guardian.before_turn(task_id, attempt, after)

    async def admit_and_judge(self, task_id: str, attempt: int, admit_after: int, after: int) -> list[Note]:
        """Admission first, then the guardian, as when they are asked apart: a pause the guardian
        has read by the time the budget admits the call holds it."""
        await self.budget.admit(task_id, admit_after)
        return await self.guardian.before_turn(task_id, attempt, after)
