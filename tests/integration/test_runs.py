"""Whole runs on a real local Ray cluster with real git repositories."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import pytest
import ray

from omoi import api
from omoi.cluster.connect import NAMESPACE, run_actor_names
from omoi.cluster.runner import RunHandle
from omoi.runtime.log.events import Event, TaskOutput
from omoi.runtime.run.plan import parse_plan
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.helpers import gate_cmd, has, interval, of, wait_for_events, wait_until

pytestmark = pytest.mark.ray


def plan(text: str):  # type: ignore[no-untyped-def]
    return parse_plan(text, source="test-plan.yaml")


def counted(log: Path, task: str, then: str) -> str:
    """Record every execution of the command in a file outside the repository."""
    return f"echo {task} >> {log}; {then}"


def executions(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def follow(handle: RunHandle, predicate, timeout: float = 60.0) -> list[Event]:  # type: ignore[no-untyped-def]
    return wait_for_events(lambda: handle.events(timeout=1.0, prefixes=None), predicate, timeout)


def test_diamond_runs_b_and_c_concurrently_and_merges_all(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "demo\n"})
    (repo / "README.md").write_text("the user's uncommitted edit\n")
    (repo / "scratch.txt").write_text("untracked file of the user\n")
    before = checkout_fingerprint(repo)
    b_on, c_on = tmp_path / "b.on", tmp_path / "c.on"
    # b and c each wait for the other to have started: they can only finish if they overlap.
    text = f"""
tasks:
  - {{id: a, run: "echo a > a.txt"}}
  - {{id: b, deps: [a], run: "touch {b_on}; {gate_cmd(c_on, "echo b > b.txt")}"}}
  - {{id: c, deps: [a], run: "touch {c_on}; {gate_cmd(b_on, "echo c > c.txt")}"}}
  - {{id: d, deps: [b, c], run: "cat a.txt b.txt c.txt > d.txt"}}
"""
    seen: list[Event] = []
    finished = api.exec_plan(
        plan(text), repo, run_id="diamond", sandbox="local", max_parallel=4, on_events=seen.extend
    )
    assert finished.status == "succeeded", finished.error
    assert finished.branch == "omoi/diamond/_merged"
    (b_start, b_end), (c_start, c_end) = interval(seen, "b"), interval(seen, "c")
    assert b_start < c_end, "b and c did not run at the same time"
    assert c_start < b_end, "b and c did not run at the same time"
    seq = {(e.kind, getattr(e, "task_id", "")): e.seq or 0 for e in seen}
    assert seq[("task.started", "d")] > max(seq[("task.succeeded", "b")], seq[("task.succeeded", "c")])
    files = run_git(repo, "ls-tree", "-r", "--name-only", "omoi/diamond/_merged").split()
    assert {"a.txt", "b.txt", "c.txt", "d.txt", "README.md"} <= set(files)
    assert run_git(repo, "show", "omoi/diamond/_merged:d.txt").split() == ["a", "b", "c"]
    assert run_git(repo, "show", "omoi/diamond/_merged:README.md") == "demo\n"
    assert checkout_fingerprint(repo) == before
    assert run_actor_names("diamond") == [], "actors of a finished run must be gone"


def test_failure_skips_dependents_and_keeps_output(ray_address: str, make_repo: RepoFactory) -> None:
    repo = make_repo()
    before = checkout_fingerprint(repo)
    text = """
tasks:
  - {id: a, run: "echo compiling; echo 'error: it broke' >&2; exit 4"}
  - {id: b, deps: [a], run: "true"}
  - {id: c, deps: [b], run: "true"}
  - {id: other, run: "echo fine > fine.txt"}
