"""The one way omoi starts an actor on Ray: named in omoi's namespace, taking no CPU, with its
restart policy, lifetime and placement said in words, and omoi's logging set up in the actor's
process before its class's own `__init__` runs (a worker starts with structlog's defaults, which
print every debug line)."""

from __future__ import annotations

from typing import Any, Literal

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from omoi.cluster.connect import NAMESPACE
from omoi.runtime.logging import configure as configure_logging

Restarts = Literal["never", "always"]
_HOSTED: dict[type, type] = {}


def hosted(cls: type) -> type:
    """`cls` as a class whose instances configure logging first: Ray builds it in the worker."""
    if cls not in _HOSTED:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            configure_logging()
            cls.__init__(self, *args, **kwargs)  # type: ignore[misc]

        _HOSTED[cls] = type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__})
    return _HOSTED[cls]


def host(
    cls: type,
    *args: Any,
    actor: str,
    restarts: Restarts = "never",
    detached: bool = False,
    node: str | None = None,
    soft: bool = False,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Start `cls(*args, **kwargs)` as the actor named `actor` and return its handle.

    `restarts="always"`: Ray restarts it and re-sends the calls in flight (the actor rebuilds its
    state from the log or from its callers). `detached`: it outlives the driver, and a second
    start of the same name returns the actor already there. `node`: pinned to that node id
    (`here` for this one; `soft` lets Ray place it elsewhere when that node is gone). `options`:
    Ray options a caller adds (tests place slots on given nodes through it)."""
    opts: dict[str, Any] = {"name": actor, "namespace": NAMESPACE, "num_cpus": 0}
    if restarts == "always":
        opts |= {"max_restarts": -1, "max_task_retries": -1}
    else:
        opts["max_restarts"] = 0
    if detached:
        opts |= {"lifetime": "detached", "get_if_exists": True}
    if node is not None:
        node_id = ray.get_runtime_context().get_node_id() if node == "here" else node
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node_id, soft=soft)
    opts |= options or {}
    return ray.remote(hosted(cls)).options(**opts).remote(*args, **kwargs)
