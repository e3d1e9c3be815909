"""`omoi bench bus`: the durable bus's publish -> delivered against plain actor calls, in the same run."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from rich.table import Table

from omoi.cluster import deploy
from omoi.cluster.connect import connect, kill_run_actors
from omoi.cluster.handles import BusProxy
from omoi.runtime import names
from omoi.runtime.errors import InputError
from omoi.runtime.log.events import Event, TaskOutput
from omoi.runtime.log.store import Durability


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
        readers = [Reader.remote(names.actor(run_id, "bus")) for _ in range(subs)]
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


def autogen_rates(venv: Path, n: int, say: Callable[[str], None]) -> dict[int, float]:
    """AutoGen-core's in-process runtime on the same events, run by the Python of `venv` (created
    with autogen-core from the package index if it is not there: the two cannot share one
    environment, autogen-core pins a protobuf that breaks Ray's dashboard agent)."""
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"creating {venv} with autogen-core (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "autogen-core"], check=True)
    peer = Path(__file__).with_name("autogen_peer.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(
            [str(python), str(peer), str(n)], check=True, capture_output=True, text=True, env=env, timeout=600
        )
    except subprocess.CalledProcessError as exc:
        raise InputError(f"--autogen {venv}: the AutoGen side failed: {exc.stderr.strip()[-500:]}") from exc
    return {int(k): float(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def bus(
    *,
    n_events: int = 20_000,
    batch: int = 100,
    address: str | None = None,
    autogen: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Table:
    peer = autogen_rates(autogen, n_events, say) if autogen is not None else {}
    connect(address)
    table = Table(
        title=f"omoi bench bus: {n_events} events in batches of {batch}, publish -> every subscriber has it"
    )
    columns = ["path", "subscribers", "events/s", "ratio vs plain calls"]
    for col in columns + (["ratio vs AutoGen"] if peer else []):
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
        versus = [f"{rate / peer[subs]:.2f}x"] if peer else []
        table.add_row(name, str(subs), f"{rate:,.0f}", f"{rate / baseline[subs]:.2f}x", *versus)
    for subs, rate in sorted(peer.items()):
        table.add_row(
            "AutoGen-core SingleThreadedAgentRuntime (in-process, nothing stored, one publish per event)",
            str(subs), f"{rate:,.0f}", f"{rate / baseline[subs]:.2f}x", "1.00x",
        )  # fmt: skip
    return table
