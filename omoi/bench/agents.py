"""`omoi bench agents`: N concurrent scripted agents through omoi, against the same conversations
driven by plain Ray actors calling the SDK directly, measured in the same run.

Both talk to one scripted model server with no added latency, so what is measured is the
machinery: omoi's agent actors, tool calls served by sandbox slots on real worktrees, events for
every turn and tool call, leases and budget checks, against an SDK loop with no tools executed."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import ray
from rich.table import Table

from omoi.bench.common import scratch_repo
from omoi.cluster.agents import AgentEnv
from omoi.cluster.connect import NAMESPACE, actor_name, connect
from omoi.cluster.runner import launch
from omoi.runtime.config import AgentSettings, model_settings
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.plan import Plan
from omoi.runtime.run.tasks import AgentSpec, TaskSpec

MODEL = "claude-sonnet-4-6"


def _script(turns: int) -> dict[str, Any]:
    work = {"tools": [{"read_file": {"path": "README.md"}}, {"search": {"pattern": "bench"}}]}
    done = {"tools": [{"finish": {"status": "complete", "summary": "done"}}]}
    return {"tasks": {"*": {"worker": [work] * (turns - 1) + [done]}}}


@ray.remote(num_cpus=0)
class _PlainAgent:
    """The baseline: the same conversation with the SDK, tool results made up, nothing recorded."""

    def __init__(self, url: str) -> None:
        import anthropic  # loaded before the clock starts, as omoi's agents are

        self.client = anthropic.AsyncAnthropic(api_key="bench", base_url=url, max_retries=0)

    async def converse(self, task: str, started_at: float) -> tuple[float, int, float]:
        client = self.client
        messages: list[Any] = [{"role": "user", "content": "do the task"}]
        first, calls = 0.0, 0
        while True:
            if not first:
                first = time.time() - started_at
            reply = await client.messages.create(
                model=MODEL,
                max_tokens=1024,
                messages=messages,
                extra_headers={"x-omoi-task": task, "x-omoi-role": "worker"},
            )
            uses = [b for b in reply.content if b.type == "tool_use"]
            calls += len(uses)
            if any(u.name == "finish" for u in uses) or not uses:
                return first, calls, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            messages += [
                {"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "ok"} for u in uses],
                },
            ]


def _baseline(n: int, url: str) -> Measured:
    actors = [_PlainAgent.remote(url) for _ in range(n)]  # type: ignore[attr-defined]
    ray.get([a.__ray_ready__.remote() for a in actors])
    start = time.time()
    results = ray.get([a.converse.remote(f"plain{i}", start) for i, a in enumerate(actors)])
    wall = time.time() - start
    for a in actors:
        ray.kill(a)
    return wall, [r[0] for r in results], sum(r[1] for r in results), [r[2] for r in results]


@ray.remote(num_cpus=0)
class _Watcher:
    """A subscriber that follows every event of the run, as the run's own do, from the bus: for
    each, how long after it was stamped it got here, and whether any seq was missed."""

    def __init__(self, bus_name: str) -> None:
        from omoi.cluster.handles import BusProxy

        self.bus, self.cursor, self.lags, self.gaps = BusProxy(bus_name), 0, list[float](), 0
        self.stopped, self.since = False, time.time()  # what the run wrote before this is catch-up

    async def follow(self) -> tuple[list[float], int, int]:
        while not self.stopped:
            for ev in await self.bus.read(self.cursor, None, 5000, 1.0):
                seq = ev.seq or 0
                if seq <= self.cursor:
                    continue
                self.gaps += seq - self.cursor - 1
                self.cursor = seq
                if ev.ts.timestamp() >= self.since:
                    self.lags.append(time.time() - ev.ts.timestamp())
        return self.lags, self.gaps, self.cursor

    async def stop(self) -> None:
        self.stopped = True


def _omoi_mb() -> float:
    """Resident memory of every Ray worker process (omoi's actors) and of this driver, in MB."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            if cmd.startswith(b"ray::") or proc.name == str(os.getpid()):
                rss = (proc / "statm").read_text().split()[1]
                total += int(rss) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


class _PeakMemory:
    """Samples `_omoi_mb` twice a second on a thread until stopped: the peak of the sum."""

    def __init__(self) -> None:
        import threading

        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _omoi_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


Measured = tuple[float, list[float], int, list[float]]  # wall s, latencies s, tool calls, RSS MB
Stages = dict[str, float]  # stage -> median seconds


def _stages(events: list[Any], first_call: dict[str, float]) -> Stages:
    """Median time of each step between a task becoming ready and its first model request."""
    at: dict[str, dict[str, float]] = {}
    for e in events:
        if e.kind in ("task.ready", "task.started", "agent.started"):
            at.setdefault(e.task_id, {}).setdefault(e.kind, e.ts.timestamp())
    steps = {
        "graph: ready -> started": ("task.ready", "task.started"),
        "slot: started -> agent running": ("task.started", "agent.started"),
    }
    out = {
        name: statistics.median(t[b] - t[a] for t in at.values() if a in t and b in t)
        for name, (a, b) in steps.items()
    }
    out["agent: running -> 1st request"] = statistics.median(
        first_call[task] - t["agent.started"] for task, t in at.items() if task in first_call
    )
    return out


Whole = dict[str, float]  # peak MB of all omoi processes, bus lag p50/p99 s, events, missed


def _omoi(
    n: int, server: ScriptedModelServer, supervision: str = "on"
) -> tuple[Measured, Stages, int, Whole]:
    """One run of n agents, with the guardian's signals and interventions on or off. Each agent's
    memory includes its share of the run's supervisor process (budget, guardian, discovery and
    conductor: one per run, for all its agents)."""
    before = os.environ.get("OMOI_SUPERVISION")
    os.environ["OMOI_SUPERVISION"] = supervision  # read where the run starts, as a user sets it
    try:
        with scratch_repo({"README.md": "bench\n"}) as repo:
            return _omoi_run(n, server, repo)
    finally:
        if before is None:
            del os.environ["OMOI_SUPERVISION"]
        else:
            os.environ["OMOI_SUPERVISION"] = before


def _supervisor_mb(run_id: str) -> float:
    supervisor = ray.get_actor(actor_name(run_id, "supervisor"), namespace=NAMESPACE)
    peaks: list[float] = ray.get([supervisor.__ray_call__.remote(_peak_mb)])
    return peaks[0]


def _peak_mb(_: object) -> float:
    """The peak resident memory of the process this runs in (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _omoi_run(n: int, server: ScriptedModelServer, repo: Path) -> tuple[Measured, Stages, int, Whole]:
    """The measures, the latency by step, and how many interventions the guardian made."""
    specs = [TaskSpec(id=f"a{i}", agent=AgentSpec(prompt="do the task")) for i in range(n)]
    paths, first = plan_new_run(
        Plan(name="bench-agents", tasks=tuple(specs)),
        repo,
        RunOptions.of(run_id="bench-agents", max_parallel=n, sandbox="local"),
    )
    env = AgentEnv(model_settings(base_url=server.url, default_limit=0), AgentSettings())
    since = len(server.requests)  # the server also saw the runs before this one, with the same task ids
    memory = _PeakMemory()
    handle = launch(paths, first, agents=env)
    watcher = _Watcher.remote(actor_name(paths.run_id, "bus"))  # type: ignore[attr-defined]
    watched = watcher.follow.remote()
    try:
        finished = handle.wait()
        if finished.status != "succeeded":
            raise RuntimeError(f"benchmark run ended {finished.status}: {finished.error}")
        supervisor_share = _supervisor_mb(paths.run_id) / n
        ray.get(watcher.stop.remote())
        lags, missed, seen = ray.get(watched)
    finally:
        peak = memory.stop()
        ray.kill(watcher)
        handle.shutdown()
    ordered_lags = sorted(lags)
    whole = {
        "peak_mb": peak,
        "lag_p50": statistics.median(ordered_lags),
        "lag_p99": ordered_lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))],
        "events": seen,
        "missed": missed,
    }
    with contextlib.closing(open_log(paths)) as log:
        events = log.read()
    ready = {e.task_id: e.ts.timestamp() for e in events if e.kind == "task.ready"}  # type: ignore[union-attr]
    first_call: dict[str, float] = {}
    for r in server.requests[since:]:
        if r.task in ready:
            first_call.setdefault(r.task, r.wall)
    calls = sum(1 for e in events if e.kind == "agent.tool_called")
    start = min(ready.values())
    end = max(e.ts.timestamp() for e in events if e.kind == "agent.finished")
    rss = [e.rss_mb + supervisor_share for e in events if e.kind == "agent.finished"]  # type: ignore[union-attr]
    measured = end - start, [first_call[t] - ready[t] for t in ready], calls, rss
    whole["missed"] += max(0, len(events) - int(whole["events"]))  # the log has more than was seen
    interventions = sum(1 for e in events if e.kind == "guardian.intervened")
    return measured, _stages(events, first_call), interventions, whole


def agents(*, n: int = 10, turns: int = 5, address: str | None = None, supervision: bool = False) -> Table:
    """With `supervision`, omoi runs twice, the guardian's signals off then on (`OMOI_SUPERVISION`)."""
    if n < 1 or turns < 2:
        raise ValueError("--agents must be at least 1 and --turns at least 2")
    connect(address, include_dashboard=False)
    with ScriptedModelServer(parse_script(_script(turns))) as server:
        _baseline(min(n, 2), server.url)  # warm the worker pool
        plain = _baseline(n, server.url)
        off = _omoi(n, server, "off")[0] if supervision else None
        ours, stages, interventions, whole = _omoi(n, server, "on")
    table = Table(
        title=f"omoi bench agents: {n} agents at once, {turns} model turns and {2 * (turns - 1) + 1} tool "
        f"calls each;\nscripted model, no added latency, no concurrency limit, OMOI_AGENT_HOST="
        f"{AgentSettings().host}"
    )
    for col in ("path", "wall s", "tool calls/s", "ready -> 1st request p50 ms", "p99 ms", "RSS/agent MB"):
        table.add_column(col, justify="left" if col == "path" else "right")
    rows = [("plain Ray actors + SDK, tools not executed", plain)]
    if off is not None:
        rows.append(("omoi agents, OMOI_SUPERVISION=off", off))
    rows.append(("omoi agents (sandbox tools, events, leases, budget, guardian)", ours))
    for name, (wall, latency, calls, rss) in rows:
        ordered = sorted(latency)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        table.add_row(
            name,
            f"{wall:.2f}",
            f"{calls / wall:,.0f}",
            f"{statistics.median(ordered) * 1e3:.0f}",
            f"{p99 * 1e3:.0f}",
            f"{statistics.mean(rss):.0f}",
        )
    table.caption = (
        f"ratio omoi/plain: wall {ours[0] / plain[0]:.2f}x, "
        f"tool calls/s {ours[2] / ours[0] / (plain[2] / plain[0]):.2f}x; "
        "latency is from a task's task.ready to its first request at the model server (plain: from the "
        "call that starts the conversation); RSS is each agent process's peak\n"
        "omoi's latency by step (medians): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in stages.items())
    )
    table.caption += (
        f"\nall omoi processes (driver and every actor): peak {whole['peak_mb']:,.0f} MB; bus lag, "
        f"publish -> a subscriber following every event: p50 {whole['lag_p50'] * 1e3:.0f} ms, p99 "
        f"{whole['lag_p99'] * 1e3:.0f} ms over {whole['events']:,.0f} events, {whole['missed']:.0f} missed"
    )
    if off is not None:
        table.caption += (
            f"\nsupervision on/off: tool calls/s {ours[2] / ours[0] / (off[2] / off[0]):.2f}x, "
            f"RSS/agent (its share of the supervisor's process included) "
            f"{statistics.mean(ours[3]) / statistics.mean(off[3]):.2f}x; "
            f"{interventions} guardian interventions in the run with supervision on"
        )
    return table
