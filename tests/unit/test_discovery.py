"""The discovery actor over an in-memory log, next to a real graph actor (scripted sandboxes): what
agents report becomes tasks of the live DAG, once, within bounds, and a blocked reporter waits."""

from __future__ import annotations

import asyncio
from typing import Any

from omoi.actors.discovery import DiscoveryActor
from omoi.policies.model_calls import ModelRules
from omoi.policies.supervision.discovery import Limits
from omoi.runtime.config import ModelSettings
from omoi.runtime.log.events import AgentDiscovery, DiscoveryDecided, Event
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.run.state import fold
from tests.unit.test_graph_actor import Harness, settle, t


def report(task: str, title: str, description: str, *, attempt: int = 1, **extra: Any) -> AgentDiscovery:
    return AgentDiscovery(
        run_id="r",
        task_id=task,
        attempt=attempt,
        agent=f"{task}/{attempt}/worker",
        role="worker",
        type=extra.pop("type", "bug"),
        title=title,
        description=description,
        **extra,
    )


def of(events: list[Event], kind: str) -> list[Any]:
    return [e for e in events if e.kind == kind]


async def _rig(
    limits: Limits | None = None, **kw: Any
) -> tuple[Harness, DiscoveryActor, asyncio.Future[Any]]:
    h = Harness([t("a"), t("b")], manual=True)
    await h.seed()
    graph = h.graph()
    run = asyncio.ensure_future(graph.run())
    found = DiscoveryActor("r", h.bus, graph, limits=limits, **kw)
    await found.start()
    await settle()
    return h, found, run


async def _decided(h: Harness, *, also: str | None = None) -> list[Event]:
    """The log once every report in it is decided (in log order, so all before it too), each
    spawned task is in the DAG, and an `also` event is there."""

    def done(log: list[Event]) -> bool:
        added = {e.task_id for e in of(log, "task.added")}
        return (
            len(of(log, "discovery.recorded")) + len(of(log, "discovery.rejected"))
            == len(of(log, "agent.discovery"))
            and all(e.spec.id in added for e in of(log, "discovery.task_spawned"))
            and (also is None or bool(of(log, also)))
        )

    async with asyncio.timeout(10):
        while not done(log := await h.log()):
            await h.bus.read(log[-1].seq or 0, timeout=1.0)  # wait for the log to move
    await settle()
    return await h.log()


async def test_a_report_becomes_one_task_and_a_repeat_names_it() -> None:
    h, found, run = await _rig()
    await h.bus.publish(
        [
            report("a", "Token expiry never checked", "jwt tokens are accepted after their exp claim passed"),
            report("b", "Expiry of tokens never checked", "tokens accepted after the jwt exp claim passed"),
        ]
    )
    log = await _decided(h)
    (spawned,) = of(log, "discovery.task_spawned")
    assert (spawned.task_id, spawned.spec.id, spawned.depth) == ("a", "disc-1", 1)
    assert "accepted after their exp claim" in spawned.spec.agent.prompt
    (rejected,) = of(log, "discovery.rejected")
    assert (rejected.task_id, rejected.duplicate_of) == ("b", "disc-1")
    assert "disc-1" in fold("r", log).tasks, "the task is in the live DAG"
    h.executor.release("a", "b", "disc-1")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    await found.stop()


async def test_a_runaway_chain_stops_at_the_depth_limit_and_a_restart_decides_nothing_twice() -> None:
    h, found, run = await _rig(Limits(depth=2))
    await h.bus.publish([report("a", "Parser drops unicode", "the csv parser loses non-ascii bytes")])
    await _decided(h)
    await h.bus.publish([report("disc-1", "Encoder mangles emoji", "the writer escapes astral characters")])
    await _decided(h)
    await h.bus.publish([report("disc-2", "Logger truncates lines", "log lines over 4k are cut silently")])
    log = await _decided(h)
    assert [(e.spec.id, e.depth) for e in of(log, "discovery.task_spawned")] == [("disc-1", 1), ("disc-2", 2)]
    (refused,) = of(log, "discovery.rejected")
    assert refused.task_id == "disc-2"
    assert "3 deep (OMOI_DISCOVERY_DEPTH is 2)" in refused.reason
    await found.stop()
    again = DiscoveryActor("r", h.bus, h.graph(), limits=Limits(depth=2))  # its successor, same log
    await again.start()
    await h.bus.publish([report("b", "Cache never expires", "entries stay forever in the lru cache")])
    after = await _decided(h)  # the new report decided: everything before it was folded first
    assert after[: len(log)] == log
    assert [e.spec.id for e in of(after, "discovery.task_spawned")] == ["disc-1", "disc-2", "disc-3"]
    h.executor.release("a", "b", "disc-1", "disc-2", "disc-3")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    await again.stop()


