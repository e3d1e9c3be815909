"""Joining or starting a Ray cluster. Every omoi actor lives in one namespace, named by run."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from omoi.runtime import names
from omoi.runtime.errors import InputError

NAMESPACE = "omoi"


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    include_dashboard: bool | None = None,
    metrics_export_port: int | None = None,
) -> str:
    """Join `address` (or $RAY_ADDRESS); with neither, start an embedded local cluster, exporting
    Prometheus metrics on `metrics_export_port` (or $OMOI_METRICS_EXPORT_PORT) if given. Idempotent."""
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {
            "namespace": NAMESPACE,
            "logging_level": logging.WARNING,
            "log_to_driver": os.environ.get("OMOI_RAY_LOG_TO_DRIVER", "") == "1",
        }
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local" starts a cluster of our own: a bare ray.init() would attach to any local
            # cluster it finds (ray start --head writes one down), which is not what "embedded" means.
            port = metrics_export_port or _port(os.environ.get("OMOI_METRICS_EXPORT_PORT", ""))
            if port:
                kwargs["_metrics_export_port"] = port
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=include_dashboard, **kwargs)
    return str(ray.get_runtime_context().gcs_address)


def _port(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"OMOI_METRICS_EXPORT_PORT must be a TCP port (1-65535), got {text!r}")
    return int(text)


def here() -> NodeAffinitySchedulingStrategy:
    """Pin an actor to this node: the bus's log file and the local sandboxes' repository are here."""
    return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)


actor_name = names.actor  # the names module builds every name; cluster code calls it by this name


def run_actor_names(run_id: str) -> list[str]:
    prefix = names.run_prefix(run_id)
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == NAMESPACE and a["name"].startswith(prefix)
    ]


def kill_run_actors(run_id: str, wait: float = 30.0) -> None:
    """Kill the graph first (it drives the others) and the bus last (everyone reads it), then wait
    until their names are free: `ray.kill` is asynchronous, and a resume that looked a name up
    in between would be handed the dying actor."""
    rank = {"graph": 0, "bus": 2}
    for name in sorted(run_actor_names(run_id), key=lambda n: rank.get(n.split("/")[2], 1)):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    deadline = time.monotonic() + wait
    while run_actor_names(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
