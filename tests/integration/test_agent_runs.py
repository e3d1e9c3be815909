"""Runs of agent tasks on a real local Ray cluster: agent actors, the concurrency actor, the budget
actor, real worktrees, and the real SDK over HTTP to the scripted model server."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import ray

from omoi import api
from omoi.cluster.connect import NAMESPACE
from omoi.runtime.config import AgentSettings
from omoi.runtime.log.events import Event
from omoi.runtime.run.plan import Budget, parse_plan
from tests.agents import WORKER_MODEL, call, env
from tests.conftest import RepoFactory, run_git
from tests.helpers import gate_cmd, has, of, wait_for_events, wait_until

pytestmark = pytest.mark.ray

FINISH = {"tools": [call("finish", status="complete", summary="done")]}


def agent_task(
    task: str, deps: tuple[str, ...] = (), acceptance: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    return {
        "id": task,
        "deps": list(deps),
        "agent": {"prompt": f"do {task}"},
        "acceptance": list(acceptance),
        **extra,
    }


def _plan(*tasks: dict[str, Any]) -> Any:
    return parse_plan(json.dumps({"tasks": list(tasks)}))


@pytest.mark.parametrize("host", ["own", "slot"])  # OMOI_AGENT_HOST: an agent process, or the slot's
def test_agent_tasks_run_in_parallel_and_their_work_merges(
    ray_address: str, make_repo: RepoFactory, model_server: Any, host: str
) -> None:
    repo = make_repo({"README.md": "demo\n"})
    # a and b each answer their first turn only once the other's agent has asked: they overlap.
    server = model_server(
        {
            "tasks": {
                "a": {
                    "worker": [
                        {"tools": [call("write_file", path="a.txt", content="A\n")], "after": ["b"]},
                        FINISH,
                    ]
                },
                "b": {
                    "worker": [
                        {"tools": [call("write_file", path="b.txt", content="B\n")], "after": ["a"]},
                        FINISH,
                    ]
                },
                "c": {
                    "worker": [
                        {"tools": [call("read_file", path="a.txt"), call("read_file", path="b.txt")]},
                        {"tools": [call("write_file", path="c.txt", content="A+B\n")]},
                        FINISH,
                    ]
                },
            }
        }
    )
    plan = _plan(
        agent_task("a"),
        agent_task("b"),
        agent_task("c", ("a", "b"), ("test -f a.txt && test -f b.txt && grep -q A+B c.txt",)),
    )
    agents = dataclasses.replace(env(server), agents=AgentSettings(host=host))
    finished = api.exec_plan(plan, repo, run_id="agents", sandbox="local", agents=agents)
    assert finished.status == "succeeded", finished.error
    seen = api.events("agents", repo)
    actors = {e.actor for e in of(seen, "agent.started")}  # type: ignore[attr-defined]
    assert {a.split("/")[2] for a in actors} == {"agent" if host == "own" else "sandbox"}
    files = set(run_git(repo, "ls-tree", "-r", "--name-only", "omoi/agents/_merged").split())
    assert {"a.txt", "b.txt", "c.txt"} <= files
    c_reads = [e.result for e in of(seen, "agent.tool_called", "c") if e.tool == "read_file"]  # type: ignore[attr-defined]
    assert c_reads == ["A\n", "B\n"]  # c's sandbox starts from a and b merged
    assert [e.passed for e in of(seen, "agent.acceptance", "c")] == [True]  # type: ignore[attr-defined]
    turns = of(seen, "agent.turn")
    assert len(turns) == 7
    assert sum(t.cost_usd for t in turns) > 0  # type: ignore[attr-defined]
    assert {r.model for r in server.requests} == {WORKER_MODEL}


def test_with_a_limit_of_two_the_server_never_sees_more_than_two_requests_in_flight(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    slow = {"tools": [call("list_files")], "delay": 0.2}
    server = model_server({"tasks": {f"t{i}": {"worker": [slow, slow, FINISH]} for i in range(5)}})
    plan = _plan(*[agent_task(f"t{i}") for i in range(5)])
    finished = api.exec_plan(
        plan,
        make_repo(),
        run_id="limit2",
        sandbox="local",
        max_parallel=5,
        agents=env(server, limits={WORKER_MODEL: 2}),
    )
    assert finished.status == "succeeded", finished.error
    assert len(server.requests) == 15
    assert 1 <= server.max_in_flight[WORKER_MODEL] <= 2


@pytest.mark.parametrize("host", ["own", "slot"])  # kill the agent's process, or its slot's (with it)
def test_a_killed_agents_concurrency_slot_comes_back(
    ray_address: str, make_repo: RepoFactory, model_server: Any, tmp_path: Path, host: str
) -> None:
    quick = "claude-haiku-4-5"
    server = model_server(
        {
            "tasks": {
                "stuck": {"worker": [{"text": "thinking hard", "delay": 60}]},
                "next": {"worker": [FINISH]},
            }
        }
    )
    gate = tmp_path / "gate"  # `next` starts only once `stuck` holds the only slot: no race for it
    stuck = {**agent_task("stuck"), "agent": {"prompt": "x", "category": "quick"}}
    opener = {"id": "opener", "run": gate_cmd(gate, "true")}
    nxt = {**agent_task("next", ("opener",)), "agent": {"prompt": "y", "category": "quick"}}
    with api.start(
        _plan(stuck, opener, nxt),
        make_repo(),
        run_id="killed",
        sandbox="local",
        max_parallel=3,
        agents=dataclasses.replace(env(server, limits={quick: 1}), agents=AgentSettings(host=host)),
    ) as handle:
        # `next` waits behind the gate, so the one request in flight is the stuck agent's
        wait_until(lambda: server.in_flight.get(quick, 0) == 1, "the stuck agent holds the only slot")
        gate.touch()
        wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("agent.started", "next"))
        assert server.requests_for("next") == []
        stuck_actor = next(
            e.actor
            for e in api.events("killed", handle.paths.repo.path, kind="agent.started")  # type: ignore[attr-defined]
            if e.task_id == "stuck"
        )  # type: ignore[attr-defined]
        # the slot's name, started again for the retry, must not keep the dead one's lease alive
        ray.kill(ray.get_actor(stuck_actor, namespace=NAMESPACE))
        # the slot comes back: `next` runs; the dead agent's attempt is an interruption, retried
        wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("task.succeeded", "next"))
        handle.cancel(reason="the stuck agent would wait again")
        finished = handle.wait(timeout=60)
    events = api.events("killed", handle.paths.repo.path)
    assert [e.task_id for e in of(events, "task.succeeded")] == ["opener", "next"]  # type: ignore[attr-defined]
    (retried,) = [e for e in of(events, "task.retrying", "stuck") if e.attempt == 2]  # type: ignore[attr-defined]
    assert ("died" if host == "own" else "lost") in retried.reason  # type: ignore[attr-defined]
    assert not retried.counts_as_failure  # type: ignore[attr-defined]
    assert of(events, "task.failed", "stuck") == [], "a dead agent's process is not the task's failure"
    assert finished.status == "cancelled"


@ray.remote(num_cpus=0)
class _Named:
    def actor_id(self) -> str:
        return ray.get_runtime_context().get_actor_id()


def test_a_lease_holder_is_dead_once_its_name_belongs_to_another_actor(ray_address: str) -> None:
    """A slot started again under its name (the dead one's retry) must not keep the dead one's
    model-call leases: its holder names the incarnation, `name@actor-id`."""
    import asyncio

    from omoi.cluster.agents import RayLiveness

    name = "omoi/liveness/sandbox/0"
    first = _Named.options(name=name, namespace=NAMESPACE).remote()  # type: ignore[attr-defined]
    old = ray.get(first.actor_id.remote())
    ray.kill(first)
    wait_until(
        lambda: name not in {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}, "gone"
    )
    second = _Named.options(name=name, namespace=NAMESPACE).remote()  # type: ignore[attr-defined]
    new = ray.get(second.actor_id.remote())
    alive = RayLiveness().alive
    assert asyncio.run(alive(f"{name}@{new}"))
    assert asyncio.run(alive(name))
    assert not asyncio.run(alive(f"{name}@{old}")), "the name lives on, its old incarnation does not"
    ray.kill(second)
    wait_until(lambda: not asyncio.run(alive(f"{name}@{new}")), "a killed holder is dead")


def test_every_task_succeeds_at_a_twenty_percent_fault_rate(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    turns = [{"tools": [call("list_files")]}, {"tools": [call("read_file", path="README.md")]}, FINISH]
    faults = {"rate_429": 0.1, "rate_529": 0.05, "rate_500": 0.05, "retry_after": 0.01, "seed": 3}
    server = model_server({"tasks": {f"t{i}": {"worker": turns} for i in range(10)}, "faults": faults})
    seen: list[Event] = []
    finished = api.exec_plan(
        _plan(*[agent_task(f"t{i}") for i in range(10)]),
        make_repo(),
        run_id="faults",
        sandbox="local",
        max_parallel=4,
        agents=env(server),
        on_events=seen.extend,
    )
    assert finished.status == "succeeded", finished.error
    assert len(of(seen, "task.succeeded")) == 10
    injected = [r.status for r in server.requests if r.status != 200]
    assert injected  # the faults happened, and were survived
    assert len(of(seen, "model.retried")) == len(injected)
    assert of(seen, "task.retrying") == []  # survived inside the model client, not by re-running tasks


def test_a_persistent_model_failure_fails_only_that_task(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    server = model_server(
        {
            "tasks": {
                "doomed": {"worker": [{"text": "x", "faults": [{"status": 500, "times": 99}]}]},
                "fine": {"worker": [{"tools": [call("write_file", path="f.txt", content="kept\n")]}, FINISH]},
            }
        }
    )
    repo = make_repo()
    finished = api.exec_plan(
        _plan(agent_task("doomed"), agent_task("fine")),
        repo,
        run_id="doomed",
        sandbox="local",
        agents=env(server, max_tries=3),
    )
    assert finished.status == "failed"
    events = api.events("doomed", repo)
    (failed,) = of(events, "task.failed", "doomed")
    assert "HTTP 500" in failed.error
    assert "after 3 tries" in failed.error
    assert [e.task_id for e in of(events, "task.succeeded")] == ["fine"]  # type: ignore[attr-defined]
    assert run_git(repo, "show", "omoi/doomed/fine:f.txt") == "kept\n"  # committed work is kept


def test_need_input_waits_for_an_answer_injected_into_the_live_run(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    server = model_server(
        {
            "tasks": {
                "ask": {
                    "worker": [
                        {"text": "[NEED INPUT: staging or production?]"},
                        {"tools": [call("write_file", path="target.txt", content="staging\n")]},
                        FINISH,
                    ]
                }
            }
        }
    )
    repo = make_repo()
    with api.start(
        _plan(agent_task("ask")), repo, run_id="ask", sandbox="local", agents=env(server)
    ) as handle:
        (q,) = of(
            wait_for_events(lambda: handle.events(timeout=1.0), has("agent.needs_input", "ask")),
            "agent.needs_input",
        )
        assert q.question == "staging or production?"  # type: ignore[attr-defined]
        assert len(server.requests) == 1
        handle.answer("ask", "staging")
        finished = handle.wait(timeout=60)
    assert finished.status == "succeeded", finished.error
    assert "staging" in server.requests[1].last_user_text
    assert run_git(repo, "show", "omoi/ask/_merged:target.txt") == "staging\n"


def test_a_spent_budget_pauses_the_run_until_it_is_raised(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    server = model_server({"tasks": {"t": {"worker": [{"tools": [call("list_files")]}, FINISH]}}})
    with api.start(
        _plan(agent_task("t")),
        make_repo(),
        run_id="budget",
        sandbox="local",
        agents=env(server),
        budget=Budget(usd=1e-6),
    ) as handle:
        seen = wait_for_events(lambda: handle.events(timeout=1.0), has("budget.exhausted"))
        (spent,) = of(seen, "budget.exhausted")
        assert spent.scope == "run"  # type: ignore[attr-defined]
        assert len(server.requests) == 1  # the second turn waits
        handle.raise_budget(usd=1.0)
        finished = handle.wait(timeout=60)
    assert finished.status == "succeeded", finished.error
    assert len(server.requests) == 2


def test_omoi_answer_from_another_process_reaches_the_waiting_agent(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    server = model_server(
        {"tasks": {"ask": {"worker": [{"text": "[NEED INPUT: which colour?]"}, {"text": "[TASK COMPLETE]"}]}}}
    )
    repo = make_repo()
    cli = [sys.executable, "-m", "omoi.cli"]
    with api.start(
        _plan(agent_task("ask")), repo, run_id="cli-ask", sandbox="local", agents=env(server)
    ) as handle:
        wait_for_events(lambda: handle.events(timeout=1.0), has("agent.needs_input", "ask"))
        wrong = subprocess.run(
            [*cli, "answer", "cli-ask", "nobody", "blue", "--repo", str(repo)], capture_output=True, text=True
        )
        assert wrong.returncode == 2
        assert "task 'nobody' of run 'cli-ask' has no open question; tasks that asked: ask" in wrong.stderr
        empty = subprocess.run(
            [*cli, "raise-budget", "cli-ask", "--repo", str(repo)], capture_output=True, text=True
        )
        assert empty.returncode == 2
        assert "give a positive amount" in empty.stderr
        done = subprocess.run(
            [*cli, "answer", "cli-ask", "ask", "blue", "--repo", str(repo)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        finished = handle.wait(timeout=60)
    assert finished.status == "succeeded", finished.error
    assert "blue" in server.requests[1].last_user_text
    again = subprocess.run(
        [*cli, "answer", "cli-ask", "ask", "red", "--repo", str(repo)], capture_output=True, text=True
    )
    assert again.returncode == 2
    assert "task 'ask' of run 'cli-ask' has no open question" in again.stderr
