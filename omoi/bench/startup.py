"""`omoi bench startup`: where a run's first seconds go, against a bare `ray.init()` and one actor
call measured in the same run.

Each side runs in a fresh Python process that starts its own Ray (the way `omoi demo` does), so
neither inherits a warm cluster or warm imports from the other. The omoi side runs the demo's goal
with the scripted model (no added latency) and reads the stages from the run's own log:

    process start ─> Ray up ─> run actors up ─> spec agent started ─> first model request ─> ...

Run as `python -m omoi.bench.startup baseline|omoi [SANDBOX]`, a probe prints one JSON line."""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.table import Table


def _baseline() -> dict[str, float]:
    import ray

    t0 = time.time()
    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    up = time.time()

    @ray.remote(num_cpus=0)
    class Probe:
        def ping(self) -> int:
            return 1

    probe = Probe.remote()  # type: ignore[attr-defined]
    ray.get(probe.ping.remote())
    called = time.time()
    ray.shutdown()
    return {"ray_up": up - t0, "first_call": called - up, "total": called - t0}


def _omoi(sandbox: str) -> dict[str, float]:
    from omoi import api
    from omoi.cluster.agents import AgentEnv
    from omoi.cluster.connect import connect
    from omoi.examples import DEMO_GOAL, demo_scripts, make_example_repo
    from omoi.runtime.config import agent_settings, model_settings
    from omoi.runtime.log.events import AgentTurn
    from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts

    t0 = time.time()
    connect(None, include_dashboard=False)
    ray_up = time.time()
    repo, _ = make_example_repo(Path(tempfile.mkdtemp(prefix="omoi-bench-startup-")), "agents")
    with ScriptedModelServer(load_scripts(demo_scripts())) as model:
        env = AgentEnv(model_settings(base_url=model.url), agent_settings())
        launched = time.time()
        with api.start_goal(DEMO_GOAL, repo, sandbox=sandbox, agents=env) as handle:
            actors_up = time.time()
            finished = handle.wait()
        first_request = min(r.wall for r in model.requests)
    log = api.events(handle.run_id, repo)
    started = next(e.ts.timestamp() for e in log if e.kind == "run.started")
    first_agent = min(e.ts.timestamp() for e in log if e.kind == "agent.started")
    ended = next(e.ts.timestamp() for e in log if e.kind == "run.finished")
    turns: dict[str, list[float]] = {}
    for e in log:
        if isinstance(e, AgentTurn):
            turns.setdefault(f"{e.task_id}/{e.attempt}", []).append(e.latency_s)
    firsts = [t[0] for t in turns.values()]
    later = [x for t in turns.values() for x in t[1:]]
    if finished.status != "succeeded":
        raise RuntimeError(f"the startup run ended {finished.status}: {finished.error}")
    return {
        "ray_up": ray_up - t0,
        "actors_up": actors_up - launched,
        "spec_agent": first_agent - started,
        "first_request": first_request - started,
        "run": ended - started,
        "total": first_request - t0,
        "wall": time.time() - t0,
        "first_turn_p50": statistics.median(firsts) if firsts else 0.0,
        "later_turn_p50": statistics.median(later) if later else 0.0,
    }


def _probe(which: str, sandbox: str) -> dict[str, float]:
    """One side, in a fresh process with its own Ray."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "omoi.bench.startup", which, sandbox],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {which} probe failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


def startup(*, repeat: int = 1, sandbox: str = "local") -> Table:
    bases = [_probe("baseline", sandbox) for _ in range(repeat)]
    ours = [_probe("omoi", sandbox) for _ in range(repeat)]

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    base_total = med(bases, "total")
    table = Table(
        title=f"omoi bench startup: process start -> first model request, median of {repeat} "
        f"(fresh process and Ray each; sandbox {sandbox})"
    )
    for col in ("stage", "s", "ratio vs bare Ray total"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    rows: list[tuple[str, float]] = [
        ("bare: ray.init()", med(bases, "ray_up")),
        ("bare: one actor created and called", med(bases, "first_call")),
        ("bare: total (baseline)", base_total),
        ("omoi: Ray up (connect)", med(ours, "ray_up")),
        ("omoi: run actors up (api.start_goal returns)", med(ours, "actors_up")),
        ("omoi: run.started -> spec agent started", med(ours, "spec_agent")),
        ("omoi: run.started -> first model request", med(ours, "first_request")),
        ("omoi: process start -> first model request", med(ours, "total")),
    ]
    for name, seconds in rows:
        table.add_row(name, f"{seconds:.2f}", f"{seconds / base_total:.2f}x")
    table.caption = (
        f"the demo's goal run: run.started -> run.finished {med(ours, 'run'):.1f}s, process wall "
        f"{med(ours, 'wall'):.1f}s; model turn latency p50: first turns {med(ours, 'first_turn_p50'):.2f}s, "
        f"later turns {med(ours, 'later_turn_p50'):.2f}s"
    )
    return table


def _main(argv: list[str]) -> None:
    which, sandbox = argv[0], (argv[1] if len(argv) > 1 else "local")
    result: Any = _baseline() if which == "baseline" else _omoi(sandbox)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
