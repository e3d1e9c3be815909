"""The spec actor on Ray: one per run from a goal, `omoi/<run-id>/spec`, on the repository's node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray

from omoi.actors.spec import SpecActor
from omoi.cluster.agents import CONCURRENCY, AgentEnv, BudgetProxy, SlotsProxy
from omoi.cluster.connect import NAMESPACE, actor_name, here
from omoi.cluster.handles import BusProxy
from omoi.runtime.logging import configure as configure_logging
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.run.begin import RunPaths
from omoi.runtime.spec.workspace import SpecWorkspace
from omoi.runtime.spec.writer import DocumentWriter


class HostedSpec(SpecActor):
    """Built from plain values, so a restart by Ray builds the same actor again; its agents'
    model leases are held in this actor's name (the concurrency sweep checks it is alive)."""

    def __init__(
        self, run_id: str, repo: str, git_dir: str, worktrees: str, base: str, env: AgentEnv
    ) -> None:
        configure_logging()
        name = actor_name(run_id, "spec")
        bus = BusProxy(actor_name(run_id, "bus"))
        model = AnthropicModel(env.models, env.rules(), slots=SlotsProxy(CONCURRENCY))
        workspace = SpecWorkspace(Path(repo), Path(git_dir), Path(worktrees), run_id, base)
        writer = DocumentWriter(
            run_id,
            model,
            bus,
            workspace.sandbox(),
            env.agents,
            BudgetProxy(actor_name(run_id, "budget")),
            name,
        )
        super().__init__(run_id, bus, writer, env.models, workspace)


def start_spec(paths: RunPaths, base: str, env: AgentEnv) -> Any:
    return (
        ray.remote(HostedSpec)
        .options(
            name=actor_name(paths.run_id, "spec"),
            namespace=NAMESPACE,
            scheduling_strategy=here(),  # it works in a worktree of the repository on this node
            num_cpus=0,
            max_restarts=-1,
            max_task_retries=-1,
        )
        .remote(paths.run_id, str(paths.repo.path), str(paths.repo.git_dir), str(paths.worktrees), base, env)
    )
