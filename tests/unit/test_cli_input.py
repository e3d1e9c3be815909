"""Bad input: a clear message naming file, task and field, exit code 2, and no run state created.

These never reach Ray: everything is checked before a cluster is joined or a file is written."""

from __future__ import annotations

import os
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


DEEP = "tasks:\n  - id: a\n    run: 'true'\n    env: " + "[" * 20_000 + "]" * 20_000 + "\n"


@pytest.mark.parametrize(
    ("case", "plan_text", "env", "extra", "expected"),
    [
        (
            "routes not JSON",
            GOOD_TASKS,
            {"OMOI_MODEL_ROUTES": "{bad"},
            [],
            "OMOI_MODEL_ROUTES: not valid JSON",
        ),
        ("prices not JSON", GOOD_TASKS, {"OMOI_MODEL_PRICES": "[1"}, [], "OMOI_MODEL_PRICES: not valid JSON"),
        (
            "limits not JSON",
            GOOD_TASKS,
            {"OMOI_MODEL_LIMITS": "nope"},
            [],
            "OMOI_MODEL_LIMITS: not valid JSON",
        ),
        ("image name", GOOD_TASKS, {"OMOI_SANDBOX_IMAGE": "Bad Image!!"}, [], "OMOI_SANDBOX_IMAGE"),
        ("memory of 1 byte", GOOD_TASKS, {"OMOI_SANDBOX_MEMORY": "1"}, [], "OMOI_SANDBOX_MEMORY"),
        ("a thousandth of a CPU", GOOD_TASKS, {"OMOI_SANDBOX_CPUS": "0.001"}, [], "OMOI_SANDBOX_CPUS"),
        ("nested 20,000 deep", DEEP, {}, [], "nested more than 100 levels deep"),
        (
            "duplicate keys",
            "tasks:\n  - id: a\n    run: 'true'\n    run: 'false'\n",
            {},
            [],
            "key 'run' is given twice",
        ),
        (
            "empty env key",
            "tasks:\n  - {id: a, run: 'true', env: {'': x}}\n",
            {},
            [],
            "task 'a': field 'env'",
        ),
        (
            "'=' in an env key",
            "tasks:\n  - {id: a, run: 'true', env: {'A=B': c}}\n",
            {},
            [],
            "'A=B' is not a variable name",
        ),
        ("NUL in a command", 'tasks:\n  - {id: a, run: "echo \\0"}\n', {}, [], "NUL byte"),
        ("NUL in an env value", 'tasks:\n  - {id: a, run: "true", env: {A: "x\\0"}}\n', {}, [], "NUL byte"),
        (
            "unknown category",
            "tasks:\n  - {id: w, agent: {prompt: p, category: nope}}\n",
            {},
            [],
            "task 'w': field 'agent.category': unknown category 'nope'",
        ),
        ("empty run id", GOOD_TASKS, {}, ["--run-id", ""], "--run-id"),
        (
            "max-parallel unbounded",
            GOOD_TASKS,
            {},
            ["--max-parallel", "100000"],
            "--max-parallel must be from 1 to 256",
        ),
    ],
)
def test_bad_input_is_a_clean_error_before_anything_runs(
    make_repo: RepoFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    plan_text: str,
    env: dict[str, str],
    extra: list[str],
    expected: str,
) -> None:
    repo = make_repo()
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--sandbox", "local", *extra)
    assert code == 2, (case, out)
    assert expected in out, (case, out)
    assert "Traceback" not in out
    assert not (repo / ".git" / "omoi" / "runs").exists(), case


