"""The guardian's model calls: the guardian actor over an in-memory log, asking the scripted model
server through the real SDK. An assessment is asked for only on the timer, past the grace period,
when a signal or the cheap filter says so; one that asks for steering becomes a steer; one that
fails or makes no sense is "unknown" and never hides a deterministic signal. The ladder climbs
across a task's attempts, and its replan rung has a planner rewrite the task for the next one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from omoi.actors.bus import BusActor
from omoi.actors.guardian import GuardianActor
from omoi.policies.model_calls import ModelRules
from omoi.policies.supervision.assessment import AssessRules
from omoi.policies.supervision.guardian import GuardianRules
from omoi.runtime.config import ModelSettings
from omoi.runtime.log.events import (
    AgentHeartbeat,
    AgentStarted,
    AgentToolCalled,
    AgentTurn,
    GuardianDelivered,
    RunStarted,
    TaskRetrying,
)
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.testing import FakeClock

WHO: dict[str, Any] = {"run_id": "r", "task_id": "t1", "attempt": 1, "agent": "t1/1/worker", "role": "worker"}
FAILING = ("run", {"command": "pytest tests/test_auth.py"}, "exit code 1\nImportError: no module jwt", True)
READING = ("read_file", {"path": "auth.py"}, "TOKEN = None\n", False)


def assess(**answer: Any) -> dict[str, Any]:
    return {"tools": [{"name": "report_assessment", "input": answer}]}


STEER = assess(
    aligned=False,
    score=0.2,
    needs_steering=True,
    steering_type="correction",
    recommendation="install nothing; read auth.py and use the token helper there",
    summary="runs the failing tests again and again",
)
ALIGNED = assess(aligned=True, score=0.9, needs_steering=False, recommendation="", summary="fine")


class Run:
    """A guardian over a log the test writes an agent's trajectory into by hand."""

    def __init__(
        self, server: ScriptedModelServer, clock: FakeClock, rules: GuardianRules | None = None
    ) -> None:
        self.bus, self.clock, self.turn = BusActor(MemoryEventStore()), clock, 0
        settings = ModelSettings(base_url=server.url, max_tries=1)
        model = AnthropicModel(settings, ModelRules(max_tries=1), clock=clock)
        rules = rules or GuardianRules(cooldown_s=0, assess=AssessRules(grace_s=60))
        self.guardian = GuardianActor(  # the test ticks: the timer's interval is never reached
            "r", self.bus, rules=rules, interval=1e6, clock=clock, model=model, model_name="q"
        )

    async def start(self) -> None:
        await self.bus.publish(
            [
                RunStarted(run_id="r", repo="x", base_commit="c", ts=self.clock.now()),
                AgentStarted(**WHO, model="m", ts=self.clock.now()),
            ]
        )

    async def turns(self, *calls: tuple[str, dict[str, Any], str, bool]) -> None:
        """One turn per call, each in the log before the next."""
        for tool, args, result, failed in calls:
            self.turn += 1
            now = self.clock.now()
            await self.bus.publish(
                [
                    AgentTurn(**WHO, turn=self.turn, model="m", tool_calls=(tool,), ts=now),
                    AgentToolCalled(
                        **WHO, turn=self.turn, tool=tool, arguments=json.dumps(args), result=result,
                        is_error=failed, ts=now,
                    ),
                ]
            )  # fmt: skip
        last = (await self.bus.read(0))[-1].seq or 0
        await self.guardian.caught_up(last)

    async def events(self, kind: str) -> list[Any]:
        return [e for e in await self.bus.read(0) if e.kind == kind]


def server(answer: dict[str, Any], **more: Any) -> ScriptedModelServer:
    """An assessment is one conversation per attempt (`task/attempt/guardian`), a replan one per
    new attempt (`task/attempt/planner`)."""
    return ScriptedModelServer(parse_script({"tasks": {"t1/1/guardian": {"guardian": [answer]}, **more}}))


