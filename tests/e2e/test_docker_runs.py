"""Whole runs on Ray with every task in its own Docker sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omoi import api
from omoi.examples import make_example_repo
from omoi.runtime.run.plan import parse_plan
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.helpers import of

pytestmark = [pytest.mark.docker, pytest.mark.ray]


def test_the_example_plan_runs_in_docker_sandboxes(
    ray_address: str, docker_image: tuple[Any, str], tmp_path: Path
) -> None:
    client, _ = docker_image
    repo, plan = make_example_repo(tmp_path)
    before = checkout_fingerprint(repo)
    finished = api.exec_plan(plan, repo, run_id="indocker", sandbox="docker", max_parallel=2)
    assert finished.status == "succeeded", finished.error
    report = run_git(repo, "show", "omoi/indocker/_merged:REPORT.txt")
    assert "longest: jumps" in report
    assert api.status("indocker", repo).started is not None
    assert api.status("indocker", repo).started.sandbox == "docker"  # type: ignore[union-attr]
    assert client.containers.list(all=True, filters={"label": "omoi.run=indocker"}) == []
    assert checkout_fingerprint(repo) == before


def test_a_failing_command_in_docker_keeps_its_output(
    ray_address: str, docker_image: tuple[Any, str], make_repo: RepoFactory
) -> None:
    repo = make_repo()
    plan = parse_plan('tasks: [{id: bad, run: "echo trying; cat /etc/hostname >&2; touch /etc/x"}]')
    finished = api.exec_plan(plan, repo, run_id="dockerfail", sandbox="docker")
    failed = of(api.events("dockerfail", repo), "task.failed", "bad")[0]
    assert finished.status == "failed"
    assert "Read-only file system" in failed.output_tail  # type: ignore[union-attr]
