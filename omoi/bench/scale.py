"""`omoi bench scale`: how a run's costs grow with its size, in one run.

Scheduling cost per task at growing task counts (through the graph actor, as `bench scheduler`);
then a log of `events` events, written as the runtime writes them (the progression policy decides
every event, as the graph would), and what reading it costs: the replay into the run state, the
time `omoi resume` takes to dispatch again after loading it, and `omoi status` (the first time,
which stores a snapshot of the fold, and after the resume) and `omoi events --kind task.` on it,
each a fresh process as a person would run them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.table import Table

from omoi.bench.common import scratch_repo
from omoi.bench.scheduler import graph_run, layered_dag
from omoi.cluster.connect import connect
from omoi.cluster.runner import launch
from omoi.policies.progression import Progression
from omoi.runtime.log.events import Event, TaskOutput
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.execution import TaskResult
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.paths import RunPaths
from omoi.runtime.run.plan import Plan
from omoi.runtime.run.state import RunState, fold

OUTPUTS_PER_TASK = 6  # command output chunks per attempt: most of a real log is what tasks say
WIDTH = 100


def write_long_run(repo: Path, run_id: str, events: int, say: Callable[[str], None]) -> tuple[RunPaths, int]:
    """A run interrupted near its end with at least `events` events in its log: every event but
    the outputs decided by `Progression` over the run's state, as the graph decides them. Returns
    where it lives and how many tasks it has left to do."""
    per_task = 4 + OUTPUTS_PER_TASK  # added, ready, started, the outputs, succeeded
    tasks = -(-int(events / per_task * 1.1) // WIDTH) * WIDTH  # about a tenth is left to do
    specs = layered_dag(tasks, WIDTH)
    paths, first = plan_new_run(
        Plan(name="scale", tasks=tuple(specs)),
        repo,
        RunOptions.of(run_id=run_id, max_parallel=WIDTH, sandbox="noop"),
    )
    state = RunState(run_id)
    progress = Progression(state, source="bench", max_parallel=WIDTH, sandbox_name=lambda i: f"slot-{i}")
    store = SqliteEventStore(paths.events_db, durability="OFF")
    now = datetime.now(UTC)
    for ev in first:
        state.apply(ev)
    written = len(store.append([e.model_copy(update={"ts": now}) for e in first]))
    completions: list[tuple[str, int, TaskResult]] = []
    while written < events:
        now += timedelta(milliseconds=5)
        decided = progress.step(now, completions)
        batch: list[Event] = list(decided.events)
        completions = []
        for launch_ in decided.launches:
            req = launch_.request
            batch += [
                TaskOutput(
                    run_id=run_id, task_id=req.task_id, attempt=req.attempt, tail=f"line {i}\n" * 8, ts=now
                )
                for i in range(OUTPUTS_PER_TASK)
            ]
            completions.append((req.task_id, req.attempt, TaskResult(status="succeeded", exit_code=0)))
        if not batch:
            raise RuntimeError(f"the run finished after {written} events, short of {events}")
        written += len(store.append(batch))
        if written // 20_000 != (written - len(batch)) // 20_000:
            say(f"wrote {written:,} events")
    store.close()
    left = sum(1 for t in state.tasks.values() if t.status != "succeeded")
    return paths, left


def _replay(paths: RunPaths) -> tuple[float, int]:
    """Seconds to read the whole log and fold it into the run state, and the events read."""
    start = time.perf_counter()
    with contextlib.closing(open_log(paths)) as log:
        events = log.read()
    fold(paths.run_id, events)
    return time.perf_counter() - start, len(events)


def _resume_to_dispatch(paths: RunPaths, timeout: float = 300.0) -> float:
    """Seconds from `launch` on the interrupted run (what `omoi resume` calls) to the first
    `task.started` it writes."""
    with contextlib.closing(open_log(paths)) as log:
        after = log.last_seq()
    start = time.perf_counter()
    handle = launch(paths, max_parallel=8)
    try:
        with contextlib.closing(open_log(paths)) as log:
            while not log.read(after=after, prefixes=("task.started",), limit=1):
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"the resumed run dispatched nothing within {timeout:.0f}s")
                time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        handle.shutdown()


def _cli(*args: str) -> float:
    """A fresh `omoi` process, as a person runs it: interpreter and imports included."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "omoi", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120"},
    )
    return time.perf_counter() - start


def scale(
    *, sizes: tuple[int, ...] = (100, 1000, 10_000), events: int = 100_000, address: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Table:  # fmt: skip
    connect(address, include_dashboard=False)
    table = Table(title=f"omoi bench scale ({datetime.now(UTC):%Y-%m-%d})")
    for col in ("what", "size", "measured", "per unit", "ratio", "target"):
        table.add_column(col, justify="left" if col in ("what", "target") else "right")
    with scratch_repo() as repo:
        per_task: dict[int, float] = {}
        for n in sizes:
            say(f"scheduling {n:,} tasks")
            per_task[n] = graph_run(layered_dag(n, 50), repo, f"scale-{n}", 8)[0] / n
        base_n = sizes[1] if len(sizes) > 1 else sizes[0]
        base = per_task[base_n]
        for n in sizes:
            table.add_row(
                "scheduling through the graph actor", f"{n:,} tasks", f"{per_task[n] * n:.2f} s",
                f"{per_task[n] * 1e3:.2f} ms/task", f"{per_task[n] / base:.2f}x",
                f"{n:,} within 1.3x of {base_n:,}" if n == sizes[-1] != base_n else "",
            )  # fmt: skip
        say(f"writing a log of {events:,} events")
        paths, left = write_long_run(repo, "scale-log", events, say)
        seconds, read = _replay(paths)
        table.add_row(
            "replay: read + fold into the run state", f"{read:,} events", f"{seconds:.2f} s",
            f"{read / seconds:,.0f} events/s", "", ">= 50,000 events/s",
        )  # fmt: skip
        status = ("status", "scale-log", "--repo", str(repo))
        first = _cli(*status)  # no snapshot yet: it folds the whole log and stores one
        say("resuming it")
        resumed = _resume_to_dispatch(paths)
        table.add_row(
            "omoi resume: launch -> first task.started", f"{read:,} events", f"{resumed:.2f} s", "", "",
            f"{left:,} tasks left to do",
        )  # fmt: skip
        floor = _cli("--help")
        table.add_row(
            "omoi status, first read (stores a snapshot)", f"{read:,} events", f"{first:.2f} s", "",
            f"{first / floor:.1f}x", "",
        )  # fmt: skip
        for args, what in (
            (status, "omoi status (snapshot + the tail after it)"),
            (("events", "scale-log", "--kind", "task.", "--repo", str(repo)), "omoi events --kind task."),
        ):
            took = _cli(*args)
            table.add_row(what, f"{read:,} events", f"{took:.2f} s", "", f"{took / floor:.1f}x", "< 1 s")
        table.add_row("omoi --help (the process floor)", "", f"{floor:.2f} s", "", "1.00x", "")
    return table
