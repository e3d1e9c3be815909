"""The spec actor on Ray: one per run from a goal, `omoi/<run-id>/spec`, on the repository's node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omoi.actors.spec import SpecActor
from omoi.cluster.agents import CONCURRENCY, AgentEnv, BudgetProxy, SlotsProxy
from omoi.cluster.connect import actor_name
from omoi.cluster.handles import BusProxy
from omoi.cluster.hosting import host
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.run.paths import RunPaths
from omoi.runtime.spec.workspace import SpecWorkspace
from omoi.runtime.spec.writer import DocumentWriter


class HostedSpec(SpecActor):
    """Built from plain values, so a restart by Ray builds the same actor again; its agents'
    model leases are held in this actor's name (the concurrency sweep checks it is alive)."""

    def __init__(
        self, run_id: str, repo: str, git_dir: str, worktrees: str, base: str, env: AgentEnv
    ) -> None:
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
            BudgetProxy(actor_name(run_id, "supervisor")),
            name,
        )
        super().__init__(run_id, bus, writer, env.models, workspace)


def start_spec(paths: RunPaths, base: str, env: AgentEnv) -> Any:
    repo, git_dir, trees = str(paths.repo.path), str(paths.repo.git_dir), str(paths.worktrees)
    return host(  # on this node: it works in a task tree of the repository here
        HostedSpec,
        paths.run_id,
        repo,
        git_dir,
        trees,
        base,
        env,
        actor=actor_name(paths.run_id, "spec"),
        restarts="always",
        node="here",
    )
