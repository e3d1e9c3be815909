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


def model_backoff(
    tries: int, base: float, cap: float, draw: float, retry_after: float | None = None
) -> float:
    """Delay before retrying a model call after `tries` failed tries: full jitter (a uniform draw
    below an exponentially growing ceiling, `draw` in [0, 1)) so many agents hit by the same 429
    do not come back together, and never sooner than the provider's `retry-after` asked."""
    jitter = draw * min(cap, base * 2.0 ** (tries - 1))
    return max(jitter, retry_after or 0.0)


RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def model_call_retryable(status: int | None) -> bool:
    """None is a connection failure or timeout. Overload, rate limits and server errors pass;
    a bad request, bad credentials or a missing model will not get better by asking again."""
    return status is None or status in RETRYABLE_STATUS
