"""The guardian: a real agent loop (real sandbox, the real SDK against the scripted model server)
watched by the guardian actor over an in-memory log. What the guardian decides reaches the model
in the agent's next request; a restart request stops the attempt in the graph and starts it anew."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from omoi.actors.guardian import GuardianActor
from omoi.policies.supervision.guardian import GuardianRules
from omoi.runtime.config import AgentSettings
from omoi.runtime.log.events import AgentPaused, AgentResumed, Event, RunStarted, TaskRestartRequested
from omoi.runtime.run.state import fold
from omoi.runtime.testing import FakeClock
from tests.agents import AgentRig, call
from tests.conftest import RepoFactory
from tests.helpers import eventually
from tests.unit.test_graph_actor import Harness, settle, t

TAG = "[omoi guardian]"
FAIL = {"tools": [call("run", command="echo 'no such module: jwt' >&2; exit 3")]}
FINISH = {"tools": [call("finish", status="complete", summary="done")]}


def guardian(rig: AgentRig, *, cooldown: float = 0.0, enabled: bool = True) -> GuardianActor:
    return GuardianActor(
        "r", rig.bus, rules=GuardianRules(cooldown_s=cooldown), enabled=enabled, clock=FakeClock()
    )


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


def of(events: list[Event], kind: str) -> list[Any]:
    return [e for e in events if e.kind == kind]


async def test_a_repeated_failing_command_is_steered_then_the_attempt_is_restarted(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [FAIL] * 9 + [FINISH]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    g = guardian(rig)
    with rig.server:
        running = asyncio.create_task(rig.run(supervision=g))
        await rig.wait_for("task.restart_requested")
        # Being restarted, the attempt makes no more model calls: the graph will stop it.
        await eventually(lambda: _is(g.held(), [("t1", 1)]), "the agent is held before its tenth call")
        assert len(rig.server.requests) == 9
        assert not running.done()
        running.cancel()
        await g.stop()
    texts = [r.last_user_text for r in rig.server.requests]
    # The third identical failure is enough to act on: the fourth request carries the steer. The
    # restart's words are for the next attempt (the graph starts it; see the last test).
    assert [i for i, text in enumerate(texts) if TAG in text] == [3, 6]
    assert "exit code 3" in texts[3]
    assert texts[3].index("exit code 3") < texts[3].index(TAG)
    log = rig.events()
    actions = [(e.action, e.turn) for e in of(log, "guardian.intervened")]
    assert actions == [("steer", 3), ("steer", 6), ("restart", 9)]
    delivered = of(log, "guardian.delivered")
    steers = of(log, "guardian.intervened")
    assert [(d.intervention, d.turn) for d in delivered] == [(steers[0].seq, 4), (steers[1].seq, 7)]
    (restart,) = of(log, "task.restart_requested")
    assert (restart.task_id, restart.attempt) == ("t1", 1)
    assert "one call failed 3 times" in restart.reason
    # The first steer did not work: the same call kept failing for three more turns.
    (first, *_) = of(log, "guardian.outcome")
    assert (first.intervention, first.worked, first.still) == (steers[0].seq, False, ("action_error_loop",))


async def test_a_guardian_started_again_rebuilds_from_the_log_and_repeats_nothing(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [FAIL] * 4 + [FINISH]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    first = guardian(rig, cooldown=300.0)
    with rig.server:
        await rig.run(supervision=first)
    await first.stop()
    before = [e.id for e in rig.events() if e.kind.startswith("guardian.")]
    assert len(of(rig.events(), "guardian.intervened")) == 1  # the cooldown holds the second one
    second = guardian(rig, cooldown=300.0)
    last = rig.events()[-1].seq or 0
    assert await second.before_turn("t1", 1, after=last) == []  # caught up; the steer was read
    assert await second.tick() == 0
    assert [e.id for e in rig.events() if e.kind.startswith("guardian.")] == before
    await second.stop()


async def test_with_supervision_off_nothing_is_decided(make_repo: RepoFactory, tmp_path: Path) -> None:
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [FAIL] * 5 + [FINISH]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    with rig.server:
        assert (await rig.run(supervision=guardian(rig, enabled=False))).status == "complete"
    assert not [e for e in rig.events() if e.kind.startswith("guardian.")]
    assert not any(TAG in r.last_user_text for r in rig.server.requests)


async def test_a_paused_agent_waits_before_its_next_model_call_until_resumed(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [FINISH]}}})
    await rig.bus.publish(
        [RunStarted(run_id="r", repo="x", base_commit="c"), AgentPaused(run_id="r", task_id="t1")]
    )
    g = guardian(rig)
    with rig.server:
        running = asyncio.create_task(rig.run(supervision=g))
        started = await rig.wait_for("agent.started")
        # The guardian has judged the log past the agent's start, and the agent still waits.
        await asyncio.wait_for(g.caught_up(started.seq or 0), 10)
        await settle()
        assert rig.server.requests == []
        assert not running.done()
        await rig.bus.publish([AgentResumed(run_id="r", task_id="t1")])
        result = await asyncio.wait_for(running, 30)
    assert result.status == "complete"
    assert len(rig.server.requests) == 1


@pytest.mark.parametrize("keep_work", [False, True])
async def test_a_restart_request_stops_the_attempt_and_starts_it_again_without_a_failure(
    keep_work: bool,
) -> None:
    """A rollback starts over from the integration head; an unresponsive attempt's restart
    (`keep_work`) goes on from its branch, and says so in the log and in the request."""
    h = Harness([t("a"), t("b", "a")], manual=True)
    await h.seed()
    g = h.graph()
    run = asyncio.ensure_future(g.run())
    await settle()
    ask = TaskRestartRequested(run_id="r", task_id="a", attempt=1, reason="stuck", keep_work=keep_work)
    await h.bus.publish([ask])
    await settle()
    assert ("a", 1) in h.executor.cancelled
    h.executor.release("a", "b")
    finished = await asyncio.wait_for(run, 5)
    state = fold("r", await h.log())
    assert finished.status == "succeeded"
    assert (state.tasks["a"].attempt, state.tasks["a"].failures) == (2, 0)
    (retry,) = [e for e in await h.log() if e.kind == "task.retrying"]
    assert retry.reason == "restarted: stuck"  # type: ignore[union-attr]
    started = [(e.attempt, e.keep_work) for e in of(await h.log(), "task.started") if e.task_id == "a"]
    assert started == [(1, False), (2, keep_work)]
    assert [(r.attempt, r.keep_work) for r in h.executor.requests if r.task_id == "a"] == started


async def test_a_quiet_agent_says_it_is_alive_while_its_model_call_is_slow(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    slow = {"tools": [call("finish", status="complete", summary="done")], "delay": 1.0}
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [slow]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    with rig.server:
        result = await rig.run(settings=AgentSettings(heartbeat_interval=0.2))
    assert result.status == "complete"
    kinds = [e.kind for e in rig.events() if e.kind.startswith("agent.")]
    first_turn = kinds.index("agent.turn")
    assert kinds[0] == "agent.started"
    assert "agent.heartbeat" in kinds[:first_turn]  # during the slow call, nothing else was said


async def test_an_agent_whose_sandbox_is_down_misses_its_heartbeats(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    """The same slow call, but the attempt's sandbox is gone: the agent says nothing for it, so
    the guardian counts the beats missed and restarts the attempt."""
    slow = {"tools": [call("finish", status="complete", summary="done")], "delay": 1.0}
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [slow]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c")])
    with rig.server:
        result = await rig.run(settings=AgentSettings(heartbeat_interval=0.2), sandbox_down=True)
    assert result.status == "complete"
    kinds = [e.kind for e in rig.events() if e.kind.startswith("agent.")]
    assert "agent.turn" in kinds
    assert "agent.heartbeat" not in kinds
