"""One spec document written by an agent: a conversation whose answer is handed in through a
tool, checked on every submission (its schema first, then the phase's evaluator), and sent back
with the problems named until it passes or the retries run out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from omoi.runtime.agent.loop import AgentLoop, AgentRules, Submission, Verdict
from omoi.runtime.config import AgentSettings
from omoi.runtime.model.client import ModelPort
from omoi.runtime.ports import BudgetPort, BusPort
from omoi.runtime.run.execution import TaskRequest
from omoi.runtime.run.tasks import AgentSpec, Role
from omoi.runtime.sandbox.seam import Sandbox
from omoi.runtime.spec.evaluation import Evaluation

D = TypeVar("D", bound=BaseModel)
OnEvaluated = Callable[[int, Evaluation], Awaitable[None]]  # (submission number, evaluation)


class Outcome(Protocol):
    """What follows a submission: `accept`, `retry` (with the problems) or `fail` (with why)."""

    @property
    def action(self) -> str: ...

    @property
    def reason(self) -> str: ...


class Judgement(Protocol):
    """How one conversation is judged (policies.spec.flow.Judgement implements it): the rules its
    agent runs under, and what follows each evaluated submission."""

    @property
    def rules(self) -> AgentRules: ...

    @property
    def retries(self) -> int: ...

    def after_evaluation(self, passed: bool, retries_used: int, feedback: str) -> Outcome: ...


def schema_problems(exc: ValidationError) -> tuple[str, ...]:
    return tuple(f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}" for e in exc.errors())


@dataclass
class DocumentWriter:
    """Everything one conversation needs; `write` runs it. The agent's events carry `task_id`
    (e.g. `spec-design`), which is also how a scripted model tells the conversations apart."""

    run_id: str
    model: ModelPort
    bus: BusPort
    sandbox: Sandbox
    settings: AgentSettings = field(default_factory=AgentSettings)
    budget: BudgetPort | None = None
    holder: str = ""

    async def write(
        self,
        *,
        task_id: str,
        attempt: int,
        role: Role,
        model_name: str,
        tool: str,
        document: type[D],
        prompt: str,
        judgement: Judgement,
        evaluate: Callable[[D], Evaluation] | None = None,
        on_evaluated: OnEvaluated | None = None,
    ) -> D | str:
        """The accepted document, or why there is none."""
        retries = judgement.retries
        accepted: list[D] = []
        submissions = 0

        async def check(arguments: dict[str, Any]) -> Verdict:
            nonlocal submissions
            submissions += 1
            try:
                doc = document.model_validate(arguments)
            except ValidationError as exc:
                ev = Evaluation(0.0, blocking=schema_problems(exc))
            else:
                ev = evaluate(doc) if evaluate is not None else Evaluation(1.0)
            if on_evaluated is not None:
                await on_evaluated(submissions, ev)
            after = judgement.after_evaluation(ev.passed, submissions - 1, ev.feedback())
            if after.action == "accept":
                accepted.append(doc)
                return Verdict(True, "accepted")
            if after.action == "retry":
                return Verdict(
                    False,
                    f"not accepted (score {ev.score:.2f}, needs {ev.threshold:.2f}; retry {submissions} of "
                    f"{retries}). Problems:\n{after.reason}\nFix every one and call {tool} again.",
                )
            return Verdict(False, after.reason, final=True)

        request = TaskRequest(
            run_id=self.run_id,
            task_id=task_id,
            attempt=attempt,
            agent=AgentSpec(role=role, prompt=prompt),
            timeout=600,
            branch="",
            base="",
        )
        doc_text = (document.__doc__ or "").strip()
        loop = AgentLoop(
            request,
            model_name,
            judgement.rules,
            self.model,
            self.sandbox,
            self.bus,
            self.settings,
            budget=self.budget,
            prompt=prompt,
            holder=self.holder,
            submission=Submission(
                tool, f"Hand in your work. {doc_text}", document.model_json_schema(), check
            ),
            name=f"{task_id}/{attempt}/{role}",
        )
        result = await loop.run()
        if result.status == "complete" and accepted:
            return accepted[0]
        return result.summary or "the agent handed nothing in"
