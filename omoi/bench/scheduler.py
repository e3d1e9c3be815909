"""`omoi bench scheduler`: the graph actor against raw Ray tasks chained by ObjectRefs, in the same
run.

Benchmarks print tables and assert nothing: claims about speed come from here, not from timed tests."""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import ray
from rich.table import Table

from omoi.bench.common import scratch_repo
from omoi.cluster.connect import connect
from omoi.cluster.runner import launch
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.plan import Plan
from omoi.runtime.run.tasks import TaskSpec


def layered_dag(tasks: int, width: int) -> list[TaskSpec]:
    """`tasks/width` layers; each task depends on two tasks of the layer before (j and j+1)."""
    layers = max(1, tasks // width)
    specs = []
    for i in range(layers):
        for j in range(width):
            deps = () if i == 0 else tuple(sorted({f"t{i - 1}-{j}", f"t{i - 1}-{(j + 1) % width}"}))
            specs.append(TaskSpec(id=f"t{i}-{j}", run="true", deps=deps))
    return specs


@ray.remote
def _noop(*deps: Any) -> None:
    return None


def _raw_ray(specs: list[TaskSpec]) -> float:
    start = time.perf_counter()
    refs: dict[str, Any] = {}
    for s in specs:
        refs[s.id] = _noop.remote(*(refs[d] for d in s.deps))
    ray.get(list(refs.values()))
    return time.perf_counter() - start


@ray.remote(num_cpus=0)
class _Slot:
    async def execute(self, task_id: str) -> str:
        return task_id


def _actor_calls(specs: list[TaskSpec], slots: int) -> float:
    """The floor for any design that gives each task a call on a slot actor of its own, as the graph
    does: the same DAG dispatched from the driver to `slots` async actors, nothing written."""
    actors = [_Slot.remote() for _ in range(slots)]  # type: ignore[attr-defined]
    ray.get([a.execute.remote("warm") for a in actors])
    waiting = {s.id: set(s.deps) for s in specs}
    dependents: dict[str, list[str]] = {}
    for s in specs:
        for d in s.deps:
            dependents.setdefault(d, []).append(s.id)
    ready = [t for t, deps in waiting.items() if not deps]
    free: list[Any] = list(actors)
    running: dict[Any, Any] = {}
    start = time.perf_counter()
    while ready or running:
        while ready and free:
            actor = free.pop()
            running[actor.execute.remote(ready.pop(0))] = actor
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            free.append(running.pop(ref))
            for t in dependents.get(ray.get(ref), []):
                waiting[t].discard(ray.get(ref))
                if not waiting[t]:
                    ready.append(t)
    seconds = time.perf_counter() - start
    for a in actors:
        ray.kill(a)
    return seconds


def graph_run(
    specs: list[TaskSpec], repo: Path, run_id: str, max_parallel: int
) -> tuple[float, dict[str, int]]:
    """Seconds from the first task becoming ready to the last one succeeding, read from the log."""
    paths, first = plan_new_run(
        Plan(name="bench", tasks=tuple(specs)),
        repo,
        RunOptions.of(run_id=run_id, max_parallel=max_parallel, sandbox="noop"),
    )
    handle = launch(paths, first)
    try:
        finished = handle.wait()
        stats: dict[str, int] = ray.get(handle.graph.stats.remote())
        if finished.status != "succeeded":
            raise RuntimeError(f"benchmark run {run_id} ended {finished.status}: {finished.error}")
    finally:
        handle.shutdown()
    with contextlib.closing(open_log(paths)) as log:
        seen = log.read(prefixes=("task.ready", "task.succeeded"))
    ready = min(e.ts for e in seen if e.kind == "task.ready")
    done = max(e.ts for e in seen if e.kind == "task.succeeded")
    return (done - ready).total_seconds(), stats


def scheduler(
    *, tasks: int = 1000, width: int = 50, max_parallel: int = 8, repeat: int = 3, address: str | None = None
) -> Table:
    connect(address, include_dashboard=False)
    specs = layered_dag(tasks, width)
    n = len(specs)
    _raw_ray(specs)  # warm the worker pool
    raw = [_raw_ray(specs) for _ in range(repeat)]
    floor = [_actor_calls(specs, max_parallel) for _ in range(repeat)]
    with scratch_repo() as repo:
        graph_run(layered_dag(min(n, 2 * width), width), repo, "bench-warmup", max_parallel)
        runs = [graph_run(specs, repo, f"bench-{i}", max_parallel) for i in range(repeat)]
    ours = [seconds for seconds, _ in runs]
    stats = runs[-1][1]
    raw_ms, our_ms = statistics.median(raw) / n * 1e3, statistics.median(ours) / n * 1e3
    table = Table(
        title=f"omoi bench scheduler: {n} no-op tasks, {n // width} layers x {width}, "
        f"max_parallel={max_parallel}, median of {repeat}"
    )
    for col in ("path", "wall s", "per task ms", "tasks/s", "ratio vs raw Ray"):
        table.add_column(col, justify="right" if col != "path" else "left")
    table.add_row(
        "raw Ray tasks chained by ObjectRefs",
        f"{statistics.median(raw):.3f}",
        f"{raw_ms:.3f}",
        f"{n / statistics.median(raw):,.0f}",
        "1.00x",
    )
    floor_s = statistics.median(floor)
    table.add_row(
        f"one call per task on {max_parallel} slot actors (nothing durable)",
        f"{floor_s:.3f}",
        f"{floor_s / n * 1e3:.3f}",
        f"{n / floor_s:,.0f}",
        f"{floor_s / n * 1e3 / raw_ms:.2f}x",
    )
    table.add_row(
        "omoi graph actor (durable bus, noop sandboxes)",
        f"{statistics.median(ours):.3f}",
        f"{our_ms:.3f}",
        f"{n / statistics.median(ours):,.0f}",
        f"{our_ms / raw_ms:.2f}x",
    )
    p = max(1, stats["publishes"])
    table.caption = (
        f"graph loop (last run): {stats['completions'] / max(1, stats['steps']):.1f} completions per step, "
        f"{stats['events'] / p:.1f} events per publish, {stats['publish_us'] / p / 1e3:.2f} ms per publish, "
        f"time publishing {stats['publish_us'] / 1e6:.2f}s / stepping {stats['step_us'] / 1e6:.2f}s / "
        f"waiting {stats['idle_us'] / 1e6:.2f}s"
    )
    return table