async def test_an_assessment_asking_for_steering_steers_the_agent_with_its_recommendation() -> None:
    clock = FakeClock()
    with server(STEER) as model:
        run = Run(model, clock)
        await run.start()
        # Half the calls fail: the cheap filter flags the attempt, but not within its grace period.
        await run.turns(READING, FAILING, READING, FAILING)
        assert await run.guardian.tick() == 0
        assert model.requests == []
        clock.advance(61)
        assert await run.guardian.tick() == 1
        (request,) = model.requests
        assert request.role == "guardian"
        assert request.model == "q"
        shown = request.last_user_text
        assert "pytest tests/test_auth.py" in shown
        assert "ImportError: no module jwt" in shown
        (assessed,) = await run.events("guardian.assessed")
        assert (assessed.verdict, assessed.score, assessed.steering_type) == ("drifting", 0.2, "correction")
        assert assessed.reason == "filter: 2 of the last 4 calls failed"
        assert assessed.usage.total > 0
        await run.guardian.caught_up(assessed.seq)
        (steer,) = await run.events("guardian.intervened")
        assert steer.action == "steer"
        assert [s.name for s in steer.signals] == ["assessment"]
        assert "read auth.py and use the token helper there" in steer.message
        assert (await run.guardian.before_turn("t1", 1, after=steer.seq))[0].ref == steer.seq
        # Nothing new happened: the next tick asks nothing.
        assert await run.guardian.tick() == 0
        await run.guardian.stop()


async def _unknown_then_signal(answer: dict[str, Any], error: str) -> None:
    clock = FakeClock()
    with server(answer) as model:
        run = Run(model, clock)
        await run.start()
        clock.advance(61)
        await run.turns(READING, FAILING, READING, FAILING)
        assert await run.guardian.tick() == 1
        (assessed,) = await run.events("guardian.assessed")
        assert assessed.verdict == "unknown"
        assert error in assessed.error
        await run.guardian.caught_up(assessed.seq)
        assert await run.events("guardian.intervened") == []
        # The third failure of the same call is a deterministic signal: it is acted on.
        await run.turns(FAILING)
        (steer,) = await run.events("guardian.intervened")
        assert [s.name for s in steer.signals] == ["action_error_loop"]
        await run.guardian.stop()


async def test_an_answer_that_is_not_an_assessment_is_unknown_and_hides_no_signal() -> None:
    await _unknown_then_signal({"text": "Looks good to me!"}, "did not call report_assessment")


async def test_an_assessment_with_a_wrong_field_is_unknown_and_hides_no_signal() -> None:
    await _unknown_then_signal(
        assess(aligned=True, score=7, needs_steering=False, recommendation="", summary=""),
        "report_assessment.score",
    )


async def test_a_failed_model_call_is_unknown_and_hides_no_signal() -> None:
    await _unknown_then_signal({"faults": [{"status": 500, "times": 5}], "text": "late"}, "model call failed")


async def test_an_aligned_assessment_hides_no_signal() -> None:
    clock = FakeClock()
    with server(ALIGNED) as model:
        run = Run(model, clock)
        await run.start()
        clock.advance(61)
        await run.turns(READING, FAILING, READING, FAILING)
        assert await run.guardian.tick() == 1
        (assessed,) = await run.events("guardian.assessed")
        assert assessed.verdict == "aligned"
        await run.guardian.caught_up(assessed.seq)
        await run.turns(FAILING)
        (steer,) = await run.events("guardian.intervened")
        assert [s.name for s in steer.signals] == ["action_error_loop"]
        await run.guardian.stop()


REWRITE = {
    "tools": [
        {
            "name": "rewrite_task",
            "input": {
                "prompt": "Read auth.py first. Add the JWT helper with the stdlib hmac module; no package.",
                "rationale": "the attempts kept importing a package that is not installed",
            },
        }
    ]
}


