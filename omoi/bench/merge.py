"""`omoi bench merge`: branches through the merge queue against a plain sequential `git merge` loop
over the same branches, in the same run. No Ray: the integrator is the plain class, following a
durable log (SQLite, synchronous=FULL) on an in-process bus, so what is measured is the queue's
own work (its fold, merge order, `merge-tree` merges, rules, durable events, branch moves), not
actor round trips. Verification is excluded (no checks are configured), as the target says."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from omoi.actors.bus import BusActor
from omoi.actors.integrator import IntegratorActor
from omoi.bench.common import scratch_repo
from omoi.runtime import names
from omoi.runtime.git.repo import git
from omoi.runtime.log import events as E
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.run.tasks import TaskSpec

RUN = "mergebench"


@dataclass(frozen=True)
class Branches:
    tips: dict[str, str]  # task -> its branch's commit
    base: str
    appends: int  # branches that also append a line to the shared LOG.md


def make_branches(repo: Path, n: int, every: int) -> Branches:
    """`n` task branches from the base, each adding a file of its own; every `every`-th (0: none)
    also appends a line to LOG.md, which conflicts, by append, with every other such branch."""
    base = git(["rev-parse", "HEAD"], repo).stdout.strip()
    tips, appends = {}, 0
    for i in range(n):
        task = f"t{i:02d}"
        git(["checkout", "--quiet", "-B", names.task_branch(RUN, task), base], repo)
        (repo / "src").mkdir(exist_ok=True)
        (repo / "src" / f"{task}.txt").write_text(f"work of {task}\n")
        if every and i % every == 0:
            with (repo / "LOG.md").open("a") as f:
                f.write(f"- {task} was here\n")
            appends += 1
        git(["add", "-A"], repo)
        git(["commit", "--quiet", "-m", task], repo)
        tips[task] = git(["rev-parse", "HEAD"], repo).stdout.strip()
    git(["checkout", "--quiet", "--detach", base], repo)
    return Branches(tips, base, appends)


def plain_loop(repo: Path, b: Branches, scratch: Path) -> float:
    """Seconds for `git merge` of every branch in turn, in a clone with a work tree. LOG.md merges
    with git's built-in union driver, the nearest plain-git equivalent of the append rule."""
    clone = scratch / "plain"
    git(["clone", "--quiet", "--shared", "--no-checkout", str(repo), str(clone)], scratch)
    (clone / ".git" / "info").mkdir(exist_ok=True)
    (clone / ".git" / "info" / "attributes").write_text("LOG.md merge=union\n")
    git(["checkout", "--quiet", "-b", "plain", b.base], clone)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@omoi"]
    start = time.perf_counter()
    for tip in b.tips.values():
        subprocess.run(
            ["git", *ident, "merge", "--quiet", "--no-edit", tip], cwd=clone, check=True, capture_output=True
        )
    return time.perf_counter() - start


async def through_queue(repo: Path, b: Branches, log: Path) -> tuple[float, int]:
    """Seconds from the first `task.succeeded` to the last `merge.succeeded`, and how many
    conflicts the rules resolved on the way."""
    bus = BusActor(SqliteEventStore(log, durability="FULL"))
    prelude: list[E.Event] = [E.RunStarted(run_id=RUN, repo=str(repo), base_commit=b.base)]
    for i, task in enumerate(b.tips):
        spec = TaskSpec(id=task, run="true")
        prelude.append(E.TaskAdded(run_id=RUN, task_id=task, spec=spec, order=i))
    await bus.publish(prelude)
    integrator = IntegratorActor(RUN, repo / ".git", bus, None, radar_interval=1e9)
    running = asyncio.create_task(integrator.run())
    start = time.perf_counter()
    await bus.publish(
        [E.TaskSucceeded(run_id=RUN, task_id=t, attempt=1, commit=c) for t, c in b.tips.items()]
    )
    seen, merged, ruled = 0, 0, 0
    while merged < len(b.tips):
        for ev in await bus.read(seen, ("merge.",), 1000, 5.0):
            seen = ev.seq or seen
            merged += ev.kind == "merge.succeeded"
            ruled += ev.kind == "merge.resolved" and ev.how == "rule"
            if ev.kind == "merge.failed" or (ev.kind == "merge.conflicted" and ev.next != "rule"):
                raise RuntimeError(f"the queue did not merge {ev.task_id} by itself: {ev.kind}")
    elapsed = time.perf_counter() - start
    await bus.publish([E.RunFinished(run_id=RUN, status="succeeded")])
    await running
    return elapsed, ruled


def check_merged(repo: Path, b: Branches) -> None:
    """Both sides kept: every branch's file and every appended line are on the merged branch."""
    head = names.run_branch(RUN)
    files = set(git(["ls-tree", "-r", "--name-only", head], repo).stdout.split())
    missing = [t for t in b.tips if f"src/{t}.txt" not in files]
    lines = git(["show", f"{head}:LOG.md"], repo).stdout.count(" was here") if b.appends else 0
    if missing or lines != b.appends:
        raise RuntimeError(f"the merged branch lost work: files {missing}, {lines}/{b.appends} lines")


def _scenario(n: int, every: int, repeat: int) -> tuple[float, float, int, int]:
    """Median seconds per merge, plain and queue, over `repeat` fresh repositories."""
    plain, queue, ruled, appends = [], [], 0, 0
    for _ in range(repeat):
        with scratch_repo({"README.md": "bench\n", "LOG.md": "# log\n"}) as repo:
            b = make_branches(repo, n, every)
            appends = b.appends
            with tempfile.TemporaryDirectory(prefix="omoi-merge-") as tmp:
                plain.append(plain_loop(repo, b, Path(tmp)) / n)
                took, ruled = asyncio.run(through_queue(repo, b, Path(tmp) / "events.db"))
                queue.append(took / n)
            check_merged(repo, b)
    return statistics.median(plain), statistics.median(queue), ruled, appends


def merge(*, branches: int = 20, repeat: int = 3) -> Table:
    every = 3
    table = Table(
        title=f"omoi bench merge: {branches} branches, merge queue vs. a plain `git merge` loop "
        f"(median of {repeat}; verification excluded)"
    )
    for col in ("branches", "plain git merge, ms/merge", "omoi merge queue, ms/merge", "ratio", "by rule"):
        table.add_column(col, justify="left" if col == "branches" else "right")
    for step in (0, every):
        plain, queue, ruled, appends = _scenario(branches, step, repeat)
        label = f"{branches}, {appends} appending to LOG.md" if step else f"{branches} clean"
        ms = (f"{plain * 1000:.1f}", f"{queue * 1000:.1f}")
        table.add_row(label, *ms, f"{queue / plain:.2f}x", str(ruled))
    return table
