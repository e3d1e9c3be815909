"""The spec actor in-process: the real model client over HTTP to the scripted server, a real git
repository, the spec committed on its own branch. Each test would fail without its feature."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omoi.runtime.log.events import SpecGateDecided, SpecGateWaiting, TaskAdded
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.spec_rig import RUN, SpecRig, approve, until

FILES = {
    "pyproject.toml": '[project]\nname = "app"\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    "app/__init__.py": "",
    "app/cli.py": "import sys\n\n\ndef main() -> None:\n    print(sys.argv)\n",
    "tests/test_cli.py": "from app.cli import main\n\n\ndef test_main() -> None:\n    main()\n",
}
REQUIREMENTS = {
    "summary": "A greeting command.",
    "requirements": [
        {
            "id": "REQ-1",
            "title": "greet by name",
            "acceptance_criteria": ["`app greet Ada` prints Hello, Ada"],
        },
        {
            "id": "REQ-2",
            "title": "document it",
            "acceptance_criteria": ["the README shows the greet command"],
        },
    ],
}
DESIGN = {
    "overview": "A greet subcommand in app/cli.py.",
    "components": [
        {"name": "cli", "responsibility": "parse argv", "files": ["app/cli.py"], "symbols": ["main"]}
    ],
    "files": [{"path": "app/cli.py", "change": "modify"}, {"path": "README.md", "change": "create"}],
}


def task(tid: str, deps: list[str], reqs: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "title": tid,
        "description": f"do {tid}",
        "deps": deps,
        "requirements": reqs,
        "acceptance": ["python -m pytest -q"],
        **extra,
    }


GOOD_TASKS = {
    "tasks": [
        task("greet", [], ["REQ-1"], files=["app/cli.py"]),
        task("docs", ["greet"], ["REQ-2"], creates=["README.md"]),
    ]
}
CYCLIC_TASKS = {"tasks": [task("greet", ["docs"], ["REQ-1"]), task("docs", ["greet"], ["REQ-2"])]}


def turns(*tools: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"tools": [{name: args}]} for name, args in tools]


def script(tasks_turns: list[dict[str, Any]] | None = None, **extra: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tasks": {
            "spec-intent": {
                "*": turns(("classify_intent", {"intent": "open_ended", "reason": "a new feature"}))
            },
            "spec-explore": {
                "*": [
                    {"tools": [{"read_file": {"path": "app/cli.py"}}]},
                    *turns(
                        ("report_findings", {"findings": [{"topic": "cli", "detail": "argv is printed"}]})
                    ),
                ]
            },
            "spec-requirements": {"*": turns(("write_requirements", REQUIREMENTS)) * 3},
            "spec-design": {"*": turns(("write_design", DESIGN)) * 3},
            "spec-tasks": {"*": tasks_turns or turns(("write_tasks", GOOD_TASKS)) * 3},
            **{k: {"*": v} for k, v in extra.items()},
        }
    }


@pytest.fixture
def rig(make_repo: RepoFactory) -> Iterator[Any]:
    made: list[SpecRig] = []

    def make(script_: dict[str, Any], **kw: Any) -> SpecRig:
        made.append(SpecRig(make_repo(FILES), script_, **kw))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def show(repo: Path, path: str) -> str:
    return run_git(repo, "show", f"omoi/{RUN}/_spec:.omoi/specs/{RUN}/{path}")


async def test_a_goal_becomes_grounded_tasks_through_every_phase(rig: Any) -> None:
    r = rig(script())
    before = checkout_fingerprint(r.repo)
    finished = await r.run()
    assert finished.status == "succeeded", finished.error
    assert [e.intent for e in r.events("spec.intent")] == ["open_ended"]  # type: ignore[attr-defined]
    completed = [e.phase for e in r.events("spec.phase_completed")]  # type: ignore[attr-defined]
    assert completed == ["explore", "requirements", "design", "tasks"]
    added = [e for e in r.events("task.added") if isinstance(e, TaskAdded)]
    assert [(t.task_id, t.spec.deps) for t in added] == [("greet", ()), ("docs", ("greet",))]
    assert added[0].spec.agent is not None
    assert f".omoi/specs/{RUN}/design.md" in added[0].spec.agent.context
    assert "REQ-1" in added[0].spec.agent.prompt
    explored = json.loads(show(r.repo, "explore.json"))
    assert "app.cli" in [m["name"] for m in explored["python"]["modules"]]
    assert explored["findings"][0]["detail"] == "argv is printed"
    assert "## REQ-1: greet by name" in show(r.repo, "requirements.md")
    assert "`app/cli.py` (modify)" in show(r.repo, "design.md")
    assert json.loads(show(r.repo, "tasks.json"))["tasks"][1]["id"] == "docs"
    assert finished.commit == run_git(r.repo, "rev-parse", f"omoi/{RUN}/_spec").strip()
    assert checkout_fingerprint(r.repo) == before  # the user's checkout is untouched
    assert not (r.repo / ".omoi").exists()


async def test_a_cyclic_task_list_is_sent_back_with_the_cycle_named(rig: Any) -> None:
    r = rig(script(turns(("write_tasks", CYCLIC_TASKS), ("write_tasks", GOOD_TASKS))))
    finished = await r.run()
    assert finished.status == "succeeded", finished.error
    tasks_evals = [e for e in r.events("spec.phase_evaluated") if e.phase == "tasks"]  # type: ignore[attr-defined]
    assert [e.passed for e in tasks_evals] == [False, True]  # type: ignore[attr-defined]
    assert any("cycle: " in i for i in tasks_evals[0].issues)  # type: ignore[attr-defined]
    second = r.server.requests_for("spec-tasks")[1]
    assert "cycle: " in second.last_user_text  # the model saw exactly what to fix
    assert "Fix every one and call write_tasks again" in second.last_user_text


async def test_unknown_dependency_untraced_requirement_and_missing_program_are_named(rig: Any) -> None:
    bad = {
        "tasks": [
            task("greet", ["nope"], ["REQ-1"]),
            {**task("docs", [], ["REQ-1"]), "acceptance": ["jest --ci"]},
        ]
    }
    r = rig(script(turns(("write_tasks", bad), ("write_tasks", GOOD_TASKS))))
    assert (await r.run()).status == "succeeded"
    feedback = r.server.requests_for("spec-tasks")[1].last_user_text
    assert "task 'greet' depends on unknown task 'nope'" in feedback
    assert "requirement REQ-2 is not traced by any task" in feedback
    assert "`jest --ci` runs 'jest', which this repository does not have" in feedback


async def test_a_phase_that_keeps_failing_its_checks_fails_with_the_reasons(rig: Any) -> None:
    r = rig(script(turns(*[("write_tasks", CYCLIC_TASKS)] * 4)))
    finished = await r.run()
    assert finished.status == "failed"
    assert finished.error is not None
    assert "phase tasks" in finished.error
    assert "after 3 retries" in finished.error
    (failed,) = r.events("spec.phase_failed")
    assert any("cycle: " in reason for reason in failed.reasons)  # type: ignore[attr-defined]
    assert not r.events("task.added")


async def test_a_human_gate_holds_every_task_until_approved_and_a_reject_sends_the_reason_back(
    rig: Any,
) -> None:
    r = rig(script(), gate="human")
    running = asyncio.create_task(r.run())

    def decide(w: SpecGateWaiting) -> SpecGateDecided:
        assert not r.events("task.added")  # nothing reaches the graph before the last approval
        assert f".omoi/specs/{RUN}/{w.phase}.md" in w.artifacts
        if (w.phase, w.attempt) == ("requirements", 1):
            return SpecGateDecided(
                run_id=RUN, phase="requirements", attempt=1, decision="reject", reason="REQ-2 is out of scope"
            )
        return approve(w)

    finished = await r.decide_gates(decide)
    assert finished.status == "succeeded", finished.error
    assert (await running).status == "succeeded"
    redo = r.server.requests_for("spec-requirements")[1]
    assert "REQ-2 is out of scope" in redo.last_user_text
    waits = [(e.phase, e.attempt) for e in r.events("spec.gate_waiting")]  # type: ignore[attr-defined]
    assert waits == [("requirements", 1), ("requirements", 2), ("design", 1), ("tasks", 1)]
    assert r.events("task.added")


async def test_a_human_gate_timeout_applies_its_policy_on_the_clock(rig: Any) -> None:
    r = rig(script(), gate="human", timeout_s=3600, on_timeout="approve")
    running = asyncio.create_task(r.run())
    after = 0
    for phase in ("requirements", "design", "tasks"):
        (waiting,) = await r.bus.read(after, ("spec.gate_waiting",), limit=1, timeout=30.0)
        after = waiting.seq or after
        assert isinstance(waiting, SpecGateWaiting)
        assert waiting.phase == phase
        await until(lambda: r.clock.sleepers > 0)  # the gate's timer, set right after it opened
        r.clock.advance(3599)
        await until(lambda: True)
        assert r.clock.sleepers == 1  # not yet
        r.clock.advance(1)
        await until(lambda: r.clock.sleepers == 0)
    finished = await asyncio.wait_for(running, 60)
    assert finished.status == "succeeded", finished.error
    decided = [e for e in r.events("spec.gate_decided") if isinstance(e, SpecGateDecided)]
    assert [(d.phase, d.by) for d in decided if d.phase != "explore"] == [
        ("requirements", "timeout"),
        ("design", "timeout"),
        ("tasks", "timeout"),
    ]


async def test_a_trivial_goal_gets_one_task_without_a_spec(rig: Any) -> None:
    r = rig(
        {"tasks": {"spec-intent": {"*": turns(("classify_intent", {"intent": "trivial", "reason": "typo"}))}}}
    )
    finished = await r.run()
    assert finished.status == "succeeded"
    (added,) = [e for e in r.events("task.added") if isinstance(e, TaskAdded)]
    assert added.spec.acceptance == ("python -m pytest -q",)
    assert not r.server.requests_for("spec-requirements")


async def test_without_a_model_decision_the_intent_falls_back_to_rules(rig: Any) -> None:
    r = rig(script(**{"spec-intent": [{"text": "I am not sure."}] * 5}))
    await r.run()
    (intent,) = r.events("spec.intent")
    assert intent.by == "rules"  # type: ignore[attr-defined]
    assert intent.intent == "open_ended"  # type: ignore[attr-defined]
    assert "the model gave no decision" in intent.reason  # type: ignore[attr-defined]


async def test_a_restarted_spec_resumes_after_its_last_completed_phase(rig: Any) -> None:
    r = rig(script(), gate="human")
    dying = r.actor()
    await r.bus.publish([r.started])
    first = asyncio.create_task(dying.run())
    await r.wait_for("spec.gate_waiting")  # requirements are written and waiting: explore is done
    await dying.stop()  # the actor dies here
    with pytest.raises(asyncio.CancelledError):
        await first
    await r.bus.publish([SpecGateDecided(run_id=RUN, phase="requirements", attempt=1, decision="approve")])
    explored = len(r.server.requests_for("spec-explore"))
    second = asyncio.create_task(r.actor().run())  # a new actor over the same log and branch
    finished = await r.decide_gates(lambda w: None if w.phase == "requirements" else approve(w))
    assert finished.status == "succeeded", finished.error
    assert (await second).status == "succeeded"
    assert len(r.server.requests_for("spec-explore")) == explored  # explore was not redone
    assert len(r.server.requests_for("spec-requirements")) == 1  # nor the approved requirements


def review(verdict: str, *issues: str) -> tuple[str, dict[str, Any]]:
    return "review", {"verdict": verdict, "issues": list(issues)}


async def test_a_reviewer_reject_redoes_the_phase_with_its_issues(rig: Any) -> None:
    okay = turns(review("OKAY"))
    r = rig(
        script(
            **{
                "spec-review-requirements": turns(review("REJECT", "REQ-2 must name the README section")),
                "spec-review-requirements/2/reviewer": okay,  # the second review, of the redone phase
                "spec-review-design": okay,
                "spec-review-tasks": okay,
            }
        ),
        gate="review",
    )
    finished = await r.run()
    assert finished.status == "succeeded", finished.error
    decided = [(e.phase, e.attempt, e.decision, e.by) for e in r.events("spec.gate_decided")]  # type: ignore[attr-defined]
    assert decided == [
        ("requirements", 1, "reject", "reviewer"),
        ("requirements", 2, "approve", "reviewer"),
        ("design", 1, "approve", "reviewer"),
        ("tasks", 1, "approve", "reviewer"),
    ]
    redo = r.server.requests_for("spec-requirements")[1]
    assert "REQ-2 must name the README section" in redo.last_user_text
    review_request = r.server.requests_for("spec-review-requirements")[0]
    assert "## REQ-1: greet by name" in review_request.last_user_text  # it reviewed the document itself
    assert {"write_file", "run"}.isdisjoint(t["name"] for t in review_request.body["tools"])  # read-only


async def test_a_reviewer_that_keeps_rejecting_fails_the_phase_after_the_bound(rig: Any) -> None:
    r = rig(
        script(**{"spec-review-requirements": turns(review("REJECT", "never good enough"))}), gate="review"
    )
    finished = await r.run()
    assert finished.status == "failed"
    assert "rejected 3 times by the reviewer" in (finished.error or "")
    assert len(r.server.requests_for("spec-requirements")) == 3
    assert not r.events("task.added")
