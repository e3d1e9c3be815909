"""The `omoi` command as a user runs it: a real subprocess joining a real cluster, and `ray job submit`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from omoi.examples import make_example_repo
from omoi.runtime.log.events import parse_event
from tests.conftest import checkout_fingerprint, run_git
from tests.helpers import OMOI, omoi


@pytest.mark.ray
def test_exec_status_and_events_from_the_command_line(ray_address: str, tmp_path: Path) -> None:
    repo, plan = make_example_repo(tmp_path)
    before = checkout_fingerprint(repo)
    done = omoi("exec", str(plan), "--repo", str(repo), "--run-id", "cli", "--address", ray_address)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run succeeded: branch omoi/cli/_merged" in done.stdout
    assert "check                succeeded" in done.stdout
    assert checkout_fingerprint(repo) == before

    status = omoi("status", "cli", "--repo", str(repo), "--format", "json")
    tasks = json.loads(status.stdout)["tasks"]
    assert [(t["id"], t["status"], t["attempts"]) for t in tasks] == [
        ("stats", "succeeded", 1),
        ("longest", "succeeded", 1),
        ("histogram", "succeeded", 1),
        ("report", "succeeded", 1),
        ("check", "succeeded", 1),
    ]
    assert all(t["branch"] == f"omoi/cli/{t['id']}" and t["started"] and t["ended"] for t in tasks)
    assert "succeeded" in omoi("status", "cli", "--repo", str(repo)).stdout

    lines = omoi("events", "cli", "--repo", str(repo), "--format", "jsonl").stdout.splitlines()
    events = [parse_event(line) for line in lines]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "run.started"
    assert events[-1].kind == "run.finished"
    assert all(set(json.loads(line)) >= {"id", "run_id", "ts", "source", "seq", "kind"} for line in lines)
    only = omoi("events", "cli", "--repo", str(repo), "--kind", "task.succeeded").stdout.splitlines()
    assert len(only) == 5
    assert all("task.succeeded" in line for line in only)


@pytest.mark.ray
def test_a_failing_plan_exits_1(ray_address: str, tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    run_git(repo, "init", "-q")
    run_git(repo, "commit", "-q", "--allow-empty", "-m", "x")
    plan = tmp_path / "p.yaml"
    plan.write_text("tasks:\n  - {id: bad, run: 'exit 7'}\n")
    done = omoi("exec", str(plan), "--repo", str(repo), "--address", ray_address)
    assert done.returncode == 1
    assert "exit code 7" in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def head_node(tmp_path: Path) -> Iterator[str]:
    """A separate `ray start --head` cluster; `--block` ties its life to a process we can stop
    without touching the test session's own cluster (`ray stop` would stop both)."""
    gcs, dash = _free_port(), _free_port()
    log = (tmp_path / "head.log").open("w")
    proc = subprocess.Popen(
        [
            "ray",
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            f"--dashboard-port={dash}",
            # the session's own cluster holds Ray's default agent ports: take free ones
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            "--num-cpus=1",
            "--include-dashboard=true",
            "--disable-usage-stats",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RAY_AUTH_MODE": "token"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 90
        while True:  # wait for the job server to answer (bounded), not for a fixed time
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=2).close()
                break
            except urllib.error.HTTPError:  # 401 without the token: the server is up
                break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Ray head node did not come up ({exc!r}):\n"
                        + (tmp_path / "head.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow
def test_ray_job_submit_runs_a_plan_on_a_head_node(head_node: str, tmp_path: Path) -> None:
    repo, plan = make_example_repo(tmp_path)
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    shutil.copy(plan, job_dir / "plan.yaml")
    submit = ["ray", "job", "submit", "--address", head_node, "--working-dir", str(job_dir), "--",
              "omoi", "exec", "plan.yaml", "--repo", str(repo), "--run-id", "viajob"]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    deadline = time.monotonic() + 90
    while True:  # a fresh head answers before its job agent has registered: wait for the agent
        done = subprocess.run(submit, capture_output=True, text=True, timeout=300, env=env)
        if "No available agent" not in done.stderr + done.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run succeeded" in done.stdout
    assert run_git(repo, "rev-parse", "--verify", "omoi/viajob/_merged").strip()


@pytest.mark.ray
def test_demo_runs_agents_offline_and_summarises(ray_address: str, tmp_path: Path) -> None:
    done = omoi("demo", "--dir", str(tmp_path), "--address", ray_address, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "model: scripted" in out
    assert "docs                 model     HTTP 429, retry 1" in out
    assert "histogram            accept    round 1 failed" in out
    assert "histogram            accept    round 2 passed" in out
    for column in ("model turns", "retried calls", "acceptance rounds", "tokens", "cost"):
        assert column in out
    repo = tmp_path / "repo"
    (branch,) = run_git(repo, "branch", "--list", "omoi/*/_merged", "--format=%(refname:short)").split()
    assert f"branch: {branch}" in out
    tool = run_git(repo, "show", f"{branch}:tools/wordstats.py")
    assert "from collections import Counter" in tool
    assert 'cmd == "histogram"' in tool
    assert "wordstats.py histogram" in run_git(repo, "show", f"{branch}:README.md")
    assert "longest: jumps" in run_git(repo, "show", f"{branch}:tests/test_longest.py")
    # The goal went through the spec: its first task list was sent back, its documents are merged.
    assert "spec intent          open_ended (by model)" in out
    assert (
        "spec tasks           checks    sent back, score 0.00 < 0.80: tasks: task 'longest-test' depends on "
        in out
    )
    run_id = branch.split("/")[1]
    assert f".omoi/specs/{run_id}/design.md" in run_git(repo, "ls-tree", "-r", "--name-only", branch)


@pytest.mark.ray
def test_demo_plan_runs_the_examples_plan_with_command_tasks(ray_address: str, tmp_path: Path) -> None:
    done = omoi("demo", "--plan", "--dir", str(tmp_path), "--address", ray_address, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report               succeeded" in done.stdout
    assert "check                succeeded" in done.stdout
    assert "spec " not in done.stdout


def test_model_serve_answers_the_sdk_from_a_script_until_interrupted(tmp_path: Path) -> None:
    import anthropic

    script = tmp_path / "script.yaml"
    script.write_text("tasks:\n  '*':\n    '*':\n      - text: 'replayed [TASK COMPLETE]'\n")
    proc = subprocess.Popen(
        [*OMOI, "model", "serve", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server listens: no sleep
        assert line.startswith("export ANTHROPIC_BASE_URL=http://127.0.0.1:"), line
        client = anthropic.Anthropic(api_key="k", base_url=line.split("=", 1)[1].strip(), max_retries=0)
        reply = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "go"}]
        )
        assert reply.content[0].type == "text"
        assert reply.content[0].text == "replayed [TASK COMPLETE]"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert "served 1 requests" in stderr
    finally:
        proc.kill()


def test_model_serve_names_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("tasks:\n  t:\n    worker:\n      - tools: [{name: ''}]\n")
    done = omoi("model", "serve", str(script), timeout=60)
    assert done.returncode == 2
    assert f"{script}: tasks.t.worker.0.tools.0.name:" in done.stderr