async def _climb(run: Run) -> Any:
    """Steer, steer, restart on attempt 1, then the same failure on attempt 2: the replan rung."""
    for _ in range(2):
        await run.turns(FAILING, FAILING, FAILING)
        steer = (await run.events("guardian.intervened"))[-1]
        assert steer.action == "steer"
        (seq,) = await run.bus.publish(
            [GuardianDelivered(**WHO, intervention=steer.seq, turn=run.turn + 1, ts=run.clock.now())]
        )
        await run.guardian.caught_up(seq)
    await run.turns(FAILING, FAILING, FAILING)
    assert [e.action for e in await run.events("guardian.intervened")] == ["steer", "steer", "restart"]
    WHO["attempt"], WHO["agent"], run.turn = 2, "t1/2/worker", 0
    try:
        await run.bus.publish(
            [
                TaskRetrying(
                    run_id="r", task_id="t1", attempt=1, reason="restarted", counts_as_failure=False
                ),
                AgentStarted(**WHO, model="m", ts=run.clock.now()),
            ]
        )
        await run.turns(FAILING, FAILING, FAILING)
    finally:
        WHO["attempt"], WHO["agent"] = 1, "t1/1/worker"
    *_, replan = await run.events("guardian.intervened")
    assert (replan.action, replan.attempt) == ("replan", 2)
    return replan


async def test_the_replan_rung_has_a_planner_rewrite_the_task_for_the_next_attempt() -> None:
    clock = FakeClock()
    with server(ALIGNED, **{"t1/3/planner": {"planner": [REWRITE]}}) as model:
        run = Run(model, clock)
        await run.start()
        replan = await _climb(run)
        replanned = await _wait_for(run, "guardian.replanned")
        assert (replanned.attempt, replanned.intervention, replanned.error) == (3, replan.seq, "")
        (request,) = model.requests_for("t1", "planner")
        assert "one call failed 3 times" in request.last_user_text  # why the attempts were stopped
        assert "pytest tests/test_auth.py" in request.last_user_text
        notes = await run.guardian.before_turn("t1", 3, after=replanned.seq)
        assert [n.ref for n in notes] == [replanned.seq]
        assert "Read auth.py first. Add the JWT helper with the stdlib hmac module" in notes[0].text
        assert notes[0].text.startswith("[omoi guardian] This is a new attempt")
        await run.guardian.stop()


async def test_a_planner_that_fails_lets_the_next_attempt_go_on_with_the_rung_s_words() -> None:
    clock = FakeClock()
    with server(ALIGNED, **{"t1/3/planner": {"planner": [{"text": "no idea"}]}}) as model:
        run = Run(model, clock)
        await run.start()
        replan = await _climb(run)
        replanned = await _wait_for(run, "guardian.replanned")
        assert replanned.error == "the reply did not call rewrite_task"
        assert replanned.note == ""
        notes = await run.guardian.before_turn("t1", 3, after=replanned.seq)
        assert [(n.ref, n.text) for n in notes] == [(replan.seq, replan.message)]
        await run.guardian.stop()


async def _wait_for(run: Run, kind: str) -> Any:
    async with asyncio.timeout(10):
        while not (found := await run.events(kind)):
            await run.bus.read((await run.bus.read(0))[-1].seq or 0, timeout=1.0)
    return found[0]


async def test_an_attempt_that_misses_three_heartbeats_is_restarted_at_once() -> None:
    clock = FakeClock()
    with server(ALIGNED) as model:
        run = Run(model, clock, GuardianRules(cooldown_s=300, assess=AssessRules(grace_s=1e6)))
        await run.start()
        await run.turns(READING)
        clock.advance(70)  # two heartbeats missed: degraded, not yet acted on
        assert await run.guardian.tick() == 0
        (seq,) = await run.bus.publish([AgentHeartbeat(**WHO, ts=clock.now())])
        await run.guardian.caught_up(seq)
        clock.advance(80)  # the heartbeat counts as a sign of life: two missed again
        assert await run.guardian.tick() == 0
        clock.advance(15)
        assert await run.guardian.tick() == 2
        (restart,) = await run.events("guardian.intervened")
        assert (restart.action, [s.name for s in restart.signals]) == ("restart", ["heartbeat"])
        assert "unresponsive: no sign of life for 95s (3 heartbeats missed)" in restart.message
        (request,) = await run.events("task.restart_requested")
        assert (request.attempt, request.keep_work) == (1, True), "it goes on on its own branch"
        await run.guardian.stop()
