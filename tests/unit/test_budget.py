"""Budgets: the ledger's levels, and the budget actor pausing an agent until a raise."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omoi.actors.budget import BudgetActor
from omoi.actors.guardian import GuardianActor
from omoi.policies.budget import Ledger, Limit
from omoi.policies.supervision.guardian import GuardianRules
from omoi.runtime.log.events import AgentPaused, AgentResumed, BudgetRaised, RunStarted
from omoi.runtime.supervision.state import Note
from omoi.runtime.supervision.turn_checks import TurnChecks
from omoi.runtime.testing import FakeClock
from tests.agents import AgentRig, call
from tests.conftest import RepoFactory
from tests.unit.test_graph_actor import settle

LIST = {"tools": [call("list_files")]}
FINISH = {"tools": [call("finish", status="complete", summary="done")]}


def test_levels_are_announced_once_each_and_again_after_a_raise() -> None:
    ledger = Ledger(Limit(tokens=1000))
    assert ledger.spend("a", 500, 0.0) == []
    (warn,) = ledger.spend("a", 300, 0.0)
    assert (warn.scope, warn.level, warn.tokens) == ("run", "warning", 800)
    assert ledger.blocked("a") is None
    assert ledger.spend("b", 100, 0.0) == []  # still a warning: said once
    (out,) = ledger.spend("b", 100, 0.0)
    assert out.level == "exhausted"
    assert "run's budget is spent" in (ledger.blocked("a") or "")
    assert "run's budget" in (ledger.blocked("b") or "")
    ledger.raise_limit("run", add_tokens=1000)
    assert ledger.blocked("a") is None
    (again,) = ledger.spend("a", 700, 0.0)  # 1700 of 2000
    assert again.level == "warning"


def test_a_task_budget_stops_only_that_task_and_dollars_count_too() -> None:
    ledger = Ledger()
    ledger.limit_task("a", Limit(usd=0.10))
    (c,) = ledger.spend("a", 10, 0.12)
    assert (c.scope, c.level) == ("a", "exhausted")
    assert "task 'a''s budget" in (ledger.blocked("a") or "")
    assert ledger.blocked("b") is None


async def test_an_exhausted_budget_pauses_the_agent_before_its_next_turn_until_raised(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    script = {"tasks": {"t1": {"worker": [LIST, FINISH]}}}
    rig = AgentRig(make_repo(), tmp_path / "wt", script)
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c", budget_usd=0.000001)])
    budget = BudgetActor("r", rig.bus)
    with rig.server:
        running = asyncio.create_task(rig.run(budget=budget))
        exhausted = await rig.wait_for("budget.exhausted")
        assert exhausted.scope == "run"  # type: ignore[attr-defined]
        assert exhausted.usd > 0.000001  # type: ignore[attr-defined]
        # The agent waits in admit: the model saw one request, and the task is not done.
        assert len(rig.server.requests) == 1
        assert not running.done()
        await rig.bus.publish([BudgetRaised(run_id="r", add_usd=1.0)])
        result = await asyncio.wait_for(running, 30)
    assert result.status == "complete"
    assert len(rig.server.requests) == 2
    await budget.admit("t1", after=rig.events("agent.turn")[-1].seq or 0)  # the fold has the last turn
    assert await budget.spent() == (
        sum(t.usage.total for t in rig.events("agent.turn")),  # type: ignore[attr-defined]
        pytest.approx(result.cost_usd),
    )


@dataclass(frozen=True)
class _Counted(TurnChecks):
    calls: list[str] = field(default_factory=list)

    async def admit_and_judge(self, task_id: str, attempt: int, admit_after: int, after: int) -> list[Note]:
        self.calls.append(task_id)
        return await super().admit_and_judge(task_id, attempt, admit_after, after)


async def test_budget_and_guardian_together_are_one_call_per_turn_and_a_pause_outlasts_a_raise(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    rig = AgentRig(make_repo(), tmp_path / "wt", {"tasks": {"t1": {"worker": [LIST, FINISH]}}})
    await rig.bus.publish([RunStarted(run_id="r", repo="x", base_commit="c", budget_usd=0.000001)])
    budget = BudgetActor("r", rig.bus)
    guardian = GuardianActor("r", rig.bus, rules=GuardianRules(), clock=FakeClock())
    checks = _Counted(budget, guardian)
    with rig.server:
        running = asyncio.create_task(rig.run(budget=checks, supervision=checks))
        await rig.wait_for("budget.exhausted")
        (paused,) = await rig.bus.publish([AgentPaused(run_id="r", task_id="t1")])
        await asyncio.wait_for(guardian.caught_up(paused), 10)
        (raised,) = await rig.bus.publish([BudgetRaised(run_id="r", add_usd=1.0)])
        await asyncio.wait_for(budget.admit("t1", after=raised), 10)  # admitted now, but paused
        await settle()
        assert len(rig.server.requests) == 1
        assert not running.done()
        await rig.bus.publish([AgentResumed(run_id="r", task_id="t1")])
        result = await asyncio.wait_for(running, 30)
    await guardian.stop()
    assert result.status == "complete"
    assert len(rig.server.requests) == 2
    assert checks.calls == ["t1", "t1"]  # one call before each model call, nothing else asked
