"""Supervision in real runs on the shared local Ray cluster: the guardian actor next to agent
actors, real worktrees, the real SDK against the scripted model server, the `omoi` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import ray

from omoi import api
from omoi.cluster.connect import NAMESPACE
from omoi.runtime.run.plan import parse_plan
from tests.agents import call, env
from tests.conftest import RepoFactory, run_git
from tests.helpers import gate_cmd, has, of, omoi, wait_for_events, wait_until

pytestmark = pytest.mark.ray

TAG = "[omoi guardian]"
FAIL = {"tools": [call("run", command="python -c 'import no_such_jwt_module'")]}
FINISH = {"tools": [call("finish", status="complete", summary="done")]}


def _plan(*tasks: dict[str, Any]) -> Any:
    return parse_plan(json.dumps({"tasks": list(tasks)}))


def test_an_agent_that_ignores_two_steers_is_restarted_and_its_next_attempt_is_told_why(
    ray_address: str, make_repo: RepoFactory, model_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMOI_GUARDIAN_COOLDOWN", "0")  # each rung as soon as its signals are back
    server = model_server(
        {
            "tasks": {
                "stuck/1/worker": {"*": [FAIL] * 9 + [FINISH]},
                "stuck/2/worker": {
                    "*": [{"tools": [call("write_file", path="auth.py", content="TOKEN = 'x'\n")]}, FINISH]
                },
            }
        }
    )
    repo = make_repo({"README.md": "demo\n"})
    plan = _plan({"id": "stuck", "agent": {"prompt": "add JWT auth"}, "retries": 0})
    finished = api.exec_plan(plan, repo, run_id="steered", sandbox="local", agents=env(server))
    assert finished.status == "succeeded", finished.error
    log = api.events("steered", repo)
    steps = [(e.action, e.attempt, e.turn) for e in of(log, "guardian.intervened")]  # type: ignore[attr-defined]
    assert steps == [("steer", 1, 3), ("steer", 1, 6), ("restart", 1, 9)]
    first = [r.last_user_text for r in server.requests_for("stuck") if r.agent == "stuck/1/worker"]
    assert len(first) == 9, "the attempt being restarted made no tenth call"
    assert [i for i, text in enumerate(first) if TAG in text] == [3, 6]
    (retry,) = of(log, "task.retrying", "stuck")
    assert retry.reason.startswith("restarted: by the guardian: one call failed 3 times")  # type: ignore[attr-defined]
    assert not retry.counts_as_failure  # type: ignore[attr-defined]
    second = [r.last_user_text for r in server.requests_for("stuck") if r.agent == "stuck/2/worker"]
    assert f"{TAG} This is a new attempt" in second[0]
    delivered = [(e.attempt, e.turn) for e in of(log, "guardian.delivered")]  # type: ignore[attr-defined]
    assert delivered == [(1, 4), (1, 7), (2, 1)]
    assert "auth.py" in run_git(repo, "ls-tree", "--name-only", "omoi/steered/_merged")


def test_omoi_pause_holds_an_agent_before_its_model_call_until_omoi_resume(
    ray_address: str, make_repo: RepoFactory, model_server: Any, tmp_path: Path
) -> None:
    server = model_server({"tasks": {"a": {"worker": [FINISH]}}})
    repo = make_repo()
    gate = tmp_path / "gate"
    plan = _plan(
        {"id": "first", "run": gate_cmd(gate, "true")},
        {"id": "a", "deps": ["first"], "agent": {"prompt": "do a"}},
    )
    with api.start(plan, repo, run_id="held", sandbox="local", agents=env(server)) as handle:
        paused = omoi("pause", "held", "a", "--repo", str(repo))
        assert paused.returncode == 0, paused.stderr
        again = omoi("pause", "held", "a", "--repo", str(repo))
        assert again.returncode == 2
        assert "already paused" in again.stderr
        gate.touch()
        wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("agent.started", "a"))
        guardian = ray.get_actor("omoi/held/supervisor", namespace=NAMESPACE)
        wait_until(lambda: ray.get(guardian.held.remote()) == [("a", 1)], "the agent is held")
        assert server.requests_for("a") == []
        resumed = omoi("resume", "held", "a", "--repo", str(repo))
        assert resumed.returncode == 0, resumed.stderr
        finished = handle.wait(timeout=120)
    assert finished.status == "succeeded", finished.error
    assert len(server.requests_for("a")) == 1
    unknown = omoi("pause", "held", "nope", "--repo", str(repo))
    assert unknown.returncode == 2
    assert "no task 'nope'" in unknown.stderr


def test_a_blocking_discovery_spawns_one_task_its_reporter_waits_for_it_then_finishes(
    ray_address: str, make_repo: RepoFactory, model_server: Any
) -> None:
    found = {
        "type": "missing_requirement",
        "title": "No users table in the schema",
        "description": "logins need a users table with a password hash column in schema.sql",
        "evidence": "schema.sql has only a sessions table",
        "blocks_current": True,
    }
    again = {**found, "title": "Schema has no table for users", "blocks_current": False}
    server = model_server(
        {
            "tasks": {
                "a/1/worker": {"*": [{"tools": [call("report_discovery", **found)]}, FINISH]},
                "a/2/worker": {"*": [{"tools": [call("read_file", path="schema.sql")]}, FINISH]},
                "disc-1": {
                    "worker": [{"tools": [call("write_file", path="schema.sql", content="users\n")]}, FINISH]
                },
                # b reports the same thing once disc-1 exists (its agent has asked the model)
                "b": {
                    "worker": [{"tools": [call("report_discovery", **again)], "after": ["disc-1"]}, FINISH]
                },
            }
        }
    )
    repo = make_repo({"schema.sql": "sessions\n"})
    plan = _plan(
        {"id": "a", "agent": {"prompt": "add logins"}}, {"id": "b", "agent": {"prompt": "add logout"}}
    )
    finished = api.exec_plan(plan, repo, run_id="found", sandbox="local", agents=env(server))
    assert finished.status == "succeeded", finished.error
    log = api.events("found", repo)
    (spawned,) = of(log, "discovery.task_spawned")
    assert (spawned.task_id, spawned.spec.id, spawned.blocks) == ("a", "disc-1", True)  # type: ignore[attr-defined]
    (rejected,) = of(log, "discovery.rejected")
    assert (rejected.task_id, rejected.duplicate_of) == ("b", "disc-1")  # type: ignore[attr-defined]
    # a's first attempt made no call after its report; its second read the merged schema
    assert len([r for r in server.requests_for("a") if r.agent == "a/1/worker"]) == 1
    read = [e.result for e in of(log, "agent.tool_called", "a") if e.attempt == 2]  # type: ignore[attr-defined]
    assert read[0] == "users\n"
    merged_at = next(e.seq or 0 for e in of(log, "merge.succeeded", "disc-1"))
    a_started = [e.seq or 0 for e in of(log, "task.started", "a")]
    assert a_started[-1] > merged_at, "a went on only once disc-1 was merged"


def test_at_a_human_gate_a_blocking_discovery_waits_for_omoi_approve_and_its_reporter_with_it(
    ray_address: str, make_repo: RepoFactory, model_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMOI_DISCOVERY_GATE", "human")
    found = {
        "type": "bug",
        "title": "Login accepts an empty password",
        "description": "auth.check returns True for an empty password string",
        "blocks_current": True,
    }
    server = model_server(
        {
            "tasks": {
                "a/1/worker": {"*": [{"tools": [call("report_discovery", **found)]}, FINISH]},
                "a/2/worker": {"*": [FINISH]},
                "disc-1": {"worker": [FINISH]},
            }
        }
    )
    repo = make_repo()
    plan = _plan({"id": "a", "agent": {"prompt": "add logins"}})
    with api.start(plan, repo, run_id="gated", sandbox="local", agents=env(server)) as handle:
        wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("discovery.awaiting", "a"))
        (waits,) = of(api.events("gated", repo), "discovery.awaiting")
        seq = str(waits.discovery)  # type: ignore[attr-defined]
        neither = omoi("approve", "gated", "--repo", str(repo))
        assert neither.returncode == 2
        assert "--phase PHASE (a spec gate) or --discovery SEQ" in neither.stderr
        wrong = omoi("approve", "gated", "--discovery", "999", "--repo", str(repo))
        assert wrong.returncode == 2
        assert f"no discovery 999 waiting for a decision; waiting now: {seq}" in wrong.stderr
        assert server.requests_for("disc-1") == []
        assert len(server.requests_for("a")) == 1  # the reporter waits with its discovery
        approved = omoi("approve", "gated", "--discovery", seq, "--repo", str(repo))
        assert approved.returncode == 0, approved.stderr
        finished = handle.wait(timeout=120)
    assert finished.status == "succeeded", finished.error
    log = api.events("gated", repo)
    (decided,) = of(log, "discovery.decided")
    assert (decided.decision, decided.by) == ("approve", "human")  # type: ignore[attr-defined]
    (spawned,) = of(log, "discovery.task_spawned")
    assert spawned.seq > decided.seq  # type: ignore[operator]
    assert [e.attempt for e in of(log, "task.started", "a")] == [1, 2]  # type: ignore[attr-defined]


def test_two_agents_changing_the_same_file_are_ordered_by_the_conductor_before_either_merges(
    ray_address: str,
    make_repo: RepoFactory,
    model_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMOI_RADAR_INTERVAL", "0.5")
    gate = tmp_path / "gate"  # both agents wait in a command until the conductor has acted
    wait = {"tools": [call("run", command=gate_cmd(gate, "true"))]}
    server = model_server(
        {
            "tasks": {
                "a": {
                    "worker": [
                        {"tools": [call("write_file", path="app.py", content="A = 1\n")]},
                        wait,
                        FINISH,
                    ]
                },
                "b/1/worker": {
                    "*": [{"tools": [call("write_file", path="app.py", content="B = 2\n")]}, wait, FINISH]
                },
                "b/2/worker": {
                    "*": [
                        {"tools": [call("read_file", path="app.py")]},
                        {"tools": [call("write_file", path="app.py", content="A = 1\nB = 2\n")]},
                        FINISH,
                    ]
                },
            }
        }
    )
    repo = make_repo()
    plan = _plan({"id": "a", "agent": {"prompt": "add A"}}, {"id": "b", "agent": {"prompt": "add B"}})
    with api.start(plan, repo, run_id="ordered", sandbox="local", agents=env(server)) as handle:
        seen = wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("conductor.acted"))
        gate.touch()
        finished = handle.wait(timeout=120)
    assert finished.status == "succeeded", finished.error
    log = api.events("ordered", repo)
    (acted,) = of(log, "conductor.acted")
    assert (acted.task_id, acted.kept, acted.files) == ("b", "a", ("app.py",))  # type: ignore[attr-defined]
    assert not [e for e in seen if e.kind == "merge.succeeded"], "ordered before either merged"
    assert len([r for r in server.requests_for("b") if r.agent == "b/1/worker"]) == 2, (
        "b made no call once held"
    )
    read = [e.result for e in of(log, "agent.tool_called", "b") if e.attempt == 2]  # type: ignore[attr-defined]
    assert read[0] == "A = 1\n", "b started again from the head that holds a's work"
    assert run_git(repo, "show", "omoi/ordered/_merged:app.py") == "A = 1\nB = 2\n"
    assert not of(log, "merge.conflicted"), "no conflict reached the merge queue"
