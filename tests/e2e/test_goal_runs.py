"""From a goal to a merged branch, as a user drives it: `omoi run` and `omoi plan` as processes,
a human gate decided by `omoi reject` / `omoi approve` from other processes, the real SDK over HTTP
to the scripted model, on the shared local Ray cluster (and Docker sandboxes where CI has them)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from omoi import api
from omoi.cluster.agents import AgentEnv
from omoi.examples import DEMO_GOAL, demo_scripts, make_example_repo
from omoi.runtime.config import AgentSettings, model_settings
from omoi.runtime.log.events import Event, SpecGateWaiting
from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts
from tests.conftest import checkout_fingerprint, run_git
from tests.helpers import has, of, omoi, wait_for_events, wait_until

pytestmark = pytest.mark.ray


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(load_scripts(demo_scripts())) as server:
        yield server


def test_omoi_run_puts_the_spec_and_every_tasks_work_on_the_run_branch(
    ray_address: str, model: ScriptedModelServer, tmp_path: Path
) -> None:
    repo, _ = make_example_repo(tmp_path, "agents")
    before = checkout_fingerprint(repo)
    done = omoi(
        "run", DEMO_GOAL, "--repo", str(repo), "--run-id", "goal1", "--address", ray_address,
        env={"ANTHROPIC_BASE_URL": model.url, "OMOI_MODEL_BACKOFF": "0.01"},
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spec tasks           checks    sent back" in done.stdout  # the first task list had a bad dep
    merged = "omoi/goal1/_merged"
    files = run_git(repo, "ls-tree", "-r", "--name-only", merged).split()
    for doc in ("explore.json", "requirements.md", "design.md", "tasks.json", "tasks.md"):
        assert f".omoi/specs/goal1/{doc}" in files
    assert 'cmd == "histogram"' in run_git(repo, "show", f"{merged}:tools/wordstats.py")
    assert "wordstats.py longest" in run_git(repo, "show", f"{merged}:README.md")
    assert "tests/test_longest.py" in files
    assert not [f for f in files if f.endswith(".pyc")]  # running the tests left no bytecode behind
    assert checkout_fingerprint(repo) == before
    assert not (repo / ".omoi").exists()


def test_omoi_plan_prints_the_dag_and_runs_no_task(
    ray_address: str, model: ScriptedModelServer, tmp_path: Path
) -> None:
    repo, _ = make_example_repo(tmp_path, "agents")
    done = omoi(
        "plan", DEMO_GOAL, "--repo", str(repo), "--run-id", "plan1", "--address", ray_address,
        env={"ANTHROPIC_BASE_URL": model.url},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 tasks in 1 waves:" in done.stdout
    assert "wave 1: histogram, docs, longest-test" in done.stdout
    assert "critical path: histogram" in done.stdout
    assert "documents: .omoi/specs/plan1/ on branch omoi/plan1/_spec" in done.stdout
    assert not [e for e in api.events("plan1", repo) if e.kind == "task.started"]
    assert api.status("plan1", repo).finished.status == "succeeded"  # type: ignore[union-attr]
    assert "run these tasks: omoi run - --from plan1" in done.stdout
    empty = omoi("plan", "  ", "--repo", str(repo))
    assert empty.returncode == 2
    assert "the goal is empty" in empty.stderr
    # ... and run what was planned, later, from the spec's commit
    later = omoi(
        "run", "-", "--from", "plan1", "--repo", str(repo), "--run-id", "later1", "--address", ray_address,
        env={"ANTHROPIC_BASE_URL": model.url, "OMOI_MODEL_BACKOFF": "0.01"},
        timeout=600,
    )  # fmt: skip
    assert later.returncode == 0, later.stdout + later.stderr
    files = run_git(repo, "ls-tree", "-r", "--name-only", "omoi/later1/_merged").split()
    assert ".omoi/specs/plan1/tasks.json" in files
    assert "tests/test_longest.py" in files
    assert not [e for e in api.events("later1", repo) if e.kind.startswith("spec.")]  # no second spec
    not_planned = omoi("run", "-", "--from", "later1", "--repo", str(repo))
    assert not_planned.returncode == 2
    assert "is not a finished `omoi plan`" in not_planned.stderr


def test_with_a_human_gate_no_task_starts_before_approval_and_a_reject_reaches_the_next_prompt(
    ray_address: str, model: ScriptedModelServer, tmp_path: Path
) -> None:
    repo, _ = make_example_repo(tmp_path, "agents")
    agents = AgentEnv(model_settings(base_url=model.url, backoff=0.01, backoff_cap=0.05), AgentSettings())
    with api.start_goal(
        DEMO_GOAL, repo, gate="human", sandbox="local", address=ray_address, agents=agents, run_id="human1"
    ) as handle:
        seen: list[Event] = []

        def next_gate() -> SpecGateWaiting:
            gates = len(of(seen, "spec.gate_waiting"))
            seen.extend(
                wait_for_events(
                    lambda: handle.events(timeout=1.0, prefixes=None),
                    lambda evs: len(of(seen + evs, "spec.gate_waiting")) > gates,
                )
            )
            gate = of(seen, "spec.gate_waiting")[-1]
            assert isinstance(gate, SpecGateWaiting)
            assert not of(seen, "task.started")  # nothing runs while a phase waits for a person
            return gate

        assert next_gate().phase == "requirements"
        wrong = omoi("approve", "human1", "--phase", "design", "--repo", str(repo))
        assert wrong.returncode == 2
        assert "no design phase waiting for a decision; waiting now: requirements" in wrong.stderr
        rejected = omoi(
            "reject", "human1", "--phase", "requirements", "--reason", "say which file", "--repo", str(repo)
        )
        assert rejected.returncode == 0, rejected.stderr
        for phase, attempt in (("requirements", 2), ("design", 1), ("tasks", 1)):
            gate = next_gate()
            assert (gate.phase, gate.attempt) == (phase, attempt)
            approved = omoi("approve", "human1", "--phase", phase, "--repo", str(repo))
            assert approved.returncode == 0, approved.stderr
        finished = handle.wait()
    assert finished.status == "succeeded", finished.error
    log = api.events("human1", repo)
    last_approval = max(e.seq or 0 for e in of(log, "spec.gate_decided") if getattr(e, "by", "") == "human")
    assert min(e.seq or 0 for e in of(log, "task.started")) > last_approval
    assert "say which file" in model.requests_for("spec-requirements")[1].last_user_text
    assert has("task.succeeded", "histogram")(log)


def test_a_goal_run_whose_driver_died_mid_spec_resumes_without_redoing_finished_phases(
    ray_address: str, model: ScriptedModelServer, tmp_path: Path
) -> None:
    repo, _ = make_example_repo(tmp_path, "agents")
    agents = AgentEnv(model_settings(base_url=model.url, backoff=0.01, backoff_cap=0.05), AgentSettings())
    handle = api.start_goal(
        DEMO_GOAL, repo, gate="human", sandbox="local", address=ray_address, agents=agents, run_id="resume1"
    )
    wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), has("spec.gate_waiting"))
    handle.shutdown()  # the driver dies while the requirements wait for a person
    explored = len(model.requests_for("spec-explore"))
    api.decide_gate("resume1", repo, "requirements", "approve")  # decided while nothing runs
    finished: list[Event] = []

    def resume() -> None:
        finished.append(api.resume("resume1", repo, address=ray_address, agents=agents))  # type: ignore[arg-type]

    runner = threading.Thread(target=resume, daemon=True)
    runner.start()
    for phase in ("design", "tasks"):
        wait_until(
            lambda p=phase: any(e.phase == p for e in api.events("resume1", repo, kind="spec.gate_waiting")),  # type: ignore[attr-defined, misc]
            f"the {phase} gate opens after the resume",
        )
        api.decide_gate("resume1", repo, phase, "approve")
    runner.join(timeout=300)
    assert finished, "the resumed run did not finish"
    assert finished[0].status == "succeeded", finished[0]
    assert len(model.requests_for("spec-explore")) == explored  # explore was not done again
    assert len(model.requests_for("spec-requirements")) == 1  # nor the approved requirements
    assert has("task.succeeded", "docs")(api.events("resume1", repo))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_goal_run_survives_kill_9_of_its_spec_actor(
    ray_address: str, model: ScriptedModelServer, tmp_path: Path, seed: int
) -> None:
    """The spec actor is SIGKILLed at a seeded moment of the spec; Ray restarts it, it rebuilds from
    the log, and the run finishes with one spec and every task done once."""
    import random
    from collections import Counter

    from tests.integration.test_kills import kill_9

    repo, _ = make_example_repo(tmp_path, "agents")
    agents = AgentEnv(model_settings(base_url=model.url, backoff=0.01, backoff_cap=0.05), AgentSettings())
    run_id = f"killspec{seed}"
    handle = api.start_goal(
        DEMO_GOAL, repo, sandbox="local", address=ray_address, agents=agents, run_id=run_id
    )
    k = random.Random(seed).randint(3, 14)
    try:
        seen = wait_for_events(
            lambda: handle.events(timeout=1.0, prefixes=("spec.",)), lambda evs: len(evs) >= k
        )
        assert not any(e.kind == "spec.finished" for e in seen[:k]), "the kill must land during the spec"
        kill_9(f"omoi/{run_id}/spec")
        finished = handle.wait(timeout=300)
    finally:
        handle.shutdown()
    assert finished.status == "succeeded", finished.error
    log = api.events(run_id, repo)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert [e.kind for e in log].count("spec.finished") == 1
    done = Counter(e.task_id for e in log if e.kind == "task.succeeded")  # type: ignore[attr-defined]
    assert done, "no task ran"
    assert set(done.values()) == {1}, done