"""
    finished = api.exec_plan(plan(text), repo, run_id="fails", sandbox="local", max_parallel=2)
    state = api.status("fails", repo)
    assert finished.status == "failed"
    assert finished.branch is None
    assert {t.id: t.status for t in state.in_order()} == {
        "a": "failed",
        "b": "skipped",
        "c": "skipped",
        "other": "succeeded",
    }
    failed = of(api.events("fails", repo), "task.failed", "a")[0]
    assert failed.exit_code == 4
    assert "error: it broke" in failed.output_tail
    assert state.tasks["b"].error == "dependency 'a' failed"
    # Merged as it finished: the integration branch holds the work that succeeded, nothing else.
    assert run_git(repo, "show", "omoi/fails/_merged:fine.txt").strip() == "fine"
    assert checkout_fingerprint(repo) == before


def test_flaky_task_succeeds_on_second_attempt(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    counter = tmp_path / "count"
    text = f"""
tasks:
  - id: flaky
    retries: 2
    backoff: 0
    run: "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter};
          echo try $n > try.txt; [ $n -ge 2 ]"
"""
    finished = api.exec_plan(plan(text), repo, run_id="flaky", sandbox="local")
    events = api.events("flaky", repo, kind="task.")
    assert finished.status == "succeeded"
    assert [
        (e.kind, e.attempt) for e in events if e.kind in ("task.started", "task.failed", "task.succeeded")
    ] == [("task.started", 1), ("task.failed", 1), ("task.started", 2), ("task.succeeded", 2)]
    assert run_git(repo, "show", "omoi/flaky/_merged:try.txt").strip() == "try 2"


def test_killing_the_graph_actor_mid_run_runs_every_task_exactly_once(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    runs, gate = tmp_path / "executions", tmp_path / "gate"
    text = f"""
tasks:
  - {{id: a, run: "{counted(runs, "a", "echo a > a.txt")}"}}
  - {{id: b, deps: [a], run: "{counted(runs, "b", gate_cmd(gate, "echo b > b.txt"))}"}}
  - {{id: c, deps: [a], run: "{counted(runs, "c", "echo c > c.txt")}"}}
  - {{id: d, deps: [b, c], run: "{counted(runs, "d", "echo d > d.txt")}"}}
"""
    handle = api.start(plan(text), repo, run_id="killgraph", sandbox="local", max_parallel=3)
    try:
        follow(handle, has("task.succeeded", "c"))
        wait_until(lambda: executions(runs)["b"] == 1, "b's command started")
        ray.kill(handle.graph, no_restart=False)
        gate.touch()
        finished = handle.wait(timeout=120)
    finally:
        handle.shutdown()
    assert finished.status == "succeeded", finished.error
    succeeded = Counter(e.task_id for e in api.events("killgraph", repo, kind="task.succeeded"))  # type: ignore[attr-defined]
    assert succeeded == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert executions(runs) == {"a": 1, "b": 1, "c": 1, "d": 1}, "a restarted graph re-ran work"
    assert {"a.txt", "b.txt", "c.txt", "d.txt"} <= set(
        run_git(repo, "ls-tree", "-r", "--name-only", "omoi/killgraph/_merged").split()
    )


def test_killing_the_bus_actor_loses_no_event(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    gate = tmp_path / "gate"
    text = f"""
tasks:
  - {{id: a, run: "echo a > a.txt"}}
  - {{id: b, deps: [a], run: "{gate_cmd(gate, "echo b > b.txt")}"}}
  - {{id: c, deps: [b], run: "echo c > c.txt"}}
"""
    handle = api.start(plan(text), repo, run_id="killbus", sandbox="local", max_parallel=2)
    injected: list[str] = []
    try:
        follow(handle, has("task.started", "b"))
        for round_ in range(3):
            batch = [
                TaskOutput(run_id="killbus", task_id="b", attempt=1, tail=f"probe {round_}.{i}")
                for i in range(5)
            ]
            handle.inject(batch)  # re-sent by Ray across the restart; stored once by id
            injected += [e.id for e in batch]
            if round_ == 0:
                ray.kill(handle.bus, no_restart=False)
        gate.touch()
        finished = handle.wait(timeout=120)
    finally:
        handle.shutdown()
    log = api.events("killbus", repo)
    assert finished.status == "succeeded", finished.error
    assert [e.seq for e in log] == list(range(1, len(log) + 1)), "seq has a gap"
    ids = Counter(e.id for e in log)
    assert all(ids[i] == 1 for i in injected)
    assert max(ids.values()) == 1
    for task in ("a", "b", "c"):
        kinds = [e.kind for e in log if getattr(e, "task_id", None) == task and e.kind != "task.output"]
        assert kinds == [
            "task.added", "task.ready", "task.started", "task.succeeded", "merge.queued", "merge.succeeded",
        ], (task, kinds)  # fmt: skip
    assert log[-1].kind == "run.finished"


def test_cancelling_a_run_stops_its_commands(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    started, never = tmp_path / "started", tmp_path / "never"
    text = f"""
