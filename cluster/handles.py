"""Reaching peers by actor name, and getting our own errors back from remote calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayTaskError

from omoi.cluster.connect import NAMESPACE
from omoi.cluster.metrics import observe_lag
from omoi.runtime.log.events import Event


async def call(ref: Any) -> Any:
    """Await a remote call; an exception raised by the actor's code comes back as itself (our own
    error types with their fields), not wrapped in Ray's traceback text."""
    try:
        return await ref
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise


class Named:
    """A peer found by its actor name on first use: proxies pickle as a string, never as a handle,
    so constructor arguments stay small and a restarted actor finds its peers again."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handle: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "_handle": None}

    @property
    def handle(self) -> Any:
        if self._handle is None:
            self._handle = ray.get_actor(self.name, namespace=NAMESPACE)
        return self._handle


class BusProxy(Named):
    """BusPort over the run's bus actor."""

    async def publish(self, events: Sequence[Event]) -> list[int]:
        result: list[int] = await call(self.handle.publish.remote(list(events)))
        return result

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        result: list[Event] = await call(self.handle.read.remote(after, prefixes, limit, timeout))
        observe_lag(result)
        return result
