"""The public Python API: what the CLI does, callable from a program or a notebook."""

from __future__ import annotations

import contextlib
from pathlib import Path

import structlog

from omoi.cluster.agents import AgentEnv
from omoi.cluster.connect import connect
from omoi.cluster.runner import EventSink, RunHandle, check_sandbox, choose_sandbox, launch
from omoi.runtime.events import Event, RunFinished
from omoi.runtime.plan import Budget, Plan, load_plan
from omoi.runtime.runs import locate, open_log, plan_new_run
from omoi.runtime.runstate import RunState, fold

log = structlog.get_logger("omoi")


def start(
    plan: Plan | str | Path,
    repo: str | Path,
    *,
    run_id: str | None = None,
    max_parallel: int = 4,
    address: str | None = None,
    state_dir: str | Path | None = None,
    sandbox: str = "auto",
    budget: Budget | None = None,
    agents: AgentEnv | None = None,
) -> RunHandle:
    """Validate the plan and the repository, then start the run and return at once.

    `sandbox`: `docker`, `local` (on the host, not isolated) or `auto` (docker when an engine
    answers). `budget` overrides the plan's; `agents` the model and agent settings read from the
    environment. Bad input raises an InputError before anything is written."""
    sandbox, warning = choose_sandbox(sandbox)
    if warning:
        log.warning("sandbox.not_isolated", detail=warning)
    check_sandbox(sandbox)
    plan_file = "" if isinstance(plan, Plan) else str(plan)
    plan_obj = plan if isinstance(plan, Plan) else load_plan(plan)
    paths, first = plan_new_run(
        plan_obj,
        repo,
        run_id=run_id,
        state_dir=state_dir,
        max_parallel=max_parallel,
        sandbox=sandbox,
        plan_file=plan_file,
        budget=budget,
    )
    connect(address)
    return launch(paths, first, agents=agents)


def exec_plan(
    plan: Plan | str | Path,
    repo: str | Path,
    *,
    run_id: str | None = None,
    max_parallel: int = 4,
    address: str | None = None,
    state_dir: str | Path | None = None,
    sandbox: str = "auto",
    budget: Budget | None = None,
    agents: AgentEnv | None = None,
    on_events: EventSink | None = None,
) -> RunFinished:
    """Run a plan to the end and return its `run.finished` event."""
    with start(
        plan,
        repo,
        run_id=run_id,
        max_parallel=max_parallel,
        address=address,
        state_dir=state_dir,
        sandbox=sandbox,
        budget=budget,
        agents=agents,
    ) as handle:
        return handle.wait(on_events)


def resume(
    run_id: str,
    repo: str | Path,
    *,
    address: str | None = None,
    state_dir: str | Path | None = None,
    max_parallel: int | None = None,
    agents: AgentEnv | None = None,
    on_events: EventSink | None = None,
) -> RunFinished:
    """Continue a run from its log: succeeded tasks stay done, interrupted ones run again."""
    paths = locate(repo, run_id, state_dir)
    state = status(run_id, repo, state_dir=state_dir)
    if state.finished is not None:
        return state.finished
    connect(address)
    with launch(paths, max_parallel=max_parallel, agents=agents) as handle:
        return handle.wait(on_events)


def events(
    run_id: str, repo: str | Path, *, state_dir: str | Path | None = None, kind: str | None = None
) -> list[Event]:
    """A run's log, read straight from its file: no cluster needed, live or finished."""
    paths = locate(repo, run_id, state_dir)
    with contextlib.closing(open_log(paths)) as log:
        return log.read(prefixes=(kind,) if kind else None)


def status(run_id: str, repo: str | Path, *, state_dir: str | Path | None = None) -> RunState:
    return fold(run_id, events(run_id, repo, state_dir=state_dir))
