"""The guardian's deterministic signals, over trajectories folded from real events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from omoi.policies.supervision.interventions import LADDER, History, decide, outcome
from omoi.policies.supervision.signals import Budget, Signal, Thresholds, error_signature, evaluate
from omoi.runtime.log.events import AgentAcceptance, AgentStarted, AgentToolCalled, AgentTurn, Event, Usage
from omoi.runtime.supervision.trajectory import Trajectory

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WHO = {"run_id": "r", "task_id": "t", "attempt": 1, "agent": "t/1/worker", "role": "worker"}


class Agent:
    """Makes one attempt's events with gap-free seqs and times a second apart."""

    def __init__(self, declared: tuple[str, ...] = ()) -> None:
        self.t = Trajectory("t", 1, declared)
        self.seq, self.turn = 0, 0
        self.feed(AgentStarted(**WHO, model="m", ts=T0))

    def feed(self, ev: Event) -> None:
        self.seq += 1
        self.t.apply(ev.model_copy(update={"seq": self.seq}))

    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.seq)

    def call(self, tool: str, result: str = "ok", error: bool = False, **args: Any) -> None:
        self.turn += 1
        self.feed(AgentTurn(**WHO, turn=self.turn, model="m", usage=Usage(input_tokens=1000), ts=self.at()))
        self.feed(
            AgentToolCalled(
                **WHO,
                turn=self.turn,
                tool=tool,
                arguments=json.dumps(args),
                result=result,
                is_error=error,
                ts=self.at(),
            )
        )

    def names(self, now: datetime | None = None, **kw: Any) -> dict[str, str]:
        return {s.name: s.level for s in evaluate(self.t, now or self.at(), **kw)}


FAIL = "exit code 1\nTraceback ...\nImportError: cannot import name 'x' from 'app' (line 12)"


def test_the_same_failing_command_warns_at_three_and_acts_at_four() -> None:
    a = Agent()
    a.call("read_file", path="app.py")
    for _ in range(2):
        a.call("run", FAIL, True, command="pytest -q")
    assert "identical_calls" not in a.names()
    a.call("run", FAIL, True, command="pytest -q")
    assert a.names()["identical_calls"] == "warn"
    assert a.names()["action_error_loop"] == "act", "one call failed three times"
    a.call("run", FAIL, True, command="pytest -q")
    assert a.names()["identical_calls"] == "act"


def test_the_same_error_from_different_calls_counts_as_one_class() -> None:
    a = Agent()
    for i in range(5):
        a.call("run", FAIL.replace("12", str(i)), True, command=f"python -m app {i}")
    assert a.names()["repeated_error"] == "act"
    assert error_signature(FAIL) == error_signature(FAIL.replace("12", "99"))
    assert "identical_calls" not in a.names()


def test_alternating_between_two_calls_is_caught_and_variety_is_not() -> None:
    a = Agent()
    for _ in range(3):
        a.call("read_file", path="a.py")
        a.call("read_file", path="b.py")
    assert a.names()["alternation"] == "act"
    b = Agent()
    for i in range(6):
        b.call("read_file", path=f"{i}.py")
    assert b.names() == {}, "reading six different files is work, not a loop"


def test_a_file_written_back_to_earlier_versions_twice() -> None:
    a = Agent()
    for content in ("x = 1\n", "x = 2\n", "x = 1\n"):
        a.call("write_file", path="app.py", content=content)
    assert "content_reverts" not in a.names()
    a.call("write_file", path="app.py", content="x = 2\n")
    assert a.names()["content_reverts"] == "act"


def test_idle_timeouts_malformed_calls_and_bounced_rounds() -> None:
    a = Agent()
    assert a.t.last_work is not None
    assert "idle" not in a.names(now=a.t.last_work + timedelta(seconds=599))
    assert a.names(now=a.t.last_work + timedelta(seconds=600))["idle"] == "act"
    for _ in range(3):
        a.call("run", "timed out\n", True, command="sleep 999")
    a.call("run", "invalid arguments for run: command: Field required. Fix them and call again.", True)
    a.call("write_file", "invalid arguments for write_file: content: missing", True, path="x")
    a.call("nope", "there is no tool 'nope'", True)
    for n in (1, 2, 3):
        a.feed(AgentAcceptance(**WHO, round=n, passed=False, command="pytest", ts=a.at()))
    found = a.names()
    assert found["timeouts"] == found["malformed_calls"] == found["bounced"] == "act"


