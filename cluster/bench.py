"""Benchmarks: omoi's machinery against a plain-Ray baseline measured in the same run.

They print tables, they assert nothing: claims about speed come from here, not from timed tests."""

from __future__ import annotations

import contextlib
import functools
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
from rich.table import Table

from omoi.cluster import deploy
from omoi.cluster.connect import connect, kill_run_actors
from omoi.cluster.handles import BusProxy
from omoi.cluster.runner import launch
from omoi.runtime.git.repo import git
from omoi.runtime.log.events import Event, TaskOutput
from omoi.runtime.log.store import Durability
from omoi.runtime.run.begin import open_log, plan_new_run
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


@contextlib.contextmanager
def scratch_repo(files: dict[str, str] | None = None) -> Iterator[Path]:
    """A throwaway git repository with one commit holding `files`, removed afterwards."""
    repo = Path(tempfile.mkdtemp(prefix="omoi-bench-"))
    try:
        git(["init", "--quiet"], repo)
        for name, text in (files or {}).items():
            (repo / name).write_text(text)
        git(["add", "-A"], repo)
        git(["commit", "--quiet", "--allow-empty", "-m", "bench"], repo)
        yield repo
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def _graph_run(
    specs: list[TaskSpec], repo: Path, run_id: str, max_parallel: int
) -> tuple[float, dict[str, int]]:
    """Seconds from the first task becoming ready to the last one succeeding, read from the log."""
    paths, first = plan_new_run(
        Plan(name="bench", tasks=tuple(specs)), repo, run_id=run_id, max_parallel=max_parallel, sandbox="noop"
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
    with scratch_repo() as repo:
        _graph_run(layered_dag(min(n, 2 * width), width), repo, "bench-warmup", max_parallel)
        runs = [_graph_run(specs, repo, f"bench-{i}", max_parallel) for i in range(repeat)]
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


# ---- bus -----------------------------------------------------------------------------------------


class _Reader:
    """A subscriber: long-polls the bus from its own cursor until it has seen `last`."""

    def __init__(self, bus_name: str) -> None:
        self.bus = BusProxy(bus_name)

    async def consume(self, last: int) -> float:
        cursor = 0
        while cursor < last:
            batch = await self.bus.read(cursor, None, 5000, 5.0)
            if batch:
                cursor = batch[-1].seq or cursor
        return time.time()


class _Plain:
    """The baseline subscriber: the publisher calls it directly, nothing is stored."""

    def __init__(self) -> None:
        self.n = 0

    async def receive(self, batch: list[Event]) -> None:
        self.n += len(batch)


Reader: Any = ray.remote(num_cpus=0)(_Reader)
Plain: Any = ray.remote(num_cpus=0)(_Plain)


def _events(n: int, run_id: str) -> list[Event]:
    return [TaskOutput(run_id=run_id, task_id=f"t{i % 50}", attempt=1, tail=f"line {i}") for i in range(n)]


def _omoi_bus(n: int, batch: int, subs: int, durability: Durability, tag: str) -> float:
    run_id = f"busbench-{tag}-{subs}"
    with tempfile.TemporaryDirectory(prefix="omoi-bus-") as tmp:
        bus = deploy.start_bus(run_id, Path(tmp) / "events.db", durability)
        readers = [Reader.remote(f"omoi/{run_id}/bus") for _ in range(subs)]
        ray.get(bus.last_seq.remote())
        events = _events(n, run_id)
        done = [r.consume.remote(n) for r in readers]
        start = time.time()
        for i in range(0, n, batch):
            ray.get(bus.publish.remote(events[i : i + batch]))
        end: float = max(ray.get(done))
        for r in readers:
            ray.kill(r)
        kill_run_actors(run_id)
    return n / (end - start)


def _plain_calls(n: int, batch: int, subs: int) -> float:
    actors = [Plain.remote() for _ in range(subs)]
    ray.get([a.receive.remote([]) for a in actors])
    events = _events(n, "plain")
    start = time.time()
    for i in range(0, n, batch):
        chunk = events[i : i + batch]
        ray.get([a.receive.remote(chunk) for a in actors])
    rate = n / (time.time() - start)
    for a in actors:
        ray.kill(a)
    return rate


def bus(*, n_events: int = 20_000, batch: int = 100, address: str | None = None) -> Table:
    connect(address)
    table = Table(
        title=f"omoi bench bus: {n_events} events in batches of {batch}, publish -> every subscriber has it"
    )
    for col in ("path", "subscribers", "events/s", "ratio vs plain calls"):
        table.add_column(col, justify="right" if col != "path" else "left")
    _plain_calls(min(n_events, 2000), batch, 1)  # warm-up
    rows: list[tuple[str, int, Callable[[], float]]] = []
    for subs in (1, 4):
        rows += [
            ("plain actor calls (no log)", subs, functools.partial(_plain_calls, n_events, batch, subs)),
            (
                "omoi bus, SQLite WAL synchronous=FULL",
                subs,
                functools.partial(_omoi_bus, n_events, batch, subs, "FULL", "full"),
            ),
            (
                "omoi bus, SQLite WAL synchronous=NORMAL",
                subs,
                functools.partial(_omoi_bus, n_events, batch, subs, "NORMAL", "normal"),
            ),
        ]
    baseline: dict[int, float] = {}
    for name, subs, measure in rows:
        rate = measure()
        baseline.setdefault(subs, rate)
        table.add_row(name, str(subs), f"{rate:,.0f}", f"{rate / baseline[subs]:.2f}x")
    return table


# ---- sandbox -------------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def sandbox(*, samples: int = 20) -> Table:
    """p50/p95 of a plain `docker run --rm`, a plain `git worktree add`, a task tree's checkout
    alone, and a sandbox acquire, cold (tree + container start) and warm (tree into a container
    started ahead)."""
    from omoi.runtime.sandbox.docker import connect_engine
    from omoi.runtime.sandbox.image import default_tag

    connect_engine()
    tag = default_tag()
    with scratch_repo({"README.md": "bench\n"}) as repo:
        return _sandbox(samples, tag, repo)


def _sandbox(samples: int, tag: str, repo: Path) -> Table:
    import asyncio
    import subprocess

    from omoi.runtime.git.repo import TaskTree, inspect_repo
    from omoi.runtime.run.execution import TaskRequest
    from omoi.runtime.sandbox.docker import DockerBackend

    info = inspect_repo(repo)
    root = Path(tempfile.mkdtemp(prefix="omoi-bench-wt-"))

    def request(i: int) -> TaskRequest:
        return TaskRequest(
            run_id="bench",
            task_id=f"t{i}",
            attempt=1,
            command="true",
            timeout=60,
            branch=f"omoi/bench/t{i}",
            base=info.head_commit,
        )

    def timed(fn: Callable[[int], object]) -> list[float]:
        out = []
        for i in range(samples):
            start = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - start)
        return out

    docker_run = timed(
        lambda i: subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "true"], check=True, capture_output=True
        )
    )
    worktree = timed(
        lambda i: subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "-q", "-B", f"omoi/bench/w{i}", str(root / f"w{i}")],
            check=True,
            capture_output=True,
        )
    )
    subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=True)
    trees = [TaskTree(info.git_dir, root / f"tree{i}", f"omoi/bench/tree{i}") for i in range(samples)]
    checkout = timed(lambda i: trees[i].checkout(info.head_commit))
    for tree in trees:
        tree.remove()

    async def acquire(pool: int) -> list[float]:
        backend = DockerBackend(info.path, info.git_dir, root, run_id=f"bench-{pool}", image=tag, pool=pool)
        out = []
        for i in range(samples):
            await backend.warm()  # a warm acquire finds its container started; a cold one starts it
            start = time.perf_counter()
            sb = await backend.create(request(i))
            out.append(time.perf_counter() - start)
            await sb.destroy()
        await backend.close()
        return out

    cold = asyncio.run(acquire(0))
    warm = asyncio.run(acquire(1))
    base_p50, _ = _percentiles(docker_run)
    table = Table(title=f"omoi bench sandbox: {samples} samples each, image {tag}")
    for col in ("operation", "p50 ms", "p95 ms", "p50 vs docker run --rm"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for name, data in (
        ("plain docker run --rm (baseline)", docker_run),
        ("plain git worktree add", worktree),
        ("task tree checkout alone", checkout),
        ("sandbox acquire, cold", cold),
        ("sandbox acquire, warm pool", warm),
    ):
        p50, p95 = _percentiles(data)
        table.add_row(name, f"{p50 * 1e3:.0f}", f"{p95 * 1e3:.0f}", f"{p50 / base_p50:.2f}x")
    shutil.rmtree(root, ignore_errors=True)
    return table


# ---- explore -------------------------------------------------------------------------------------


def explore(path: Path, *, repeat: int = 3) -> Table:
    """The static Explore against the least any analysis must do: list the tracked files and read
    each one. Both in this process, median of `repeat`, the page cache warm for both."""
    from omoi.runtime.explore.static import explore as run_explore
    from omoi.runtime.explore.static import tracked_files

    def read_all() -> int:
        files = tracked_files(path)
        for f in files:
            with contextlib.suppress(OSError):
                (path / f).read_bytes()
        return len(files)

    read_all()  # warm the page cache
    baseline = [_timed(read_all) for _ in range(repeat)]
    runs = [run_explore(path) for _ in range(repeat)]
    last = runs[-1]
    base_s = statistics.median(t for t, _ in baseline)
    ours_s = statistics.median(r.elapsed_s for r in runs)
    table = Table(title=f"omoi bench explore: {path} ({last.files:,} files), median of {repeat}")
    for col in ("path", "wall s", "files/s", "ratio vs baseline"):
        table.add_column(col, justify="left" if col == "path" else "right")
    table.add_row(
        "git ls-files + read every file (baseline)", f"{base_s:.2f}", f"{last.files / base_s:,.0f}", "1.00x"
    )
    table.add_row(
        "omoi static explore", f"{ours_s:.2f}", f"{last.files / ours_s:,.0f}", f"{ours_s / base_s:.2f}x"
    )
    py = last.python
    table.caption = (
        f"{len(py.modules):,} Python modules ({', '.join(f'{k}: {v:,}' for k, v in py.parsers.items())}), "
        f"{len(py.edges):,} import edges, {len(py.cycles)} cycles, {len(last.symbols):,} symbols"
        f"{' (capped)' if last.symbols_truncated else ''}, {len(last.hotspots)} hotspots"
    )
    return table


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
