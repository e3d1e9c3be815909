"""Sandboxes spread over several nodes of a real Ray cluster, with git as the only transport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _report(script: str, work: Path) -> dict[str, Any]:
    """Run a multi-node script in its own process (it makes its own cluster); its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", f"tests.e2e.{script}", str(work)],
        capture_output=True,
        text=True,
        timeout=280,  # under the test timeout: a hang reports what the script printed
        env={**os.environ, "RAY_AUTH_MODE": "token"},
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_tasks_run_on_two_nodes_and_the_run_branch_holds_all_their_work(tmp_path: Path) -> None:
    report = _report("multinode_run", tmp_path)
    assert report["status"] == "succeeded", report["error"]
    assert len(report["nodes"]) >= 2, f"every task ran on one node: {report['nodes']}"
    assert report["all"] == ["0", "1", "2", "3", "4", "5"]
    assert len(report["node_clones"]) >= 2, "each node must work from its own clone, in its own directory"
    assert report["user_repo_worktrees"] == 1, "sandboxes on other nodes must not use the user's repository"


@pytest.mark.slow
def test_a_run_survives_losing_a_node_with_running_tasks(tmp_path: Path) -> None:
    """Its tasks are retried on the slots left; no call waits for a slot that can no longer be placed."""
    report = _report("multinode_loss", tmp_path)
    assert report["status"] == "succeeded", report["error"]
    assert len(report["lost_tasks"]) == 2, report
    assert set(report["lost_tasks"]) <= set(report["retried"]), report
    assert report["succeeded"] == {"p0": 1, "p1": 1, "p2": 1, "p3": 1, "all": 1}
    assert report["gap_free"]
    assert report["all"] == ["0", "1", "2", "3"]