tasks:
  - {{id: slow, run: "touch {started}; {gate_cmd(never, "true")}"}}
  - {{id: after, deps: [slow], run: "true"}}
"""
    handle = api.start(plan(text), repo, run_id="cancelme", sandbox="local")
    try:
        follow(handle, has("task.started", "slow"))
        handle.cancel(reason="changed my mind")
        finished = handle.wait(timeout=60)
    finally:
        handle.shutdown()
    state = api.status("cancelme", repo)
    assert finished.status == "cancelled"
    assert state.tasks["slow"].status == "cancelled"
    assert state.tasks["slow"].error == "changed my mind"
    assert state.tasks["after"].status in ("cancelled", "skipped")
    assert not (repo / ".git" / "omoi" / "runs" / "cancelme" / "worktrees" / "slow").exists()


def test_resume_after_the_driver_died(ray_address: str, make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    runs, gate = tmp_path / "executions", tmp_path / "gate"
    text = f"""
tasks:
  - {{id: a, run: "{counted(runs, "a", "echo a > a.txt")}"}}
  - {{id: b, deps: [a], run: "{counted(runs, "b", gate_cmd(gate, "echo b > b.txt"))}"}}
  - {{id: c, deps: [b], run: "{counted(runs, "c", "echo c > c.txt")}"}}
"""
    handle = api.start(plan(text), repo, run_id="resumed", sandbox="local")
    wait_until(lambda: executions(runs)["b"] == 1, "b's command started")
    handle.shutdown()  # every actor of the run is gone, as if the driver process had died
    assert run_actor_names("resumed") == []
    assert api.status("resumed", repo).finished is None
    gate.touch()
    finished = api.resume("resumed", repo)
    assert finished.status == "succeeded", finished.error
    ran = executions(runs)
    assert (ran["a"], ran["c"]) == (1, 1), "a succeeded task ran again"
    assert ran["b"] >= 2, "the interrupted task was not run again"
    b = api.status("resumed", repo).tasks["b"]
    retries = [e.reason for e in api.events("resumed", repo, kind="task.retrying")]  # type: ignore[attr-defined]
    assert b.failures == 0, retries  # an interruption never uses up a retry
    assert b.interruptions == b.attempt - 1 >= 1, retries
    assert api.resume("resumed", repo) == finished, "resuming a finished run changes nothing"


def test_actors_are_named_as_the_runs_tree(ray_address: str, make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    gate = tmp_path / "gate"
    handle = api.start(
        plan(
            f'tasks: [{{id: t, run: "{gate_cmd(gate, "true")}"}}, {{id: u, run: "{gate_cmd(gate, "true")}"}}]'
        ),
        repo,
        run_id="names",
        sandbox="local",
        max_parallel=2,
    )
    try:
        follow(handle, lambda evs: has("task.started", "t")(evs) and has("task.started", "u")(evs))
        names = set(run_actor_names("names"))
        assert {
            "omoi/names/bus",
            "omoi/names/graph",
            "omoi/names/integrator",
            "omoi/names/sandbox/0",
            "omoi/names/sandbox/1",
        } <= names
        with contextlib.suppress(ValueError):
            assert ray.get_actor("omoi/names/graph", namespace=NAMESPACE) is not None
    finally:
        gate.touch()
        handle.wait(timeout=60)
        handle.shutdown()