def test_plan_files_that_are_not_plain_text_files(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    binary = tmp_path / "plan.yaml"
    binary.write_bytes(b"tasks: \xff\xfe\x00\x01")
    for path, expected in (
        ("/dev/zero", "not a regular file"),
        (str(fifo), "not a regular file"),  # would block forever in a plain open()
        (str(binary), "not UTF-8 text"),
        (str(tmp_path), "not a regular file"),
    ):
        code, out = invoke("exec", path, "--repo", str(repo), "--sandbox", "local")
        assert code == 2, (path, out)
        assert f"{path}: cannot read plan: {expected}" in out, out
    assert not (repo / ".git" / "omoi" / "runs").exists()


def test_a_state_directory_that_is_a_file(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo()
    plan = tmp_path / "ok.yaml"
    plan.write_text(GOOD_TASKS)
    afile = tmp_path / "state"
    afile.write_text("not a directory\n")
    code, out = invoke(
        "exec", str(plan), "--repo", str(repo), "--state-dir", str(afile), "--sandbox", "local"
    )
    assert code == 2, out
    assert "--state-dir" in out
    assert "is a file" in out
    (repo / ".git" / "omoi").write_text("a file where omoi keeps its runs\n")
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--sandbox", "local")
    assert code == 2, out
    assert "is a file, not a directory" in out


def test_a_users_branch_where_the_runs_branches_go(make_repo: RepoFactory, tmp_path: Path) -> None:
    from tests.conftest import run_git

    repo = make_repo()
    plan = tmp_path / "ok.yaml"
    plan.write_text(GOOD_TASKS)
    run_git(repo, "branch", "omoi/mine")
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--run-id", "mine", "--sandbox", "local")
    assert code == 2, out
    assert "has a branch 'omoi/mine'" in out
    assert not (repo / ".git" / "omoi" / "runs").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"tasks: \xff\xfe", "not UTF-8 text"),
        (b"tasks: " + b"[" * 20_000 + b"]" * 20_000, "nested more than 100 levels deep"),
        (b"faults: {rate_429: 0.7, rate_529: 0.6}\n", "a request gets one fault at most"),
        (b"tasks: {a: {worker: []}}\ntasks: {}\n", "given twice"),
    ],
)
def test_bad_scripts_are_clean_errors(tmp_path: Path, text: bytes, expected: str) -> None:
    script = tmp_path / "script.yaml"
    script.write_bytes(text)
    code, out = invoke("model", "serve", str(script))
    assert code == 2, out
    assert "script.yaml" in out
    assert expected in out
    assert "Traceback" not in out


def _offline_run(repo: Path) -> str:
    from omoi.runtime.run.begin import open_log, plan_new_run
    from omoi.runtime.run.options import RunOptions
    from omoi.runtime.run.plan import parse_plan

    paths, first = plan_new_run(parse_plan(GOOD_TASKS), repo, RunOptions(run_id="offline", sandbox="local"))
    paths.run_dir.mkdir(parents=True)
    log = open_log(paths, create=True)
    log.append(first)
    log.close()
    return "offline"


@pytest.mark.parametrize("usd", ["inf", "nan", "-inf"])
def test_an_injected_event_cannot_poison_the_log(make_repo: RepoFactory, usd: str) -> None:
    repo = make_repo()
    run = _offline_run(repo)
    code, out = invoke("raise-budget", run, "--repo", str(repo), "--usd", usd)
    assert code == 2, out
    assert "--usd" in out
    assert "Traceback" not in out
    code, out = invoke("status", run, "--repo", str(repo))
    assert code == 0, out


def test_an_event_that_would_not_read_back_is_refused_whole(make_repo: RepoFactory) -> None:
    from omoi import api
    from omoi.runtime.errors import InputError
    from omoi.runtime.log.events import BudgetRaised, TaskOutput

    repo = make_repo()
    run = _offline_run(repo)
    good = TaskOutput(run_id=run, task_id="a", attempt=1, tail="fine")
    bad = BudgetRaised.model_construct(
        run_id=run, scope="run", add_tokens=0, add_usd=float("inf"), source="x"
    )
    before = len(api.events(run, repo))
    with pytest.raises(InputError, match=r"budget\.raised"):
        api.inject(run, repo, [good, bad])
    assert len(api.events(run, repo)) == before, "nothing of a refused batch is written"


def test_an_unreadable_row_is_reported_by_seq_and_the_rest_reads(make_repo: RepoFactory) -> None:
    import sqlite3

    from omoi import api

    repo = make_repo()
    run = _offline_run(repo)
    db = repo / ".git" / "omoi" / "runs" / run / "events.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE events SET body = ? WHERE seq = 2", ('{"kind": "task.added", "from": "the future"}',)
        )
    events = api.events(run, repo)
    assert [e.seq for e in events] == [1]
    for cmd in ("status", "events"):
        code, out = invoke(cmd, run, "--repo", str(repo))
        assert code == 0, out
        assert "seq 2 cannot be read and is skipped" in out, out
    assert "run.started" in out


def test_a_bad_plan_is_reported_before_the_sandbox_image_is_looked_for(
    make_repo: RepoFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo()
    plan = tmp_path / "bad.yaml"
    plan.write_text("tasks:\n  - {id: a, run: x, deps: [ghost]}\n")
    monkeypatch.setenv("OMOI_SANDBOX_IMAGE", "omoi-sandbox:never-built")
    code, out = invoke("exec", str(plan), "--repo", str(repo), "--sandbox", "auto")
    assert code == 2, out
    assert "depends on unknown task 'ghost'" in out
    assert "never-built" not in out, "the environment was probed before the plan was checked"
