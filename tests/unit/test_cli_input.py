"""Bad input: a clear message naming file, task and field, exit code 2, and no run state created.

These never reach Ray: everything is checked before a cluster is joined or a file is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omoi.cli import main
from tests.conftest import RepoFactory

GOOD_TASKS = "tasks:\n  - id: a\n    run: 'true'\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize(
    ("plan_text", "expected"),
    [
        ("tasks: [", "not valid YAML"),
        ("tasks:\n  - id: a\n    run: 'true'\n    colour: red\n", "task 'a': field 'colour': unknown field"),
        ("tasks:\n  - {id: a, run: x}\n  - {id: a, run: y}\n", "task 'a': field 'id': duplicate task id 'a'"),
        ("tasks:\n  - {id: '', run: x}\n", "field 'id': must not be empty"),
        ("tasks:\n  - {id: a, run: x, deps: [ghost]}\n", "depends on unknown task 'ghost'"),
        ("tasks:\n  - {id: a, run: x, deps: [b]}\n  - {id: b, run: x, deps: [a]}\n", "cycle: a -> b -> a"),
    ],
)
def test_bad_plan_exits_2_and_creates_nothing(
    make_repo: RepoFactory, tmp_path: Path, plan_text: str, expected: str
) -> None:
    repo = make_repo()
    plan = tmp_path / "bad.yaml"
    plan.write_text(plan_text)
    code, out = invoke("exec", str(plan), "--repo", str(repo))
    assert code == 2, out
    assert "bad.yaml" in out
    assert expected in out
    assert not (repo / ".git" / "omoi").exists()


def test_unreadable_plan(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    code, out = invoke("exec", str(tmp_path / "nope.yaml"), "--repo", str(repo))
    assert code == 2
    assert "nope.yaml: cannot read plan" in out
    assert not (repo / ".git" / "omoi").exists()


def test_repo_that_is_not_git_or_has_no_commits(make_repo: RepoFactory, tmp_path: Path) -> None:
    plan = tmp_path / "ok.yaml"
    plan.write_text(GOOD_TASKS)
    (tmp_path / "plain").mkdir()
    code, out = invoke("exec", str(plan), "--repo", str(tmp_path / "plain"))
    assert code == 2
    assert "not a git repository" in out
    empty = make_repo(commit=False)
    code, out = invoke("exec", str(plan), "--repo", str(empty))
    assert code == 2
    assert "has no commits" in out
    assert not (empty / ".git" / "omoi").exists()


def test_bad_run_id_and_parallelism(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    plan = tmp_path / "ok.yaml"
    plan.write_text(GOOD_TASKS)
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--run-id", "../escape")
    assert code == 2
    assert "--run-id" in out
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--max-parallel", "0")
    assert code == 2
    assert "--max-parallel" in out
    assert not (repo / ".git" / "omoi").exists()


def test_status_and_events_of_unknown_run(make_repo: RepoFactory) -> None:
    repo = make_repo()
    for cmd in ("status", "events", "resume"):
        code, out = invoke(cmd, "no-such-run", "--repo", str(repo))
        assert code == 2, (cmd, out)
        assert "no run 'no-such-run'" in out, (cmd, out)
