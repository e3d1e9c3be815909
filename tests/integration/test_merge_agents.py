"""The merge queue with agents, on real Ray, real git, local sandboxes and the real SDK talking to
the scripted model server: the radar sees running agents' work in progress, a conflict goes back
to the agent that made it, a semantic conflict is repaired by its agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from omoi import api
from omoi.runtime.log.events import Event
from omoi.runtime.model.scripted import ROLE_HEADER, TASK_HEADER
from omoi.runtime.run.plan import parse_plan
from tests.agents import WORKER_MODEL, call, env
from tests.conftest import RepoFactory, run_git
from tests.helpers import gate_cmd, has, of, wait_for_events

pytestmark = pytest.mark.ray

FINISH = {"tools": [call("finish", status="complete", summary="done")]}
BASE = "def total(xs):\n    return sum(xs)\n"
SKIPS_NONE = "def total(xs):\n    return sum(x for x in xs if x is not None)\n"
WHOLE = "def total(xs):\n    return int(sum(xs))\n"
BOTH = "def total(xs):\n    return int(sum(x for x in xs if x is not None))\n"
ACCEPT = {
    "a": 'python3 -c "from calc import total; assert total([1, None]) == 1"',
    "b": 'python3 -c "from calc import total; assert total([1.5]) == 1"',
}


def _plan(tasks: list[dict[str, Any]], **top: Any) -> Any:
    return parse_plan(json.dumps({**top, "tasks": tasks}))


def _seq(log: list[Event], kind: str, task: str | None = None) -> int:
    return of(log, kind, task)[0].seq or 0


def open_gate(server: Any) -> None:
    """A request of the conversation `gate`, through the real SDK: the turns that wait `after`
    it are answered from now on."""
    client = anthropic.Anthropic(base_url=server.url, api_key="scripted", max_retries=0)
    client.messages.create(
        model=WORKER_MODEL,
        max_tokens=16,
        messages=[{"role": "user", "content": "go"}],
        extra_headers={TASK_HEADER: "gate", ROLE_HEADER: "worker"},
    )


@pytest.mark.parametrize(
    ("rung", "sandbox"),
    [("agent", "local"), ("resolver", "local"), pytest.param("agent", "docker", marks=pytest.mark.docker)],
)
def test_the_radar_sees_running_agents_and_the_later_agent_resolves_the_conflict(
    rung: str,
    sandbox: str,
    ray_address: str,
    make_repo: RepoFactory,
    model_server: Any,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_image")
    monkeypatch.setenv("OMOI_RADAR_INTERVAL", "0.2")
    # Off: the conductor would order the two agents before either merged (test_supervision holds
    # that); this test is about a conflict that reaches the merge queue.
    monkeypatch.setenv("OMOI_SUPERVISION", "off")
    repo = make_repo({"calc.py": BASE})
    edits = {"a": SKIPS_NONE, "b": WHOLE}

    def work(task: str) -> list[dict[str, Any]]:
        # write; the answer to the next request waits until the test opens the gate, which it
        # does once the radar has spoken: the work in progress is on the branch by then
        return [
            {"tools": [call("write_file", path="calc.py", content=edits[task])]},
            {**FINISH, "after": ["gate"]},
        ]

    resolve = [
        {"tools": [call("read_file", path="calc.py")]},
        {"tools": [call("write_file", path="calc.py", content=BOTH)]},
        {"tools": [call("finish", status="complete", summary="kept both: None skipped, int result")]},
    ]
    script = {"tasks": {"a": {"worker": work("a")}, "b": {"worker": work("b")}}}
    script["tasks"]["gate"] = {"worker": [{"text": "open"}]}
    if rung == "agent":
        script["tasks"] |= {f"{t}/2/worker": {"worker": resolve} for t in "ab"}
    else:  # the task's own agent gives up; the neutral resolver (attempt 3) resolves it
        gives_up = [{"tools": [call("finish", status="blocked", summary="cannot keep both")]}]
        script["tasks"] |= {f"{t}/2/worker": {"worker": gives_up} for t in "ab"}
        script["tasks"] |= {f"{t}/3/resolver": {"resolver": resolve} for t in "ab"}
    server = model_server(script)
    tasks = [
        {"id": t, "agent": {"prompt": f"make total {what}"}, "acceptance": [ACCEPT[t]]}
        for t, what in (("a", "skip None"), ("b", "return an int"))
    ]
    run_id = f"mq{rung}{sandbox}"
    handle = api.start(_plan(tasks), repo, run_id=run_id, sandbox=sandbox, agents=env(server))
    try:
        read = lambda: handle.events(timeout=1.0, prefixes=None)  # noqa: E731
        seen = wait_for_events(read, has("merge.conflict_predicted"), 90)
        predicted = of(seen, "merge.conflict_predicted")
        assert ("a", "b") in [p.tasks for p in predicted], "the two running branches, pairwise"
        assert all(p.files == ("calc.py",) for p in predicted)
        assert not of(seen, "task.succeeded"), "predicted before either task finished"
        open_gate(server)
        finished = handle.wait()
    finally:
        handle.shutdown()
    assert finished.status == "succeeded", finished.error
    log = api.events(run_id, repo)
    climbed = [e for e in of(log, "merge.conflicted") if e.next in ("agent", "resolver")]
    later = climbed[0].task_id
    earlier = "b" if later == "a" else "a"
    assert [(e.task_id, e.next, e.files) for e in climbed] == [
        (later, r, ("calc.py",)) for r in ("agent", "resolver")[: 1 if rung == "agent" else 2]
    ]
    assert [e.how for e in of(log, "merge.resolved", later)] == [rung]
    # the resolving agent saw the conflict and was told the other side's intent
    asked = server.requests_for(later, "worker" if rung == "agent" else "resolver")[-3:]
    first = asked[0].body["messages"][0]["content"]
    first_text = first if isinstance(first, str) else json.dumps(first)
    assert "calc.py" in first_text
    assert f"make total {'skip None' if earlier == 'a' else 'return an int'}" in first_text
    assert "<<<<<<<" in asked[1].last_user_text
    # its acceptance ran again, with the conflict-marker check, and passed
    attempt = 2 if rung == "agent" else 3
    checked = [e for e in of(log, "agent.acceptance", later) if e.attempt == attempt]  # type: ignore[attr-defined]
    assert checked
    assert all(e.passed for e in checked)  # type: ignore[attr-defined]
    assert run_git(repo, "show", f"{finished.commit}:calc.py") == BOTH
    # each agent's work in progress reached its branch after its write, before it finished
    for task in ("a", "b"):
        started = of(log, "task.started", task)[0].seq or 0
        assert started < _seq(log, "merge.conflict_predicted") < _seq(log, "task.succeeded", task)
    parents = run_git(repo, "rev-list", "--parents", "-n", "1", f"omoi/{run_id}/{earlier}").split()
    assert parents[1] == of(log, "task.started", earlier)[0].base, "the final commit folds the checkpoints"


def test_a_semantic_conflict_goes_back_to_its_agent_which_repairs_it(
    ray_address: str, make_repo: RepoFactory, model_server: Any, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "x\n"})
    # Each branch alone passes `verify`; merged together they do not, until a's agent repairs it.
    check = "test ! -f a.txt || test ! -f b.txt || grep -q together a.txt"
    gate = tmp_path / "gate"  # a finishes once b is merged: a is the one whose merge turns red
    script = {
        "tasks": {
            "a": {
                "worker": [
                    {"tools": [call("write_file", path="a.txt", content="a\n")]},
                    {"tools": [call("run", command=gate_cmd(gate, "true"))]},
                    FINISH,
                ]
            },
            "b": {"worker": [{"tools": [call("write_file", path="b.txt", content="b\n")]}, FINISH]},
            "a/2/worker": {
                "worker": [
                    {"tools": [call("write_file", path="a.txt", content="a, together with b\n")]},
                    {"tools": [call("finish", status="complete", summary="a.txt now works with b")]},
                ]
            },
        }
    }
    server = model_server(script)
    tasks = [{"id": t, "agent": {"prompt": f"write {t}.txt"}} for t in ("a", "b")]
    handle = api.start(
        _plan(tasks, verify=[check]), repo, run_id="mqrepair", sandbox="local", agents=env(server)
    )
    try:
        read = lambda: handle.events(timeout=1.0, prefixes=None)  # noqa: E731
        wait_for_events(read, has("merge.succeeded", "b"), 90)
        gate.touch()
        finished = handle.wait()
    finally:
        handle.shutdown()
    assert finished.status == "succeeded", finished.error
    log = api.events("mqrepair", repo)
    red = [e for e in of(log, "verify.failed") if e.tasks == ("a",)]
    assert [e.round for e in red] == [1, 2], "red twice: not a flake"
    (conflicted,) = of(log, "merge.conflicted", "a")
    assert conflicted.next == "agent"
    assert conflicted.files == (), "a semantic conflict names no file"
    assert [e.how for e in of(log, "merge.resolved", "a")] == ["agent"]
    told = server.requests_for("a", "worker")[-2].body["messages"][0]["content"]
    assert "broke the merged result" in json.dumps(told)
    assert run_git(repo, "show", f"{finished.commit}:a.txt") == "a, together with b\n"
    assert run_git(repo, "show", f"{finished.commit}:b.txt") == "b\n"
