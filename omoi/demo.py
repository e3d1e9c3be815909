"""`omoi demo`: the whole pipeline on a bundled example repository, offline, with a scripted model.

A goal becomes a spec (explore, requirements, design, tasks; the first task list is sent back by
the checks), then three agents work in parallel sandboxes (one fails its acceptance once and
repairs it, one meets a 429 and recovers), and it all merges into one branch."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omoi import api
from omoi.cluster.agents import AgentEnv
from omoi.examples import DEMO_GOAL, demo_script, demo_scripts, make_example_repo
from omoi.progress import run_summary
from omoi.runtime.config import agent_settings, model_settings
from omoi.runtime.log.events import RunFinished
from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts

Follow = Callable[[str, Callable[[Any], RunFinished]], RunFinished]  # (run id, handle.wait) -> finished


def run_demo(
    *,
    directory: Path | None,
    from_plan: bool,
    max_parallel: int,
    address: str | None,
    sandbox: str,
    follow: Follow,
    say: Callable[[Any], None],
) -> RunFinished:
    """Make the example repository, serve the scripts, run it and say what happened and where."""
    repo, plan = make_example_repo(directory, "agents")
    scripts = [demo_script()] if from_plan else demo_scripts()
    with ScriptedModelServer(load_scripts(scripts)) as model:
        what = f"plan: {plan}" if from_plan else f"goal: {DEMO_GOAL}"
        say(
            f"example repository: {repo}\n{what}\nsandbox: {sandbox}\n"
            f"model: scripted, at {model.url} (no network; {', '.join(str(s) for s in scripts)})"
        )
        env = AgentEnv(model_settings(base_url=model.url), agent_settings())
        started = time.monotonic()
        options: dict[str, Any] = {
            "max_parallel": max_parallel,
            "address": address,
            "sandbox": sandbox,
            "agents": env,
        }
        with (
            api.start(plan, repo, **options) if from_plan else api.start_goal(DEMO_GOAL, repo, **options)
        ) as handle:
            finished = follow(handle.run_id, handle.wait)
        wall = time.monotonic() - started
    state = api.status(handle.run_id, repo)
    say(run_summary(state, api.events(handle.run_id, repo), wall))
    if state.spec is not None and state.spec.status == "succeeded":
        say(f"spec: {state.spec.spec_dir}/ (requirements, design, tasks) on every branch of the run")
    if finished.status == "succeeded":
        say(
            f"\nall work is on branch [bold]{finished.branch}[/] of {repo}; try:\n"
            f"  git -C {repo} log --oneline --graph {finished.branch}\n"
            f"  omoi events {handle.run_id} --repo {repo} --kind spec."
        )
    return finished
