"""kill -9 of every role of a run, at seeded random moments, under real Ray: the run completes, each
task succeeds exactly once, seq is gap-free, and nothing is left (no container, no task tree, no
actor of the run).

A moment is "when the run's log holds k events", k drawn per trial, so a kill lands in the middle of
whatever the run was doing then (preparing, running, committing, integrating), never on a timer."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from omoi import api
from omoi.cluster.agents import AgentEnv
from omoi.cluster.connect import NAMESPACE, run_actor_names
from omoi.cluster.runner import RunHandle
from omoi.runtime.config import AgentSettings, model_settings
from omoi.runtime.log.events import Event
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.run.plan import parse_plan
from omoi.runtime.sandbox.docker import engine_or_none
from tests.agents import call
from tests.conftest import RepoFactory, run_git

pytestmark = pytest.mark.ray

TASKS = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c"], "f": ["d", "e"]}


def command_plan() -> Any:
    work = "sleep 1; echo {t} > {t}.txt"  # long enough for a kill to land while tasks run
    tasks = [{"id": t, "deps": deps, "run": work.format(t=t), "retries": 0} for t, deps in TASKS.items()]
    return parse_plan(json.dumps({"tasks": tasks}))


def agent_plan() -> Any:
    tasks = [
        {"id": t, "deps": deps, "agent": {"prompt": f"do {t}"}, "retries": 0} for t, deps in TASKS.items()
    ]
    return parse_plan(json.dumps({"tasks": tasks}))


def agent_script() -> dict[str, Any]:
    def turns(t: str) -> list[dict[str, Any]]:
        return [
            {"tools": [call("list_files")]},
            {"tools": [call("write_file", path=f"{t}.txt", content=f"{t}\n")]},
            {"tools": [call("read_file", path=f"{t}.txt")]},
            {"tools": [call("finish", status="complete", summary=f"wrote {t}")]},
        ]

    # A retried attempt starts its conversation again: every turn of the script may be asked again.
    return {"tasks": {t: {"worker": turns(t) * 4} for t in TASKS}}


def pid_of(handle: Any) -> int:
    pid: int = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=30)
    return pid


def kill_9(name: str) -> None:
    """SIGKILL the process of the named actor (not ray.kill: the process dies as in a crash)."""
    os.kill(pid_of(ray.get_actor(name, namespace=NAMESPACE)), signal.SIGKILL)


def running_slot(events: list[Event], role: str) -> str | None:
    """The name of the slot (sandbox or agent) of an attempt running now, if any."""
    started = {(e.task_id, e.attempt): e.sandbox for e in events if e.kind == "task.started"}  # type: ignore[attr-defined]
    for e in events:
        if e.kind in ("task.succeeded", "task.failed", "task.cancelled", "task.retrying"):
            started.pop((e.task_id, e.attempt if e.kind != "task.retrying" else e.attempt - 1), None)  # type: ignore[attr-defined]
    if not started:
        return None
    slot = sorted(started.values())[0]
    return slot if role == "sandbox" else slot.replace("/sandbox/", "/agent/")


def kill_target(run_id: str, role: str, events: list[Event]) -> str | None:
    if role in ("sandbox", "agent"):
        return running_slot(events, role)
    if role == "concurrency":
        return "omoi/cluster/concurrency"
    return f"omoi/{run_id}/{role}"


def trial(handle: RunHandle, role: str, seed: int, total: int) -> int:
    """Kill `role` once the log holds k events (k drawn from `seed`), reading the log one event at
    a time; returns k. Waits on events, bounded by a deadline."""
    k = random.Random(seed).randint(4, total)
    events: list[Event] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        events += ray.get(handle.bus.read.remote(events[-1].seq if events else 0, None, 1, 1.0))
        assert not any(e.kind == "run.finished" for e in events), (k, [(e.seq, e.kind) for e in events])
        if len(events) >= k and (target := kill_target(handle.run_id, role, events)) is not None:
            try:
                kill_9(target)
            except ValueError:
                continue  # the slot was just replaced: try at the next event
            return k
    raise AssertionError(f"the run did not reach event {k}")


def check_complete(run_id: str, repo: Path, finished: Any) -> None:
    assert finished.status == "succeeded", finished.error
    log = api.events(run_id, repo)
    assert [e.seq for e in log] == list(range(1, len(log) + 1)), "seq has a gap"
    succeeded = Counter(e.task_id for e in log if e.kind == "task.succeeded")  # type: ignore[attr-defined]
    assert succeeded == dict.fromkeys(TASKS, 1), succeeded
    failed = [e for e in log if e.kind == "task.failed"]
    assert failed == [], [(e.task_id, e.error) for e in failed]  # type: ignore[attr-defined]
    merged = set(run_git(repo, "ls-tree", "-r", "--name-only", f"omoi/{run_id}/_merged").split())
    assert {f"{t}.txt" for t in TASKS} <= merged


def check_nothing_left(run_id: str, repo: Path) -> None:
    assert run_actor_names(run_id) == []
    trees = repo / ".git" / "omoi" / "runs" / run_id / "worktrees"
    assert not trees.exists() or list(trees.iterdir()) == [], list(trees.iterdir())
    client = engine_or_none()
    if client is not None:
        assert client.containers.list(all=True, filters={"label": f"omoi.run={run_id}"}) == []


KILL_TABLE: Counter[tuple[str, str]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def print_kill_table() -> Iterator[None]:
    yield
    if KILL_TABLE:
        print("\nkill table: role | trials | completed")
        for role in sorted({r for r, _ in KILL_TABLE}):
            print(f"  {role} | {KILL_TABLE[(role, 'trials')]} | {KILL_TABLE[(role, 'completed')]}")


def run_trial(
    start: Callable[[str], RunHandle], run_id: str, repo: Path, role: str, label: str, seed: int, total: int
) -> None:
    handle = start(run_id)
    try:
        moment = trial(handle, role, seed, total)
        finished = handle.wait(timeout=180)
    finally:
        handle.shutdown()
    KILL_TABLE[(label, "trials")] += 1
    check_complete(run_id, repo, finished)
    check_nothing_left(run_id, repo)
    KILL_TABLE[(label, "completed")] += 1
    print(f"{label}: killed at event {moment}")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("role", ["graph", "bus", "integrator", "sandbox"])
@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_command_runs_survive_kill_9(
    ray_address: str,
    make_repo: RepoFactory,
    request: pytest.FixtureRequest,
    role: str,
    seed: int,
    sandbox: str,
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_image")
    repo = make_repo()
    run_id = f"k-{role}-{sandbox}-{seed}"

    def start(rid: str) -> RunHandle:
        return api.start(command_plan(), repo, run_id=rid, sandbox=sandbox, max_parallel=3)

    run_trial(start, run_id, repo, role, f"{role} ({sandbox})", seed * 7 + len(role), 24)


@pytest.fixture
def scripted() -> Iterator[ScriptedModelServer]:
    server = ScriptedModelServer(parse_script(agent_script())).start()
    yield server
    server.stop()


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("role", ["agent", "sandbox", "concurrency", "supervisor"])
def test_agent_runs_survive_kill_9(
    ray_address: str, make_repo: RepoFactory, scripted: ScriptedModelServer, role: str, seed: int
) -> None:
    repo = make_repo()
    run_id = f"ka-{role}-{seed}"
    # An agent process of its own exists only with OMOI_AGENT_HOST=own; by default the conversation
    # is in its slot's process, which the "sandbox" role kills.
    host = AgentSettings(host="own") if role == "agent" else AgentSettings()
    env = AgentEnv(model_settings(base_url=scripted.url, backoff=0.01, backoff_cap=0.05), host)

    def start(rid: str) -> RunHandle:
        return api.start(agent_plan(), repo, run_id=rid, sandbox="local", max_parallel=3, agents=env)

    run_trial(start, run_id, repo, role, f"{role} (agents)", seed * 11 + len(role), 60)
