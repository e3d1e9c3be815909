from __future__ import annotations

from omoi.policies import retry
from omoi.policies.scheduling import free_slots, plan_order


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry.after_failure(n, 10, 2.0).delay_s for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert retry.after_failure(20, 30, 10.0).delay_s == retry.MAX_BACKOFF_S


def test_no_retry_once_retries_are_used_up() -> None:
    assert retry.after_failure(1, 0, 1.0).retry is False
    assert retry.after_failure(2, 1, 1.0).retry is False
    assert retry.after_failure(2, 2, 1.0).retry is True


def test_interruptions_are_bounded() -> None:
    assert retry.after_interruption(0).retry
    assert not retry.after_interruption(retry.MAX_INTERRUPTIONS).retry


def test_slots_and_plan_order() -> None:
    assert free_slots(4, 3) == 1
    assert free_slots(2, 5) == 0
    assert plan_order(["b", "a"], {}, {"a": 0, "b": 1}) == ["a", "b"]


def test_a_slot_that_found_no_node_is_skipped_then_tried_again() -> None:
    """After SandboxUnplaceableError on a slot, its retry goes to another slot; the slot is tried
    again once its down time is over."""
    from datetime import UTC, datetime, timedelta

    from omoi.policies.progression import SLOT_DOWN_S, Progression
    from omoi.runtime.errors import SandboxUnplaceableError
    from omoi.runtime.log.events import RunStarted, TaskAdded, TaskStarted
    from omoi.runtime.run.state import fold
    from omoi.runtime.run.tasks import TaskSpec

    specs = [TaskSpec(id=i, run="true") for i in ("a", "b", "c")]
    added = [TaskAdded(run_id="r", task_id=s.id, spec=s, order=n) for n, s in enumerate(specs)]
    state = fold("r", [RunStarted(run_id="r", repo="/r", base_commit="b"), *added])
    prog = Progression(state, source="graph", max_parallel=2, sandbox_name=lambda i: f"s{i}")
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def started(d: object) -> dict[str, str]:
        return {e.task_id: e.sandbox for e in d.events if isinstance(e, TaskStarted)}  # type: ignore[attr-defined]

    first = started(prog.step(now))
    assert sorted(first.values()) == ["s0", "s1"]
    on_s0 = next(t for t, s in first.items() if s == "s0")
    lost = SandboxUnplaceableError("s0", on_s0, 1, 30.0)
    assert started(prog.step(now, [(on_s0, 1, lost)])) == {}, "s1 is busy and s0 is down: nothing starts"
    assert prog.next_timer(now) == SLOT_DOWN_S
    on_s1 = next(t for t, s in first.items() if s == "s1")
    from omoi.runtime.run.execution import TaskResult

    done = started(prog.step(now, [(on_s1, 1, TaskResult(status="succeeded", commit="c"))]))
    assert list(done.values()) == ["s1"], "the retry (or the next task) goes to the slot that has a node"
    later = started(prog.step(now + timedelta(seconds=SLOT_DOWN_S + 1)))
    assert list(later.values()) == ["s0"], "tried again once its down time is over"