async def test_a_blocking_report_pauses_its_reporter_until_the_new_task_merged_then_restarts_it() -> None:
    h, found, run = await _rig()
    await h.bus.publish(
        [report("a", "Schema lacks users table", "no users table to store logins", blocks_current=True)]
    )
    log = await _decided(h)
    (paused,) = of(log, "agent.paused")
    assert (paused.task_id, paused.attempt) == ("a", 1)
    assert "waiting for disc-1" in paused.reason
    assert not of(log, "task.restart_requested")
    h.executor.release("disc-1")  # noop sandboxes: succeeded is merged
    log = await _decided(h, also="task.restart_requested")
    (resumed,) = of(log, "agent.resumed")
    (restart,) = of(log, "task.restart_requested")
    assert (resumed.task_id, restart.task_id, restart.attempt) == ("a", "a", 1)
    assert restart.reason == "disc-1 was merged: going on from the integration head"
    h.executor.release("a", "b")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"
    assert fold("r", await h.log()).tasks["a"].attempt == 2
    await found.stop()


async def test_with_a_human_gate_a_report_waits_for_a_person_who_approves_or_rejects_it() -> None:
    h, found, run = await _rig(Limits(gate="human"))
    await h.bus.publish([report("a", "Schema lacks users table", "no users table to store logins")])
    log = await _until(h, "discovery.awaiting")
    (waits,) = of(log, "discovery.awaiting")
    assert (waits.task_id, waits.title) == ("a", "Schema lacks users table")
    assert not of(log, "discovery.task_spawned")
    # The same work reported again while the first waits is a duplicate of the waiting one.
    await h.bus.publish([report("b", "Schema has no users table", "no users table for the logins")])
    log = await _until(h, "discovery.rejected")
    (dup,) = of(log, "discovery.rejected")
    assert dup.duplicate_of == f"discovery {waits.discovery}"
    await h.bus.publish(
        [DiscoveryDecided(run_id="r", task_id="a", attempt=1, discovery=waits.discovery, decision="approve")]
    )
    log = await _until(h, "discovery.task_spawned")
    (spawned,) = of(log, "discovery.task_spawned")
    assert spawned.spec.id == "disc-1"
    await h.bus.publish([report("b", "Logout leaves the session", "sessions survive a logout call")])
    log = await _until(h, "discovery.awaiting", count=2)
    second = of(log, "discovery.awaiting")[1]
    await h.bus.publish(
        [
            DiscoveryDecided(
                run_id="r",
                task_id="b",
                attempt=1,
                discovery=second.discovery,
                decision="reject",
                reason="later",
            )
        ]
    )
    log = await _until(h, "discovery.rejected", count=2)
    assert of(log, "discovery.rejected")[1].reason == "rejected by a person: later"
    await found.stop()
    # Started again on the same log, it decides nothing twice.
    again = DiscoveryActor("r", h.bus, h.graph(), limits=Limits(gate="human"))
    await again.start()
    await settle()
    assert len(await h.log()) == len(log)
    await again.stop()
    h.executor.release("a", "b", "disc-1")
    assert (await asyncio.wait_for(run, 5)).status == "succeeded"


async def _until(h: Harness, kind: str, count: int = 1) -> list[Event]:
    async with asyncio.timeout(10):
        while len(of(log := await h.log(), kind)) < count:
            await h.bus.read(log[-1].seq or 0, timeout=1.0)  # wait for the log to move
    await settle()
    return await h.log()


async def test_with_a_review_gate_a_reviewer_model_decides_and_a_failed_review_goes_to_a_person() -> None:
    approve = {"tools": [{"name": "decide_discovery", "input": {"decision": "approve", "reason": "real"}}]}
    script = {"tasks": {"a": {"reviewer": [approve]}, "b": {"reviewer": [{"text": "not sure"}]}}}
    with ScriptedModelServer(parse_script(script)) as server:
        model = AnthropicModel(ModelSettings(base_url=server.url, max_tries=1), ModelRules(max_tries=1))
        h, found, run = await _rig(Limits(gate="review"), model=model, model_name="m")
        await h.bus.publish([report("a", "Schema lacks users table", "no users table to store logins")])
        log = await _until(h, "discovery.task_spawned")
        (decided,) = of(log, "discovery.decided")
        assert (decided.decision, decided.reason, decided.by) == ("approve", "real", "reviewer")
        (request,) = server.requests_for("a", "reviewer")
        assert "Schema lacks users table" in request.last_user_text
        await h.bus.publish([report("b", "Logout leaves the session", "sessions survive a logout call")])
        log = await _until(h, "discovery.awaiting", count=3)
        last = of(log, "discovery.awaiting")[-1]
        assert (last.task_id, last.gate) == ("b", "human")
        assert last.note == "the reply did not call decide_discovery; a person decides"
        assert len(of(log, "discovery.task_spawned")) == 1
        await found.stop()
        h.executor.release("a", "b", "disc-1")
        assert (await asyncio.wait_for(run, 5)).status == "succeeded"
