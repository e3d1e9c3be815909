"""`omoi bench api`: events injected over HTTP (each durable in the log before its answer) and the
live stream's lag, next to `omoi.inject_kind` from Python in the same run, on the same log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from rich.table import Table

from omoi import api
from omoi.bench.common import percentiles, scratch_repo
from omoi.http.serve import Background
from omoi.runtime.log.events import TaskStarted
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.plan import parse_plan

TOKEN = "bench-token-0123456789abcdef"
PLAN = "tasks:\n  - {id: a, agent: {prompt: 'bench'}}\n"


def _run(repo: Path) -> str:
    paths, first = plan_new_run(parse_plan(PLAN), repo, RunOptions(run_id="apibench", sandbox="local"))
    paths.run_dir.mkdir(parents=True)
    log = open_log(paths, create=True)
    log.append([*first, TaskStarted(run_id="apibench", task_id="a", attempt=1, sandbox="s")])
    log.close()
    return "apibench"


def _python(repo: Path, run: str, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        api.inject_kind(run, repo, "agent.message", {"task_id": "a", "text": f"py {i}"})
    return n / (time.perf_counter() - start)


def _http(repo: Path, run: str, n: int) -> tuple[float, list[float]]:
    """Events/s over HTTP, and for each, POST answered -> the stream delivered it (ms)."""
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    with Background(repo, TOKEN, poll=0.01) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        after = api.events(run, repo)[-1].seq or 0
        ready = threading.Event()

        def listen() -> None:
            with (
                httpx.Client(base_url=server.url, headers=headers, timeout=60) as c,
                c.stream(
                    "GET", f"/v1/runs/{run}/events/stream", params={"after": after, "kind": "agent.message"}
                ) as r,
            ):
                ready.set()
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        got[json.loads(line[6:])["seq"]] = time.perf_counter()
                        if len(got) >= n:
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        ready.wait(30)
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            start = time.perf_counter()
            for i in range(n):
                r = client.post(f"/v1/runs/{run}/tasks/a/messages", json={"text": f"http {i}"})
                sent[r.json()["seq"]] = time.perf_counter()
            rate = n / (time.perf_counter() - start)
        listener.join(60)
    lags = [(got[s] - t) * 1000 for s, t in sent.items() if s in got]
    return rate, lags


def api_bench(n: int = 500) -> Table:
    with scratch_repo({"README.md": "bench\n"}) as repo:
        run = _run(repo)
        py = _python(repo, run, n)
        http, lags = _http(repo, run, n)
    p50, p95 = percentiles(lags) if lags else (float("nan"), float("nan"))
    p99 = sorted(lags)[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))] if lags else float("nan")
    table = Table(
        title=f"omoi bench api: {n} messages injected, each durable (fsync) before its answer",
        caption=(
            f"ratio HTTP/Python: {http / py:.2f}x; stream lag (POST answered -> SSE delivered): "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms ({len(lags)} of {n} seen)"
        ),
    )
    for col in ("path", "events/s", "ratio"):
        table.add_column(col, justify="right" if col != "path" else "left")
    table.add_row("omoi.inject_kind from Python (baseline)", f"{py:.0f}", "1.00x")
    table.add_row("POST /v1/runs/{id}/tasks/{task}/messages", f"{http:.0f}", f"{http / py:.2f}x")
    return table
