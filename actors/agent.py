"""One agent attempt: a conversation with the model whose tool calls run in the task's sandbox."""

from __future__ import annotations

import structlog

from omoi.policies.completion import ConsultRules, RoleRules
from omoi.policies.permissions import ROLES, tools_for
from omoi.runtime.agent.loop import AgentLoop
from omoi.runtime.agent.tools import tool_definitions
from omoi.runtime.config import AgentSettings, ModelSettings
from omoi.runtime.model.client import ModelPort
from omoi.runtime.ports import BudgetPort, BusPort, SupervisionPort
from omoi.runtime.run.execution import AgentResult, TaskRequest
from omoi.runtime.sandbox.seam import Sandbox

log = structlog.get_logger("omoi.agent")


class AgentActor:
    """Owns: the conversation of one task attempt (messages, checklist, spend), nothing durable.

    Handles `prepare` (load the model client before a task arrives, so a warm spare starts at
    once) and `run(request, sandbox)`: routes the task's category to a model (an oracle role
    always gets the oracle route), applies the role's rules, and drives the loop to an
    AgentResult. One actor runs one attempt. Before each model call it asks supervision (the
    run's guardian) whether it may go on and what the call must carry. Emits the trajectory
    (`agent.*`, `model.retried`, `guardian.delivered`) through the bus as it goes.
    If it dies: the conversation is lost; the sandbox actor that started it sees the death, the
    attempt fails, and its concurrency leases come back (released by the starter, or swept by the
    concurrency actor). Nothing is committed until the sandbox actor commits a complete result."""

    def __init__(
        self,
        name: str,
        bus: BusPort,
        model: ModelPort,
        budget: BudgetPort | None,
        models: ModelSettings,
        settings: AgentSettings,
        supervision: SupervisionPort | None = None,
        node: str = "",
        holder: str | None = None,
    ) -> None:
        self._name, self._bus, self._model, self._node = name, bus, model, node
        self._holder = holder or name  # whose death gives the model-call leases back
        self._budget, self._models, self._settings = budget, models, settings
        self._supervision = supervision

    async def prepare(self) -> None:
        await self._model.prepare()
        for role in ROLES:  # the schemas every first turn would otherwise build
            tool_definitions(tools_for(role))

    async def run(self, request: TaskRequest, sandbox: Sandbox) -> AgentResult:
        spec = request.agent
        assert spec is not None, "agent actors run agent tasks"
        category = "oracle" if spec.role == "oracle" else spec.category
        s = self._settings
        log.info(
            "agent.start", run_id=request.run_id, task_id=request.task_id, actor=self._name, role=spec.role
        )
        return await AgentLoop(
            request,
            self._models.model_for(category),
            RoleRules(spec.role, s.continuations, spec.repairs, s.escalate_after),
            self._model,
            sandbox,
            self._bus,
            s,
            budget=self._budget,
            oracle=(self._models.model_for("oracle"), ConsultRules()),
            holder=self._holder,
            actor=self._name,
            node=self._node,
            supervision=self._supervision,
        ).run()
