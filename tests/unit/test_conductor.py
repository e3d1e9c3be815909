"""The conductor actor over an in-memory log, next to a real graph actor (scripted sandboxes, held
mid-flight) and a guardian: duplicate work waits for the task it duplicates, agents that share
files are told about each other in their next request, and on its timer the conductor says when
the run is stalled on a person and how its budget is paced."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omoi.actors.conductor import ConductorActor
from omoi.actors.discovery import DiscoveryActor
from omoi.actors.guardian import GuardianActor
from omoi.policies.model_calls import ModelRules
from omoi.policies.supervision.conductor import assess, diagnose
from omoi.runtime.config import ModelSettings
from omoi.runtime.log.events import AgentNeedsInput, Event, GuardianDelivered
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.run.state import fold
from omoi.runtime.run.tasks import AgentSpec, TaskSpec
from omoi.runtime.supervision.conduct import ConductorState
from tests.unit.test_graph_actor import Harness, settle

TAG = "[omoi conductor]"
LOGIN = "Add a login endpoint that checks the password hash and returns a signed session token"


def agent(task_id: str, prompt: str, *context: str, **kw: Any) -> TaskSpec:
    return TaskSpec(id=task_id, agent=AgentSpec(prompt=prompt, context=context), **kw)


def of(events: list[Event], kind: str, task: str | None = None) -> list[Any]:
    return [e for e in events if e.kind == kind and task in (None, getattr(e, "task_id", None))]


async def _until(h: Harness, ok: Any) -> list[Event]:
    async with asyncio.timeout(10):
        while not ok(log := await h.log()):
            await h.bus.read(log[-1].seq or 0, timeout=1.0)  # wait for the log to move
    await settle()
    return await h.log()


async def _rig(*specs: TaskSpec) -> tuple[Harness, Any, ConductorActor]:
    h = Harness(list(specs), manual=True)
    await h.seed()
    run = asyncio.ensure_future(h.graph().run())
    conductor = ConductorActor("r", h.bus, interval=60, clock=h.clock)
    await conductor.start()
    return h, run, conductor


async def ask(h: Harness, question: str) -> None:
    await h.bus.publish(
        [
            AgentNeedsInput(
                run_id="r", task_id="a", attempt=1, agent="a/1/worker", role="worker", question=question,
                ts=h.clock.now(),
            )
        ]
    )  # fmt: skip


async def test_a_task_doing_the_same_work_as_a_running_one_waits_for_it_then_restarts_on_top() -> None:
    h, run, conductor = await _rig(
        agent("login", LOGIN), agent("login-again", LOGIN.replace("Add", "Implement"))
    )
    log = await _until(h, lambda log: of(log, "agent.paused"))
    (acted,) = of(log, "conductor.acted")
    assert (acted.action, acted.task_id, acted.kept) == ("pause_duplicate", "login-again", "login")
    (paused,) = of(log, "agent.paused")
    assert paused.task_id == "login-again"
    assert paused.reason.startswith(f"{TAG} login-again does the same work as login")
    h.executor.release("login")  # noop sandboxes: succeeded is merged
    log = await _until(h, lambda log: of(log, "task.restart_requested"))
    (restart,) = of(log, "task.restart_requested")
    assert (restart.task_id, restart.reason) == (
        "login-again",
        "login was merged: going on from the integration head",
    )
    h.executor.release("login-again")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    assert fold("r", await h.log()).tasks["login-again"].attempt == 2
    await conductor.stop()


async def test_agents_that_share_files_are_each_told_once_in_their_next_request() -> None:
    spec = ".omoi/specs/r/design.md"  # every task of a goal run names the spec: not a shared file
    h, run, conductor = await _rig(
        agent("api", "Add the users endpoint", "app/routes.py", "app/models.py", spec),
        agent("docs", "Document every route in the README", "app/routes.py", "README.md", spec),
        agent("cli", "Add a command line client", "app/routes.py", spec),
        agent("ci", "Run the linter in CI", ".github/ci.yml", spec),
    )
    guardian = GuardianActor("r", h.bus, clock=h.clock)
    log = await _until(h, lambda log: len(of(log, "conductor.acted")) == 6)
    told = of(log, "conductor.acted")
    pairs = {("api", "docs"), ("api", "cli"), ("docs", "cli")}
    assert sorted((e.task_id, e.kept) for e in told) == sorted(
        [*pairs, *((b, a) for a, b in pairs)]
    )  # each of two agents that name the same file is told about the other, once
    assert {(e.action, e.files) for e in told} == {("message", ("app/routes.py",))}
    assert not of(log, "agent.paused")  # sharing files is not a conflict yet: all go on
    notes = await guardian.before_turn("docs", 1, after=log[-1].seq or 0)
    assert sorted(n.text for n in notes) == sorted(e.reason for e in told if e.task_id == "docs")
    assert notes[0].text.startswith(f"{TAG} Task ")
    assert "names the same files: app/routes.py. If you change them" in notes[0].text
    delivered = GuardianDelivered(
        run_id="r",
        task_id="docs",
        attempt=1,
        agent="docs/1/worker",
        role="worker",
        intervention=notes[0].ref,
        turn=1,
    )
    (seq,) = await h.bus.publish([delivered])
    left = await guardian.before_turn("docs", 1, after=seq)  # the acknowledged one is not sent again
    assert [n.ref for n in left] == [n.ref for n in notes[1:]]
    h.executor.release("api", "docs", "cli", "ci")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    assert len(of(await h.log(), "conductor.acted")) == 6
    await asyncio.gather(conductor.stop(), guardian.stop())


async def test_on_its_timer_the_conductor_says_the_run_is_stalled_on_a_person_and_paced_over_budget() -> None:
    h, run, conductor = await _rig(agent("a", "Add the users endpoint"), agent("b", "Document the routes"))
    await _until(h, lambda log: len(of(log, "task.started")) == 2)
    h.clock.advance(61)
    await ask(h, "which DB?")
    log = await _until(h, lambda log: of(log, "conductor.assessed"))
    (first,) = of(log, "conductor.assessed")
    assert first.running == ("a", "b")
    assert not first.stalled
    assert first.summary.startswith("2 running, 1 waiting on a person, 0 of 2 agent tasks done")
    assert first.waiting == ("a waits for an answer (omoi answer) since 0s",)
    h.executor.release("b")
    await _until(h, lambda log: of(log, "task.succeeded", "b"))
    h.clock.advance(61)
    await ask(h, "again?")
    log = await _until(h, lambda log: len(of(log, "conductor.assessed")) == 2)
    second = of(log, "conductor.assessed")[1]
    assert second.stalled
    assert "STALLED: every running task waits on a person" in second.summary
    h.clock.advance(61)  # nothing changed: nothing written
    await ask(h, "still?")
    await settle()
    assert len(of(await h.log(), "conductor.assessed")) == 2
    h.executor.release("a")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    await conductor.stop()


def test_the_budget_pace_is_over_when_the_spend_so_far_projects_past_the_budget() -> None:
    state = ConductorState("r", agents={t: ("p", ()) for t in "abcd"}, budget=(None, 1.0))
    state.ended, state.spent = {"a"}, (1000, 0.30)  # a quarter done, 30% spent: 120% projected
    (ev,) = assess(state, datetime(2026, 1, 1, tzinfo=UTC), "conductor")
    assert ev.pace == "over"
    state.spent = (1000, 0.20)
    (ev,) = assess(state, datetime(2026, 1, 1, tzinfo=UTC), "conductor")
    assert ev.pace == "ok"
    assert assess(ConductorState("r"), datetime(2026, 1, 1, tzinfo=UTC), "c")[0].pace == "no budget"


async def test_a_run_stalled_on_a_person_too_long_gets_one_diagnostic_task() -> None:
    """The stall (every running task waits on a person) lasts `stall_s`: the conductor asks the
    discovery actor for a diagnostic task, which joins the live DAG. A question asked again does
    not restart the stall's clock, and the log, replayed, asks for nothing more."""
    h = Harness([agent("a", "Add the users endpoint")], manual=True, max_parallel=2)
    await h.seed()
    graph = h.graph()
    run = asyncio.ensure_future(graph.run())
    conductor = ConductorActor("r", h.bus, interval=60, stall_s=300, clock=h.clock)
    found = DiscoveryActor("r", h.bus, graph)
    await asyncio.gather(conductor.start(), found.start())
    await _until(h, lambda log: of(log, "task.started"))
    question = "Should users be stored in Postgres or SQLite?"
    await ask(h, question)
    h.clock.advance(61)
    await ask(h, question)  # asked again: the log moves, the timer looks, the stall's clock goes on
    log = await _until(h, lambda log: of(log, "conductor.assessed"))
    assert of(log, "conductor.assessed")[0].stalled
    assert not of(log, "conductor.acted")  # stalled, but not for long enough
    h.clock.advance(250)
    await ask(h, question)
    log = await _until(h, lambda log: of(log, "task.added", "disc-1"))
    (acted,) = of(log, "conductor.acted")
    (report,) = of(log, "agent.discovery")
    assert (acted.action, acted.task_id, report.role) == ("diagnose", "a", "conductor")
    assert report.type == "clarification"
    assert acted.reason.startswith(f"{TAG} the run has waited on a person for 311s")
    assert report.evidence == f"a asks: {question}"
    (spawned,) = of(log, "discovery.task_spawned")
    assert spawned.spec.agent.prompt.startswith("Diagnose why the run stalled waiting on a")
    assert "Asked for by the conductor while the run waited on task a" in spawned.spec.agent.prompt
    assert ".omoi/diagnosis/a.md" in spawned.spec.agent.prompt
    replayed = ConductorState("r")
    for ev in log[: log.index(report) + 1]:
        replayed.apply(ev)
    assert replayed.stall() is not None, "still stalled as of the diagnosis"
    assert diagnose(replayed, h.clock.now() + timedelta(hours=1), 300, "conductor") == []
    h.executor.release("a", "disc-1")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    await asyncio.gather(conductor.stop(), found.stop())


