"""What may be injected into a run's log, through the one path every way in takes: the kind is
allowed, the fields are valid, the run takes it now; refused with the field named and nothing
written; a retried id is the same event."""

from __future__ import annotations

from pathlib import Path

import pytest

from omoi import api
from omoi.runtime.errors import InjectionRefused
from omoi.runtime.log.events import AgentNeedsInput, RunFinished, TaskStarted
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.paths import locate
from omoi.runtime.run.plan import parse_plan
from omoi.runtime.run.tasks import TaskSpec
from tests.conftest import RepoFactory

PLAN = """
tasks:
  - {id: build, run: "true"}
  - {id: auth, deps: [build], agent: {prompt: "Add JWT authentication"}}
"""


def _run(repo: Path, *more: object) -> str:
    paths, first = plan_new_run(parse_plan(PLAN), repo, RunOptions(run_id="live", sandbox="local"))
    paths.run_dir.mkdir(parents=True)
    log = open_log(paths, create=True)
    log.append([*first, *more])  # type: ignore[list-item]
    log.close()
    return "live"


def _count(repo: Path) -> int:
    return len(api.events("live", repo))


@pytest.mark.parametrize(
    ("kind", "data", "why", "field", "words"),
    [
        ("task.succeeded", {"task_id": "auth"}, "forbidden", "kind", "is written by the run itself"),
        ("task.exploded", {}, "invalid", "kind", "unknown kind 'task.exploded'; one of: agent.answered"),
        ("agent.message", {"task_id": "auth", "text": ""}, "invalid", "data.text", "at least 1 character"),
        (
            "agent.message",
            {"task_id": "auth", "text": "hi", "colour": "red"},
            "invalid",
            "data.colour",
            "Extra",
        ),
        (
            "agent.message",
            {"task_id": "nope", "text": "hi"},
            "not_found",
            "data.task_id",
            "has no task 'nope'",
        ),
        ("agent.message", {"task_id": "build", "text": "hi"}, "conflict", "data.task_id", "runs a command"),
        (
            "agent.message",
            {"task_id": "auth", "text": "hi", "run_id": "x"},
            "invalid",
            "data.run_id",
            "set by omoi",
        ),
        (
            "agent.answered",
            {"task_id": "auth", "answer": "HS256"},
            "conflict",
            "data.task_id",
            "no open question",
        ),
        ("agent.resumed", {"task_id": "auth"}, "conflict", None, "is not paused"),
        ("budget.raised", {"add_usd": -1}, "invalid", "data.add_usd", "greater than or equal to 0"),
        ("budget.raised", {"scope": "zzz", "add_usd": 1}, "not_found", "data.scope", "no task 'zzz'"),
        (
            "discovery.decided",
            {"discovery": 7, "decision": "approve"},
            "conflict",
            "data.discovery",
            "none is waiting",
        ),
        (
            "spec.gate_decided",
            {"phase": "design", "decision": "approve"},
            "conflict",
            "data.phase",
            "no phase is",
        ),
        (
            "task.added",
            {"spec": {"id": "x", "deps": ["ghost"], "run": "true"}},
            "conflict",
            "data.spec",
            "ghost",
        ),
        ("task.added", {"spec": {"id": "auth", "run": "true"}}, "conflict", "data.spec", "auth"),
    ],
)
def test_a_refused_injection_names_what_is_wrong_and_writes_nothing(
    make_repo: RepoFactory, kind: str, data: dict[str, object], why: str, field: str | None, words: str
) -> None:
    repo = make_repo()
    _run(repo)
    before = _count(repo)
    with pytest.raises(InjectionRefused) as refused:
        api.inject_kind("live", repo, kind, data)
    assert (refused.value.why, refused.value.field) == (why, field)
    assert words in str(refused.value)
    assert refused.value.status == {"invalid": 422, "forbidden": 403, "not_found": 404, "conflict": 409}[why]
    assert _count(repo) == before


def test_an_accepted_injection_is_filled_in_from_the_run_and_a_retry_is_the_same_event(
    make_repo: RepoFactory,
) -> None:
    repo = make_repo()
    started = TaskStarted(run_id="live", task_id="auth", attempt=2, sandbox="s0")
    asked = AgentNeedsInput(
        run_id="live", task_id="auth", attempt=2, agent="w", role="worker", question="alg?"
    )
    _run(repo, started, asked)
    seq = api.inject_kind("live", repo, "agent.message", {"task_id": "auth", "text": "use HS256"}, id="m-1")
    again = api.inject_kind("live", repo, "agent.message", {"task_id": "auth", "text": "use HS256"}, id="m-1")
    assert again == seq
    (msg,) = api.events("live", repo, kind="agent.message")
    assert (msg.seq, msg.attempt, msg.text, msg.source) == (seq, 2, "use HS256", "user")  # type: ignore[union-attr]
    api.answer("live", "auth", "HS256", repo)
    (answered,) = api.events("live", repo, kind="agent.answered")
    assert answered.attempt == 2  # type: ignore[union-attr]
    spec = {"id": "docs", "deps": ["auth"], "agent": {"prompt": "Document the login"}}
    (added,) = api.add_tasks("live", repo, [TaskSpec.model_validate(spec)])
    (ev,) = [e for e in api.events("live", repo, kind="task.added") if e.seq == added]
    assert (ev.task_id, ev.order) == ("docs", 2)  # type: ignore[union-attr]
    assert list(api.status("live", repo).graph.deps("docs")) == ["auth"]


def test_nothing_is_injected_into_a_finished_run(make_repo: RepoFactory) -> None:
    repo = make_repo()
    _run(repo, RunFinished(run_id="live", status="succeeded"))
    with pytest.raises(
        InjectionRefused, match=r"has finished \(succeeded\); nothing can be injected"
    ) as refused:
        api.cancel("live", repo)
    assert refused.value.status == 409
    assert locate(repo, "live").exists()
