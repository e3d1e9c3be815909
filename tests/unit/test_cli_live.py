"""The CLI verbs that act on a live run through its log: the same checks and errors as the HTTP
API (exit 2 naming the field, nothing written), and the status tree from the log alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from omoi import api
from omoi.runtime.log.events import RunFinished, TaskStarted
from tests.conftest import RepoFactory
from tests.unit.test_cli_input import invoke
from tests.unit.test_injection import _run


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["inject", "live", "task.succeeded", "--data", '{"task_id": "auth"}'],
            "is written by the run itself",
        ),
        (["inject", "live", "agent.message", "--data", "{not json"], "--data is not valid JSON"),
        (["inject", "live", "agent.message", "--data", "[1]"], "--data must be a JSON object"),
        (["inject", "live", "agent.message", "--data", '{"task_id": "auth"}'], "data.text: Field required"),
        (["message", "live", "ghost", "hello"], "run 'live' has no task 'ghost'; its agent tasks: auth"),
        (["message", "live", "auth", "  "], "the message is empty"),
        (["cancel", "live", "ghost"], "has no task 'ghost'"),
        (["cancel", "nope"], "no run 'nope'"),
    ],
)
def test_a_refused_injection_exits_2_naming_why_and_writes_nothing(
    make_repo: RepoFactory, args: list[str], words: str
) -> None:
    repo = make_repo()
    _run(repo)
    before = len(api.events("live", repo))
    code, out = invoke(*args, "--repo", str(repo))
    assert code == 2, out
    assert words in out
    assert "Traceback" not in out
    assert len(api.events("live", repo)) == before


def test_add_task_checks_the_file_and_the_run(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    _run(repo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: docs\nagent: {prompt: Document it}\ncolour: red\n")
    code, out = invoke("add-task", "live", "--file", str(bad), "--repo", str(repo))
    assert code == 2
    assert "bad.yaml: task 'docs': field 'colour': unknown field" in out
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text("id: docs\ndeps: [ghost]\nrun: 'true'\n")
    code, out = invoke("add-task", "live", "--file", str(dangling), "--repo", str(repo))
    assert code == 2
    assert "ghost" in out
    good = tmp_path / "good.yaml"
    good.write_text(
        "tasks:\n"
        "  - {id: docs, deps: [auth], agent: {prompt: Document the login}}\n"
        "  - {id: lint, run: 'true'}\n"
    )
    code, out = invoke("add-task", "live", "--file", str(good), "--repo", str(repo))
    assert code == 0, out
    assert "added docs, lint to run live" in out
    assert [e.task_id for e in api.events("live", repo, kind="task.added")][-2:] == ["docs", "lint"]  # type: ignore[union-attr]


def test_inject_message_cancel_and_the_tree(make_repo: RepoFactory) -> None:
    repo = make_repo()
    _run(repo, TaskStarted(run_id="live", task_id="auth", attempt=1, sandbox="sandbox/0"))
    code, out = invoke("message", "live", "auth", "use HS256", "--repo", str(repo))
    assert code == 0, out
    data = '{"task_id": "auth", "reason": "paused by a script"}'
    code, out = invoke("inject", "live", "agent.paused", "--data", data, "--id", "p-1", "--repo", str(repo))
    assert code == 0, out
    code, again = invoke("inject", "live", "agent.paused", "--data", data, "--id", "p-1", "--repo", str(repo))
    assert code == 0, again  # the same id: the same event, not "already paused"
    assert again.split("(event ")[1] == out.split("(event ")[1]
    code, out = invoke("cancel", "live", "--repo", str(repo))
    assert code == 0, out
    kinds = [e.kind for e in api.events("live", repo)][-3:]
    assert kinds == ["agent.message", "agent.paused", "run.cancel_requested"]
    code, tree = invoke("status", "live", "--tree", "--repo", str(repo))
    assert code == 0, tree
    lines = tree.splitlines()
    assert lines[0].startswith("run live [running]")
    assert "    ├── build [pending] command" in tree
    assert "    └── auth [running] agent" in tree
    assert "        └── attempt 1 [running]" in tree
    assert "paused: paused by a script" in tree


def test_watch_draws_the_tree_and_returns_once_the_run_has_finished(make_repo: RepoFactory) -> None:
    repo = make_repo()
    _run(repo, RunFinished(run_id="live", status="cancelled", error="cancelled by user"))
    code, out = invoke("watch", "live", "--repo", str(repo), "--interval", "0.1")
    assert code == 0, out
    assert "run live [cancelled]" in out
    code, out = invoke("watch", "nope", "--repo", str(repo))
    assert code == 2
    assert "no run 'nope'" in out