def coherence_server(answer: dict[str, Any]) -> ScriptedModelServer:
    """The conductor's coherence calls: one conversation per picture (`conductor/<n>`)."""
    return ScriptedModelServer(parse_script({"tasks": {"conductor/0": {"conductor": [answer]}}}))


async def _judged(answer: dict[str, Any]) -> tuple[list[Event], ScriptedModelServer]:
    """Two agents at work, one look on the timer: the picture and what came with it."""
    with coherence_server(answer) as server:
        h = Harness([agent("api", "Add the users endpoint"), agent("docs", "Document the API")], manual=True)
        await h.seed()
        run = asyncio.ensure_future(h.graph().run())
        model = AnthropicModel(ModelSettings(base_url=server.url, max_tries=1), ModelRules(max_tries=1))
        conductor = ConductorActor("r", h.bus, interval=60, clock=h.clock, model=model, model_name="q")
        await conductor.start()
        await _until(h, lambda log: len(of(log, "task.started")) == 2)
        h.clock.advance(61)
        await ask(h, "which DB?")
        log = await _until(h, lambda log: of(log, "conductor.assessed"))
        await conductor.stop()
        h.executor.release("api", "docs")
        assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    return log, server


async def test_a_model_judges_the_run_and_its_advice_reaches_running_agents() -> None:
    answer = {
        "coherent": False,
        "score": 0.4,
        "issues": ["docs describes routes api has not written yet"],
        "messages": [
            {"task": "docs", "text": "Document only the routes in app/routes.py today; api adds more."},
            {"task": "docs", "text": "a second message to the same task is dropped"},
            {"task": "ghost", "text": "no such running task: dropped"},
        ],
        "summary": "two agents, one ahead of the other",
    }
    log, server = await _judged({"tools": [{"name": "report_coherence", "input": answer}]})
    (picture,) = of(log, "conductor.assessed")
    assert (picture.coherence, picture.score, picture.issues) == ("incoherent", 0.4, tuple(answer["issues"]))
    assert picture.summary.startswith("2 running, 1 waiting on a person")
    assert picture.usage.total > 0
    assert picture.model
    (told,) = of(log, "conductor.acted")
    assert (told.action, told.task_id, told.attempt) == ("message", "docs", 1)
    assert told.reason == f"{TAG} Document only the routes in app/routes.py today; api adds more."
    (request,) = server.requests
    shown = request.last_user_text
    assert "- api (attempt 1): Add the users endpoint" in shown
    assert "Waiting on a person:\n- a waits for an answer (omoi answer)" in shown


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"text": "All fine."}, "the reply did not call report_coherence"),
        (
            {"tools": [{"name": "report_coherence", "input": {"coherent": True, "score": 3}}]},
            "report_coherence.score",
        ),
        ({"faults": [{"status": 500, "times": 5}], "text": "late"}, "the model call failed"),
    ],
)
async def test_an_unusable_coherence_answer_is_unknown_and_the_picture_is_written_all_the_same(
    answer: dict[str, Any], error: str
) -> None:
    log, _ = await _judged(answer)
    (picture,) = of(log, "conductor.assessed")
    assert picture.coherence == "unknown"
    assert picture.error.startswith(error)
    assert picture.running == ("api", "docs")
    assert not of(log, "conductor.acted")
