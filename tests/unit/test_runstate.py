from __future__ import annotations

from omoi.runtime.log.events import RunStarted, TaskAdded, TaskFailed, TaskStarted, TaskSucceeded
from omoi.runtime.run.state import fold
from omoi.runtime.run.tasks import TaskSpec


def added(task_id: str, *deps: str, order: int = 0) -> TaskAdded:
    return TaskAdded(run_id="r", task_id=task_id, spec=TaskSpec(id=task_id, run="x", deps=deps), order=order)


def test_an_invalid_injected_addition_is_recorded_not_applied() -> None:
    bad = added("b", "ghost", order=1)  # published around the graph actor's checks
    state = fold("r", [RunStarted(run_id="r", repo="/x", base_commit="c"), added("a"), bad])
    assert list(state.tasks) == ["a"]
    assert state.rejected == [(bad.id, "task 'b' depends on unknown task 'ghost'")]


def test_first_terminal_event_of_an_attempt_wins_and_stale_answers_are_ignored() -> None:
    events = [
        added("a"),
        TaskStarted(run_id="r", task_id="a", attempt=1, sandbox="s0"),
        TaskSucceeded(run_id="r", task_id="a", attempt=1, commit="c1"),
        TaskFailed(run_id="r", task_id="a", attempt=1, error="late duplicate", final=True),
        TaskSucceeded(run_id="r", task_id="a", attempt=1, commit="c2"),
    ]
    a = fold("r", events).tasks["a"]
    assert (a.status, a.commit, a.failures) == ("succeeded", "c1", 0)


def test_an_answer_for_an_older_attempt_changes_nothing() -> None:
    events = [
        added("a"),
        TaskStarted(run_id="r", task_id="a", attempt=2, sandbox="s0"),
        TaskSucceeded(run_id="r", task_id="a", attempt=1, commit="old"),
    ]
    assert fold("r", events).tasks["a"].status == "running"
