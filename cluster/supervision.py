"""Supervision on Ray: each run's guardian and discovery actors, pinned next to the log, and the
proxies agents and the discovery actor reach their peers through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omoi.actors.discovery import DiscoveryActor
from omoi.actors.guardian import GuardianActor
from omoi.cluster.connect import actor_name
from omoi.cluster.handles import BusProxy, Named, call
from omoi.cluster.hosting import host
from omoi.policies.supervision.discovery import Limits
from omoi.policies.supervision.guardian import GuardianRules
from omoi.runtime.config import SupervisionSettings
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.supervision.state import Note


class GuardianProxy(Named):
    """SupervisionPort over the run's guardian actor."""

    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        notes: list[Note] = await call(self.handle.before_turn.remote(task_id, attempt, after))
        return notes


class GraphProxy(Named):
    """GraphPort over the run's graph actor."""

    async def add_tasks(self, specs: Sequence[TaskSpec]) -> list[str]:
        ids: list[str] = await call(self.handle.add_tasks.remote(list(specs)))
        return ids


class HostedGuardian(GuardianActor):
    def __init__(self, run_id: str, settings: SupervisionSettings, max_turns: int) -> None:
        rules = GuardianRules(cooldown_s=settings.guardian_cooldown, max_turns=max_turns)
        super().__init__(
            run_id,
            BusProxy(actor_name(run_id, "bus")),
            rules=rules,
            interval=settings.guardian_interval,
            enabled=settings.supervision == "on",
            name=actor_name(run_id, "guardian"),
        )


class HostedDiscovery(DiscoveryActor):
    def __init__(self, run_id: str, settings: SupervisionSettings) -> None:
        limits = Limits(settings.discovery_max, settings.discovery_per_task, settings.discovery_depth)
        super().__init__(
            run_id,
            BusProxy(actor_name(run_id, "bus")),
            GraphProxy(actor_name(run_id, "graph")),
            limits=limits,
            name=actor_name(run_id, "discovery"),
        )


def start_supervision(run_id: str, settings: SupervisionSettings, max_turns: int) -> list[Any]:
    """The run's guardian and discovery actors, restarted by Ray if they die, each already
    following the log when this returns. Settings are read where the run starts (validated
    there), not in a Ray worker."""
    actors = [
        host(
            HostedGuardian, run_id, settings, max_turns, actor=actor_name(run_id, "guardian"),
            restarts="always", node="here",
        ),
        host(
            HostedDiscovery, run_id, settings, actor=actor_name(run_id, "discovery"),
            restarts="always", node="here",
        ),
    ]  # fmt: skip
    return actors
