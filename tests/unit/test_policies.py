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
