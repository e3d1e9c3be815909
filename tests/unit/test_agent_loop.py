"""The agent loop against the scripted model over real HTTP, in a real worktree: every feature of the
completion discipline has a test that would fail without it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from omoi.actors.bus import BusActor
from omoi.runtime.agent.loop import marker
from omoi.runtime.config import AgentSettings
from omoi.runtime.log.events import AgentAnswered, Event
from omoi.runtime.log.store import MemoryEventStore
from tests.agents import ORACLE_MODEL, AgentRig, call
from tests.conftest import RepoFactory
from tests.helpers import first_event


@pytest.fixture
def rig_for(make_repo: RepoFactory, tmp_path: Path):  # type: ignore[no-untyped-def]
    rigs: list[AgentRig] = []

    def make(script: dict[str, object], files: dict[str, str] | None = None) -> AgentRig:
        rig = AgentRig(make_repo(files or {"README.md": "hello\n"}), tmp_path / f"wt{len(rigs)}", script)
        rig.server.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.server.stop()


def worker(*ts: dict[str, object], task: str = "t1", **roles: list[dict[str, object]]) -> dict[str, object]:
    return {"tasks": {task: {"worker": list(ts), **roles}}}


async def test_tools_run_in_the_sandbox_and_every_turn_is_published_with_usage_and_cost(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        worker(
            {"text": "writing", "tools": [call("write_file", path="src/hello.py", content="print('hi')\n")]},
            {"tools": [call("run", command="python3 src/hello.py")]},
            {"tools": [call("finish", status="complete", summary="added hello")]},
        )
    )
    result = await rig.run()
    assert result.status == "complete"
    assert result.summary == "added hello"
    assert rig.sandbox is not None
    assert await rig.sandbox.read_file("src/hello.py") == "print('hi')\n"
    run_result = json.dumps(rig.server.requests[2].body["messages"][-1]["content"])
    assert "exit code 0" in run_result
    assert "hi" in run_result
    turns_ = rig.events("agent.turn")
    assert [t.turn for t in turns_] == [1, 2, 3]  # type: ignore[attr-defined]
    assert all(t.cost_usd > 0 and t.usage.output_tokens > 0 for t in turns_)  # type: ignore[attr-defined]
    assert [e.tool for e in rig.events("agent.tool_called")] == ["write_file", "run", "finish"]  # type: ignore[attr-defined]
    finished = rig.events("agent.finished")[0]
    assert finished.status == "complete"
    assert finished.turns == 3
    assert finished.cost_usd == pytest.approx(sum(t.cost_usd for t in turns_))  # type: ignore[attr-defined]


class _Batches(BusActor):
    """The in-memory bus, remembering the kinds of each publish."""

    def __init__(self) -> None:
        super().__init__(MemoryEventStore())
        self.batches: list[list[str]] = []

    async def publish(self, events: Sequence[Event]) -> list[int]:
        self.batches.append([e.kind for e in events])
        return await super().publish(events)


async def test_a_turn_of_file_operations_is_published_with_them_and_one_that_runs_a_command_before_it(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    rig = AgentRig(
        make_repo({"README.md": "hello\n"}),
        tmp_path / "wt",
        worker(
            {"tools": [call("read_file", path="README.md"), call("search", pattern="hello")]},
            {"tools": [call("run", command=f"while [ ! -e {go} ]; do sleep 0.05; done; echo went")]},
            {"tools": [call("finish", status="complete", summary="done")]},
        ),
        bus=_Batches(),
    )
    with rig.server:
        running = asyncio.create_task(rig.run())
        # The command waits for the file, and the file waits for the turn that runs it: a turn
        # published only after its command would never be seen here.
        second = await first_event(rig.bus, "agent.turn", 30, where=lambda e: e.turn == 2)  # type: ignore[attr-defined]
        assert not running.done()
        go.touch()
        assert (await asyncio.wait_for(running, 30)).status == "complete"
    assert second.tool_calls == ("run",)  # type: ignore[attr-defined]
    turns = [b for b in rig.bus.batches if "agent.turn" in b or "agent.tool_called" in b]  # type: ignore[attr-defined]
    assert turns == [
        ["agent.turn", "agent.tool_called", "agent.tool_called"],  # quick tools: one publish
        ["agent.turn"],  # before the command
        ["agent.tool_called"],
        ["agent.turn", "agent.tool_called"],
    ]


async def test_the_stable_prefix_is_cached_after_the_first_turn(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(worker({"tools": [call("list_files")]}, {"text": "done [TASK COMPLETE]"}))
    await rig.run()
    first, second = (t.usage for t in rig.events("agent.turn"))  # type: ignore[attr-defined]
    assert first.cache_write_tokens > 0
    assert first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_write_tokens
    assert second.cache_write_tokens == 0
    assert rig.server.requests[0].body["system"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_edit_errors_come_back_with_recovery_guidance_and_the_agent_recovers(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        worker(
            {"tools": [call("edit_file", path="cfg.py", old="x = 1", new="x = 2")]},
            {"tools": [call("edit_file", path="cfg.py", old="x  =  1", new="x = 2")]},
            {"tools": [call("read_file", path="cfg.py")]},
            {"tools": [call("edit_file", path="cfg.py", old="y = 0\nx = 1", new="y = 0\nx = 2")]},
            {"text": "[TASK COMPLETE]"},
        ),
        files={"cfg.py": "x = 1\ny = 0\nx = 1\n"},
    )
    result = await rig.run()
    assert result.status == "complete"
    after_ambiguous = rig.server.requests[1].last_user_text
    assert "found 2 times" in after_ambiguous
    assert "Re-read the file" in after_ambiguous
    after_missing = rig.server.requests[2].last_user_text
    assert "not found" in after_missing
    assert "re-read it with read_file" in after_missing
    assert rig.sandbox is not None
    assert await rig.sandbox.read_file("cfg.py") == "x = 1\ny = 0\nx = 2\n"


async def test_open_todos_get_the_agent_reprompted_with_the_open_items(rig_for) -> None:  # type: ignore[no-untyped-def]
    todo = [{"text": "write the parser", "done": True}, {"text": "write the parser tests", "done": False}]
    rig = rig_for(
        worker(
            {"tools": [call("todo_write", items=todo)]},
            {"text": "All good. [TASK COMPLETE]"},
            {"tools": [call("todo_write", items=[{**t, "done": True} for t in todo])]},
            {"tools": [call("finish", status="complete", summary="parser and tests")]},
        )
    )
    result = await rig.run()
    assert result.status == "complete"
    reminder = rig.server.requests[2].last_user_text
    assert "still has open items" in reminder
    assert "write the parser tests" in reminder
    assert "- write the parser\n" not in reminder  # only the open ones


async def test_an_agent_that_keeps_stopping_without_finishing_fails_after_the_bounded_reminders(
    rig_for,
) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(worker(*[{"text": "I think that is it."}] * 3))
    result = await rig.run(settings=AgentSettings(continuations=2))
    assert result.status == "failed"
    assert "after 2 reminders" in result.summary
    assert len(rig.server.requests) == 3


async def test_failed_acceptance_is_fed_back_and_repaired(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        worker(
            {
                "tools": [
                    call("write_file", path="answer.txt", content="41\n"),
                    call("finish", status="complete", summary="x"),
                ]
            },
            {
                "tools": [
                    call("write_file", path="answer.txt", content="42\n"),
                    call("finish", status="complete", summary="y"),
                ]
            },
        )
    )
    result = await rig.run(acceptance=["grep -qx 42 answer.txt || { echo 'answer is wrong'; exit 3; }"])
    assert result.status == "complete"
    assert result.summary == "y"
    feedback = rig.server.requests[1].last_user_text
    assert "Acceptance failed" in feedback
    assert "exited with 3" in feedback
    assert "answer is wrong" in feedback
    rounds = [(e.round, e.passed) for e in rig.events("agent.acceptance")]  # type: ignore[attr-defined]
    assert rounds == [(1, False), (2, True)]


async def test_repairs_are_bounded(rig_for) -> None:  # type: ignore[no-untyped-def]
    done = {"tools": [call("finish", status="complete", summary="done")]}
    rig = rig_for(worker(*[done] * 3))
    result = await rig.run(acceptance=["false"], repairs=2)
    assert result.status == "failed"
    assert "after 2 repair rounds" in result.summary
    assert len(rig.events("agent.acceptance")) == 3


async def test_three_failed_rounds_bring_in_the_oracle_whose_advice_reaches_the_worker(rig_for) -> None:  # type: ignore[no-untyped-def]
    fail = {"tools": [call("finish", status="complete", summary="try")]}
    fix = {
        "tools": [
            call("write_file", path="ok", content=""),
            call("finish", status="complete", summary="fixed"),
        ]
    }
    oracle = [
        {"tools": [call("read_file", path="README.md")]},
        {"text": "ADVICE: the check wants a file named ok; create it."},
    ]
    rig = rig_for(worker(fail, fail, fail, fix, oracle=oracle))
    result = await rig.run(acceptance=["test -e ok"])
    assert result.status == "complete"
    consult = rig.server.requests_for("t1", "oracle")
    assert consult
    assert all(r.model == ORACLE_MODEL for r in consult)
    assert "Failed round 3" in json.dumps(consult[0].body["messages"][0])
    worker_requests = rig.server.requests_for("t1", "worker")
    assert "ADVICE: the check wants a file named ok" in worker_requests[3].last_user_text
    assert "ADVICE" not in worker_requests[2].last_user_text  # not before the third failure
    (escalated,) = rig.events("agent.escalated")
    assert escalated.failed_rounds == 3  # type: ignore[attr-defined]
    oracle_tools = [e for e in rig.events("agent.tool_called") if e.role == "oracle"]  # type: ignore[attr-defined]
    assert [e.tool for e in oracle_tools] == ["read_file"]  # type: ignore[attr-defined]


async def test_need_input_pauses_until_an_answer_event_arrives(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        worker(
            {"tools": [call("finish", status="need_input", summary="Which port should the server use?")]},
            {"text": "Using it. [TASK COMPLETE]"},
        )
    )
    running = asyncio.create_task(rig.run())
    question = await rig.wait_for("agent.needs_input")
    assert question.question == "Which port should the server use?"  # type: ignore[attr-defined]
    assert len(rig.server.requests) == 1
    assert not running.done()
    await rig.bus.publish([AgentAnswered(run_id="r", task_id="other", answer="not for you")])
    await rig.bus.publish([AgentAnswered(run_id="r", task_id="t1", answer="port 8443")])
    result = await asyncio.wait_for(running, 30)
    assert result.status == "complete"
    assert "port 8443" in rig.server.requests[1].last_user_text


async def test_blocked_fails_the_attempt_with_the_reason(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(worker({"text": "I looked around.\n[BLOCKED: the database schema is missing]"}))
    result = await rig.run()
    assert result.status == "failed"
    assert result.summary == "blocked: the database schema is missing"


async def test_an_explorer_cannot_write_and_the_denial_is_published(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        {
            "tasks": {
                "t1": {
                    "explorer": [
                        {"tools": [call("write_file", path="notes.py", content="x")]},
                        {"tools": [call("run", command="touch pwned")]},
                        {"text": "[TASK COMPLETE]"},
                    ]
                }
            }
        }
    )
    result = await rig.run(role="explorer")
    assert result.status == "complete"
    denied = rig.events("agent.tool_denied")
    assert [(e.tool, "explorer role may not use" in e.reason) for e in denied] == [  # type: ignore[attr-defined]
        ("write_file", True),
        ("run", True),
    ]
    assert rig.sandbox is not None
    assert "notes.py" not in await rig.sandbox.list_files()
    assert "pwned" not in await rig.sandbox.list_files()
    assert "denied" in rig.server.requests[1].last_user_text
    offered = {t["name"] for t in rig.server.requests[0].body["tools"]}
    assert "write_file" not in offered
    assert "run" not in offered
    assert "read_file" in offered


async def test_a_planner_writes_markdown_only(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        {
            "tasks": {
                "t1": {
                    "planner": [
                        {"tools": [call("write_file", path="docs/plan.md", content="# plan\n")]},
                        {"tools": [call("write_file", path="app.py", content="x = 1\n")]},
                        {"text": "[TASK COMPLETE]"},
                    ]
                }
            }
        }
    )
    await rig.run(role="planner")
    assert rig.sandbox is not None
    assert "docs/plan.md" in await rig.sandbox.list_files()
    assert "app.py" not in await rig.sandbox.list_files()
    (denied,) = rig.events("agent.tool_denied")
    assert "only write Markdown" in denied.reason  # type: ignore[attr-defined]


async def test_malformed_tool_input_is_answered_with_the_problem_and_a_discovery_is_recorded(rig_for) -> None:  # type: ignore[no-untyped-def]
    rig = rig_for(
        worker(
            {"tools": [call("read_file", file="README.md")]},
            {
                "tools": [
                    call("report_discovery", type="bug", title="README is terse", description="one word")
                ]
            },
            {"text": "[TASK COMPLETE]"},
        )
    )
    await rig.run()
    feedback = rig.server.requests[1].last_user_text
    assert "invalid arguments for read_file" in feedback
    assert "path" in feedback
    assert "file" in feedback
    (found,) = rig.events("agent.discovery")
    assert (found.type, found.title, found.blocks_current) == ("bug", "README is terse", False)  # type: ignore[attr-defined]


def test_markers_are_recognised_only_at_the_end_of_a_message() -> None:
    assert marker("all done\n[TASK COMPLETE]") == ("complete", "all done")
    assert marker("[BLOCKED: no access to the DB]  \n") == ("blocked", "no access to the DB")
    assert marker("[NEED INPUT: which region?]") == ("need_input", "which region?")
    assert marker("I will say [TASK COMPLETE] when done, not yet") is None
