"""Whether a failed task attempt is tried again, and after how long. No clock read: pure arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BACKOFF_S = 300.0
MAX_INTERRUPTIONS = 3


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0


def after_failure(failures: int, retries: int, backoff: float) -> RetryDecision:
    """`failures` counts the failure just seen. Backoff doubles per failure, capped at five minutes."""
    if failures > retries:
        return RetryDecision(retry=False)
    return RetryDecision(retry=True, delay_s=min(MAX_BACKOFF_S, backoff * 2 ** (failures - 1)))


def after_interruption(interruptions: int) -> RetryDecision:
    """A lost sandbox is not the task's fault, so it does not use a retry, but it is still bounded:
    a task that keeps killing its sandbox (say, by exhausting the node) must end."""
    return RetryDecision(retry=interruptions < MAX_INTERRUPTIONS)