def test_editing_blind_outside_the_tasks_files_and_finishing_untested_warn() -> None:
    a = Agent(declared=("app/*.py",))
    a.call("write_file", path="app/new.py", content="x = 1\n")  # its own new file
    a.call("edit_file", path="app/new.py", old="1", new="2")
    a.call("read_file", path="app/old.py")
    a.call("edit_file", path="app/old.py", old="a", new="b")
    assert a.names() == {}, "reads before edits, inside the task's files"
    a.call("edit_file", path="README.md", old="a", new="b")
    a.call("finish", status="complete", summary="done")
    assert a.names() == {"outside_scope": "warn", "blind_edit": "warn", "untested_finish": "warn"}
    b = Agent()
    b.call("write_file", path="x.py", content="x\n")
    b.call("run", "exit code 0\n", command="pytest")
    b.call("finish", status="complete", summary="done")
    assert b.names() == {}, "tested since the last edit"


def test_a_burn_rate_that_will_exhaust_the_budget_before_the_turns_run_out() -> None:
    a = Agent()
    for i in range(5):
        a.call("read_file", path=f"{i}.py")  # 1,000 tokens a turn
    assert "burn_rate" not in a.names(budget=Budget(tokens=60_000, max_turns=50))
    assert a.names(budget=Budget(tokens=40_000, max_turns=50))["burn_rate"] == "warn"
    assert a.names(budget=Budget(tokens=40_000, max_turns=50), th=Thresholds(burn_margin=1.5)) == {}


def test_another_attempts_events_do_not_count() -> None:
    a = Agent()
    other = {**WHO, "attempt": 2}
    for _ in range(4):
        a.t.apply(AgentToolCalled(**other, turn=1, tool="run", arguments="{}", result=FAIL, is_error=True))
    assert a.t.calls == []


STUCK = [Signal("identical_calls", "act", "4 identical `run` calls in a row")]


def test_the_ladder_climbs_once_per_persisting_problem_and_never_stacks_or_rushes() -> None:
    first = decide(STUCK, History(), T0)
    assert first is not None
    assert first.action == "steer"
    assert first.message.startswith("[omoi guardian] You seem to be stuck: 4 identical `run` calls")
    assert decide([Signal("blind_edit", "warn", "x")], History(), T0) is None, "a warning is no reason to act"
    sent = History(("steer",), T0, unread=True)
    assert decide(STUCK, sent, T0 + timedelta(hours=1)) is None, "never stacked on an unread steer"
    read = History(("steer",), T0)
    assert decide(STUCK, read, T0 + timedelta(seconds=299)) is None, "at most one per cooldown"
    again = decide(STUCK, read, T0 + timedelta(seconds=300))
    assert again is not None
    assert again.action == "steer"
    assert "still stuck" in again.message
    actions = [LADDER[min(n, len(LADDER) - 1)] for n in range(7)]
    assert actions == ["steer", "steer", "restart", "replan", "cancel", "ask_human", "ask_human"]
    later = decide(STUCK, History(("steer", "steer"), T0), T0 + timedelta(seconds=301))
    assert later is not None
    assert later.action == "restart"


def test_an_intervention_worked_when_its_signals_stayed_clear_for_a_few_turns() -> None:
    """The signals here are judged on what the agent did after the intervention."""
    assert outcome(STUCK, [], 1) is None, "too early to say"
    assert outcome(STUCK, [], 3) is True
    assert outcome(STUCK, [Signal("blind_edit", "warn", "y")], 3) is True, "another signal is another matter"
    assert outcome(STUCK, STUCK, 1) is False, "it fired again"
