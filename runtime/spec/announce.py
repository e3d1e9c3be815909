"""The spec's events, built for one run. Every id derives from (run, phase, attempt, step), so a
step replayed after a restart publishes nothing twice (the bus drops a known id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from omoi.runtime import names
from omoi.runtime.log.events import (
    Event,
    Intent,
    Phase,
    SpecFinished,
    SpecIntent,
    SpecPhaseEvaluated,
    TaskAdded,
)
from omoi.runtime.run.plan import Plan
from omoi.runtime.spec.evaluation import Evaluation


@dataclass(frozen=True)
class SpecEvents:
    run_id: str

    @property
    def source(self) -> str:
        return names.actor(self.run_id, "spec")

    def ids(self, phase: str, attempt: int, step: str) -> dict[str, Any]:
        """The fields every phase event shares, for `SpecPhase*(**ids, ...)`."""
        return {
            "id": f"spec-{self.run_id}-{phase}-{attempt}-{step}",
            "run_id": self.run_id,
            "phase": phase,
            "attempt": attempt,
            "source": self.source,
        }

    def evaluated(self, phase: Phase, attempt: int, submission: int, ev: Evaluation) -> SpecPhaseEvaluated:
        return SpecPhaseEvaluated(
            **self.ids(phase, attempt, f"evaluated-{submission}"),
            score=ev.score,
            threshold=ev.threshold,
            passed=ev.passed,
            issues=(*ev.blocking, *ev.issues),
        )

    def intent(self, intent: Intent, reason: str, by: Literal["model", "rules"]) -> SpecIntent:
        return SpecIntent(
            id=f"spec-{self.run_id}-intent",
            run_id=self.run_id,
            source=self.source,
            intent=intent,
            reason=reason,
            by=by,
        )

    def tasks_added(self, plan: Plan) -> list[Event]:
        return [
            TaskAdded(
                id=f"spec-{self.run_id}-task-{t.id}",
                run_id=self.run_id,
                task_id=t.id,
                spec=t,
                order=i,
                source=self.source,
            )
            for i, t in enumerate(plan.tasks)
        ]

    def finished(
        self,
        status: Literal["succeeded", "failed"],
        *,
        spec_dir: str,
        branch: str,
        commit: str | None,
        tasks: int,
        error: str | None,
    ) -> SpecFinished:
        return SpecFinished(
            id=f"spec-{self.run_id}-finished",
            run_id=self.run_id,
            status=status,
            spec_dir=spec_dir,
            branch=branch,
            commit=commit,
            tasks=tasks,
            error=error,
            source=self.source,
        )
