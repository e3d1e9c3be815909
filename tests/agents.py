"""Running one agent loop in-process against the scripted model server over real HTTP, in a real
worktree sandbox, publishing to a real (in-memory) bus."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omoi.actors.bus import BusActor
from omoi.policies.completion import ConsultRules, RoleRules
from omoi.policies.model_calls import ModelRules
from omoi.runtime.agent.loop import AgentLoop, AgentResult
from omoi.runtime.config import AgentSettings, model_settings
from omoi.runtime.log.events import Event
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.ports import BudgetPort, SupervisionPort
from omoi.runtime.run.tasks import AgentSpec
from omoi.runtime.sandbox.local import LocalBackend
from omoi.runtime.sandbox.seam import Sandbox
from tests.helpers import first_event, task_request

WORKER_MODEL, ORACLE_MODEL = "claude-sonnet-4-6", "claude-opus-4-6"


def call(name: str, **args: Any) -> dict[str, Any]:
    return {name: args}


@dataclass
class AgentRig:
    repo: Path
    workdir: Path
    script: dict[str, Any]
    server: ScriptedModelServer = field(init=False)
    bus: BusActor = field(default_factory=lambda: BusActor(MemoryEventStore()))
    sandbox: Sandbox | None = None

    def __post_init__(self) -> None:
        self.server = ScriptedModelServer(parse_script(self.script))

    async def run(
        self,
        task: str = "t1",
        *,
        role: str = "worker",
        prompt: str = "do the task",
        acceptance: Sequence[str] = (),
        repairs: int = 5,
        settings: AgentSettings | None = None,
        budget: BudgetPort | None = None,
        supervision: SupervisionPort | None = None,
        sandbox_down: bool = False,
    ) -> AgentResult:
        """One attempt of `task`; with `sandbox_down` its workspace is gone before it starts (a
        sandbox that died under the agent)."""
        req = task_request(
            self.repo,
            task,
            agent=AgentSpec(role=role, prompt=prompt, repairs=repairs),  # type: ignore[arg-type]
            acceptance=tuple(acceptance),
        )
        backend = LocalBackend(self.repo, self.repo / ".git", self.workdir, run_id="r")
        self.sandbox = await backend.create(req)
        if sandbox_down:
            shutil.rmtree(self.workdir / task)
        model = AnthropicModel(
            model_settings(base_url=self.server.url), ModelRules(backoff=0.01, backoff_cap=0.05)
        )
        cfg = settings or AgentSettings()
        loop = AgentLoop(
            req,
            WORKER_MODEL,
            RoleRules(role, cfg.continuations, repairs, cfg.escalate_after),
            model,
            self.sandbox,
            self.bus,
            cfg,
            budget=budget,
            oracle=(ORACLE_MODEL, ConsultRules()),
            supervision=supervision,
        )
        return await loop.run()

    def events(self, kind: str | None = None) -> list[Event]:
        return [e for e in self.bus._store.read(0) if kind is None or e.kind == kind]

    async def wait_for(self, kind: str, timeout: float = 30.0) -> Event:
        return await first_event(self.bus, kind, timeout)


def env(server: ScriptedModelServer, **models: Any) -> Any:
    """What a run's agents need to reach the scripted server (an AgentEnv), with quick backoffs."""
    from omoi.cluster.agents import AgentEnv

    settings = {"backoff": 0.01, "backoff_cap": 0.05, **models}
    return AgentEnv(model_settings(base_url=server.url, **settings), AgentSettings())
