"""`omoi bench sandbox`: a task's Docker sandbox (checkout, container, first command) against a
bare `docker run`. No Ray."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from omoi.bench.common import percentiles, scratch_repo


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
    base_p50, _ = percentiles(docker_run)
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
        p50, p95 = percentiles(data)
        table.add_row(name, f"{p50 * 1e3:.0f}", f"{p95 * 1e3:.0f}", f"{p50 / base_p50:.2f}x")
    shutil.rmtree(root, ignore_errors=True)
    return table
