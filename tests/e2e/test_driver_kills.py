"""kill -9 of the process driving a run (`omoi exec` on a shared cluster), at seeded moments, then
`omoi resume` from another process: the run completes, every task succeeds exactly once, and
nothing the dead driver left (detached sandbox actors, containers, task trees) survives."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from omoi import api
from omoi.cluster.connect import run_actor_names
from tests.conftest import RepoFactory, run_git
from tests.helpers import OMOI, omoi
from tests.integration.test_kills import TASKS, check_nothing_left

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _plan(path: Path) -> Path:
    tasks = [
        {"id": t, "deps": d, "run": f"sleep 1; echo {t} > {t}.txt", "retries": 0} for t, d in TASKS.items()
    ]
    path.write_text(json.dumps({"tasks": tasks}))
    return path


def _wait_for_events(repo: Path, run_id: str, k: int, proc: subprocess.Popen[str]) -> None:
    """Until the run's log (read from its file, as `omoi events` does) holds k events; bounded."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the driver ended before the kill"
        try:
            if len(api.events(run_id, repo)) >= k:
                return
        except Exception:  # the log does not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"the log never held {k} events")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_resume_after_kill_9_of_the_driver(
    ray_address: str,
    make_repo: RepoFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sandbox: str,
    seed: int,
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_image")
    repo = make_repo()
    run_id = f"drv-{sandbox}-{seed}"
    k = random.Random(seed).randint(9, 22)
    driver = subprocess.Popen(
        [*OMOI, "exec", str(_plan(tmp_path / "plan.json")), "--repo", str(repo), "--run-id", run_id,
         "--sandbox", sandbox, "--max-parallel", "3", "--address", ray_address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RAY_AUTH_MODE": "token"},
    )  # fmt: skip
    try:
        _wait_for_events(repo, run_id, k, driver)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    assert api.status(run_id, repo).finished is None
    done = omoi("resume", run_id, "--repo", str(repo), "--address", ray_address, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    log = api.events(run_id, repo)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert Counter(e.task_id for e in log if e.kind == "task.succeeded") == dict.fromkeys(TASKS, 1)  # type: ignore[attr-defined]
    assert {f"{t}.txt" for t in TASKS} <= set(
        run_git(repo, "ls-tree", "-r", "--name-only", f"omoi/{run_id}/_merged").split()
    )
    check_nothing_left(run_id, repo)


def test_resume_of_a_finished_run_clears_what_its_dead_driver_left(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    """The driver died after `run.finished` but before its shutdown: resume says the run is done
    and removes the leftovers, live actors included."""
    repo = make_repo()
    run_id = "drv-finished"
    handle = api.start(
        str(_plan(tmp_path / "plan.json")), repo, run_id=run_id, sandbox="local", address=ray_address
    )
    finished = handle.wait(timeout=120)
    handle._lock.release()  # type: ignore[union-attr]  # as if the driver died here: actors and trees stay
    leftover = repo / ".git" / "omoi" / "runs" / run_id / "worktrees" / ".slot-left"
    leftover.mkdir(parents=True)
    assert run_actor_names(run_id) != []
    done = omoi("resume", run_id, "--repo", str(repo), "--address", ray_address)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already finished" in done.stdout
    assert finished.status == "succeeded"
    check_nothing_left(run_id, repo)
