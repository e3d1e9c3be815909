"""Supervision on Ray: each run's guardian and discovery actors, pinned next to the log, and the
proxies agents and the discovery actor reach their peers through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omoi.actors.budget import BudgetActor
from omoi.actors.conductor import ConductorActor
from omoi.actors.discovery import DiscoveryActor
from omoi.actors.guardian import GuardianActor
from omoi.actors.scheduler import SchedulerActor
from omoi.cluster.agents import CONCURRENCY, AgentEnv, SlotsProxy
from omoi.cluster.connect import actor_name
from omoi.cluster.handles import BusProxy, Named, call
from omoi.cluster.hosting import host
from omoi.policies.budget import RUN
from omoi.policies.supervision.assessment import AssessRules
from omoi.policies.supervision.discovery import Limits
from omoi.policies.supervision.guardian import GuardianRules
from omoi.policies.supervision.signals import Thresholds
from omoi.runtime.config import SupervisionSettings
from omoi.runtime.log.tap import Tap
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.supervision.state import Note
from omoi.runtime.supervision.turn_checks import TurnChecks


class GraphProxy(Named):
    """GraphPort over the run's graph actor."""

    async def add_tasks(self, specs: Sequence[TaskSpec]) -> list[str]:
        ids: list[str] = await call(self.handle.add_tasks.remote(list(specs)))
        return ids


class HostedSupervisor:
    """The run's budget, guardian, discovery, conductor and scheduler actors in one Ray actor process,
    `omoi/<run>/supervisor`. Each is a class of its own that folds the log by itself; they share
    a process because one costs 45-90 MB and a second or more of CPU to start, for every run.
    If the process dies, Ray restarts it and each rebuilds from the log (see their docstrings);
    calls in flight (`admit`, `before_turn`, `admit_and_judge`) are re-sent by Ray."""

    def __init__(self, run_id: str, settings: SupervisionSettings, env: AgentEnv) -> None:
        bus = Tap(BusProxy(actor_name(run_id, "bus")))  # one read of the log for all five
        model = AnthropicModel(env.models, env.rules(), slots=SlotsProxy(CONCURRENCY))
        self.budget = BudgetActor(run_id, bus)
        on = settings.supervision == "on"
        rules = GuardianRules(
            thresholds=Thresholds(heartbeat_s=env.agents.heartbeat_interval),
            cooldown_s=settings.guardian_cooldown,
            max_turns=env.agents.max_turns,
            assess=AssessRules(grace_s=settings.guardian_grace),
        )
        self.guardian = GuardianActor(
            run_id,
            bus,
            rules=rules,
            interval=settings.guardian_interval,
            enabled=on,
            name=actor_name(run_id, "guardian"),
            holder=actor_name(run_id, "supervisor"),  # the process whose death frees its model leases
            model=model,
            model_name=env.models.model_for(settings.guardian_model),
            planner_name=env.models.model_for(settings.replan_model),
        )
        limits = Limits(
            settings.discovery_max,
            settings.discovery_per_task,
            settings.discovery_depth,
            settings.discovery_gate,
        )
        graph = GraphProxy(actor_name(run_id, "graph"))
        self.discovery = DiscoveryActor(
            run_id,
            bus,
            graph,
            limits=limits,
            name=actor_name(run_id, "discovery"),
            model=model,
            model_name=env.models.model_for(settings.discovery_model),
            holder=actor_name(run_id, "supervisor"),
        )
        self.checks = TurnChecks(self.budget, self.guardian)  # an agent's one call before each turn
        self.scheduler = SchedulerActor(run_id, bus, name=actor_name(run_id, "scheduler"))
        self.conductor = (
            ConductorActor(
                run_id,
                bus,
                name=actor_name(run_id, "conductor"),
                interval=settings.conductor_interval,
                stall_s=settings.conductor_stall,
                model=model,
                model_name=env.models.model_for(settings.conductor_model),
                holder=actor_name(run_id, "supervisor"),
            )
            if on
            else None
        )

    async def start(self) -> None:
        for part in (self.budget, self.guardian, self.discovery, self.conductor, self.scheduler):
            if part is not None:
                await part.start()

    async def admit(self, task_id: str, after: int = 0) -> None:
        await self.budget.admit(task_id, after)

    async def spent(self, scope: str = RUN) -> tuple[int, float]:
        return await self.budget.spent(scope)

    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        return await self.guardian.before_turn(task_id, attempt, after)

    async def admit_and_judge(self, task_id: str, attempt: int, admit_after: int, after: int) -> list[Note]:
        return await self.checks.admit_and_judge(task_id, attempt, admit_after, after)

    async def held(self) -> list[tuple[str, int]]:
        return await self.guardian.held()


def start_supervision(run_id: str, settings: SupervisionSettings, env: AgentEnv) -> Any:
    """Restarted by Ray if it dies. Settings are read where the run starts (validated there), not
    in a Ray worker."""
    return host(
        HostedSupervisor, run_id, settings, env, actor=actor_name(run_id, "supervisor"),
        restarts="always", node="here",
    )  # fmt: skip
