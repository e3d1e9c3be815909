"""The rules of a model call: which concurrency key and limit it counts against, whether a
failure is worth another try, and how long to wait before it. Built from ModelSettings."""

from __future__ import annotations

from dataclasses import dataclass, field

from omoi.policies.concurrency import DEFAULT_LIMIT, limit_for
from omoi.policies.retry import model_backoff, model_call_retryable

PROVIDER = "anthropic"


@dataclass(frozen=True)
class ModelRules:
    limits: dict[str, int] = field(default_factory=dict)
    default_limit: int = DEFAULT_LIMIT
    max_tries: int = 8
    backoff: float = 0.5
    backoff_cap: float = 30.0

    def key(self, model: str) -> str:
        """The semaphore a call to `model` counts against: the model's own when it has a limit,
        else the provider's when that has one, else the model's with the default limit."""
        if model not in self.limits and PROVIDER in self.limits:
            return PROVIDER
        return f"{PROVIDER}/{model}"

    def limit(self, model: str) -> int:
        return limit_for(model, PROVIDER, self.limits, self.default_limit)

    def retryable(self, status: int | None, tries: int) -> bool:
        return tries < self.max_tries and model_call_retryable(status)

    def delay(self, tries: int, retry_after: float | None, draw: float) -> float:
        return model_backoff(tries, self.backoff, self.backoff_cap, draw, retry_after)
