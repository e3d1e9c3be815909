"""Turning omoi's plain actor classes into Ray actors, and handing each proxies of its peers.

The proxies implement the `runtime.ports` protocols over Ray handles, so actors never see Ray.
Actor death becomes SandboxLostError at this edge; everything else passes through unchanged."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from omoi.actors.bus import BusActor
from omoi.actors.graph import GraphActor
from omoi.actors.integrator import IntegratorActor
from omoi.actors.sandbox import SandboxActor
from omoi.cluster.agents import AgentEnv, RayAgents, SlotAgents
from omoi.cluster.connect import NAMESPACE, actor_name, here
from omoi.cluster.handles import BusProxy, call
from omoi.cluster.hosting import host
from omoi.cluster.metrics import RunMetrics, pool_ready
from omoi.runtime.config import merge_settings
from omoi.runtime.errors import SandboxLostError, SandboxUnplaceableError
from omoi.runtime.log.events import Event
from omoi.runtime.log.store import Durability, SqliteEventStore
from omoi.runtime.ports import AgentsPort, BusPort
from omoi.runtime.run.execution import TaskRequest, TaskResult
from omoi.runtime.sandbox.seam import SandboxBackend, on_node

# How long an attempt waits for its sandbox slot's actor to be placed on a node before it is tried
# on another slot: covers a worker process start on a loaded machine, not a node that is gone.
PLACE_TIMEOUT_S = 30.0


class DurableBus(BusActor):
    """The bus over the run's SQLite log; constructed from a path so a restart can reopen it."""

    def __init__(self, path: str, durability: Durability = "FULL") -> None:
        store = SqliteEventStore(Path(path), durability=durability)
        self._metrics: RunMetrics | None = None
        super().__init__(store)
        first = store.read(limit=1)
        if first:  # the gauges from the whole log, once; then from what each absorb adds
            self._metrics = RunMetrics(first[0].run_id)
            self._metrics.fold(store.read(prefixes=RunMetrics.READS))

    def _absorb(self, stored: Sequence[Event]) -> None:
        tail = self._tail
        super()._absorb(stored)
        if self._tail == tail:
            return
        new = self._recent[bisect.bisect_right(self._recent, tail, key=lambda e: e.seq or 0) :]
        if self._metrics is None:
            self._metrics = RunMetrics(new[0].run_id)
        self._metrics.observe(new)


class WriteAheadBus(BusProxy):
    """The graph's BusPort: it appends its own decisions to the run's log in its own process (an
    fsync, no actor hop), then tells the bus to take them in, without waiting for it.

    The graph publishes on every scheduling step, and a step's tasks may only start once the step
    is durable; a remote call there put two actor hops in front of every task start. The invariants
    stay: an event is in the log before anything acts on it and before it is delivered, and seqs
    are gap-free (SQLite's write lock serializes this writer and the bus). The graph actor is
    pinned to the log's node, so the file is local."""

    def __init__(self, name: str, log_path: str, durability: Durability = "FULL") -> None:
        super().__init__(name)
        self.log_path, self.durability = log_path, durability
        self._store: SqliteEventStore | None = None
        self._moved: asyncio.Event | None = None
        self._notifier: asyncio.Task[None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        keep = {"log_path": self.log_path, "durability": self.durability}
        return {**super().__getstate__(), **keep, "_store": None, "_moved": None, "_notifier": None}

    async def publish(self, events: Sequence[Event]) -> list[int]:
        store = self._opened()
        if self._moved is None:  # the first publish (a replay may have opened the store already)
            self._moved = asyncio.Event()
            self._notifier = asyncio.create_task(self._notify_bus())
        stored = store.append(list(events))
        assert self._moved is not None
        self._moved.set()
        return [e.seq or 0 for e in stored]

    async def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int = 1000, timeout: float = 0.0
    ) -> list[Event]:
        """What the log holds now is read from the file here (a replay of a long log parses rows
        at the speed of SQLite, not of an actor call per batch); waiting for news is the bus's."""
        if timeout > 0:
            return await super().read(after, prefixes, limit, timeout)
        return self._opened().read(after, prefixes, limit)

    def _opened(self) -> SqliteEventStore:
        """The log, opened in this process on first use (a proxy is pickled without it)."""
        if self._store is None:
            self._store = SqliteEventStore(Path(self.log_path), durability=self.durability, create=False)
        return self._store

    async def _notify_bus(self) -> None:
        """Tell the bus the log moved: at most one call in flight, however often we append. A lost
        call only delays delivery, because the bus re-reads the log on its own every second.
        Owned by this proxy, so it ends with the graph actor's process."""
        assert self._moved is not None
        while True:
            await self._moved.wait()
            self._moved.clear()
            with contextlib.suppress(RayActorError, RayTaskError):
                await self.handle.sync.remote()


class RaySandboxes:
    """ExecutorPort over named, detached sandbox actors `omoi/<run>/sandbox/<slot>`.

    Detached so a sandbox outlives a graph restart and can be re-attached by name; the run's driver
    kills them when the run ends."""

    def __init__(
        self,
        run_id: str,
        bus: BusProxy,
        backend: SandboxBackend,
        options: dict[str, Any] | None = None,
        agents: AgentEnv | None = None,
    ) -> None:
        self.run_id, self.bus, self.backend, self.agents = run_id, bus, backend, agents
        self.options = options or {}
        self._handles: dict[str, Any] = {}
        self._placed: set[str] = set()  # slots this process has seen placed on a node

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}, "_placed": set()}

    def sandbox_name(self, slot: int) -> str:
        return actor_name(self.run_id, "sandbox", str(slot))

    def handle(self, name: str) -> Any:
        if name not in self._handles:
            self._handles[name] = host(
                HostedSandbox,
                name,
                self.bus,
                self.backend,
                self.agents,
                actor=name,
                detached=True,
                options=self.options,
            )
        return self._handles[name]

    async def execute(self, sandbox: str, request: TaskRequest) -> TaskResult:
        handle = self.handle(sandbox)
        try:
            if sandbox not in self._placed:
                # First use here, or started anew after its actor was lost: it must be placed within
                # a bound. A slot whose node went away before this process first called it is
                # created again under its name, and would otherwise wait for a node forever.
                try:
                    await asyncio.wait_for(call(handle.__ray_ready__.remote()), PLACE_TIMEOUT_S)
                except TimeoutError:
                    # Kept, still pending: Ray places it once a node has room; nothing waits on it.
                    raise SandboxUnplaceableError(
                        sandbox, request.task_id, request.attempt, PLACE_TIMEOUT_S
                    ) from None
                self._placed.add(sandbox)
            result: TaskResult = await call(handle.execute.remote(request))
            return result
        except RayActorError as exc:
            self._handles.pop(sandbox, None)
            self._placed.discard(sandbox)
            raise SandboxLostError(sandbox, request.task_id, request.attempt) from exc

    async def reattach(self, sandbox: str, task_id: str, attempt: int) -> TaskResult:
        try:
            handle = ray.get_actor(sandbox, namespace=NAMESPACE)
            # A slot started anew under this name (its node gone) holds no attempt; it may also
            # wait for a node forever: bounded like a first call.
            await asyncio.wait_for(call(handle.__ray_ready__.remote()), PLACE_TIMEOUT_S)
            result: TaskResult | None = await call(handle.reattach.remote(task_id, attempt))
        except (ValueError, RayActorError, TimeoutError) as exc:
            raise SandboxLostError(sandbox, task_id, attempt) from exc
        if result is None:
            raise SandboxLostError(sandbox, task_id, attempt)
        return result

    async def cancel(self, sandbox: str, task_id: str, attempt: int) -> None:
        with contextlib.suppress(ValueError, RayActorError):
            await ray.get_actor(sandbox, namespace=NAMESPACE).cancel.remote(task_id, attempt)

    def warm(self, slots: int, agents: int = 0) -> None:
        """Start the slot actors now, each with its backend ready (warm containers), and the
        first `agents` of them with their agent loaded, so the first tasks wait neither on worker
        processes nor on container starts nor on loading the model SDK. (Tasks go to the
        lowest free slot, so those are the slots the first agent tasks land on.)"""
        ray.get([self.handle(self.sandbox_name(i)).prepare.remote(i < agents) for i in range(slots)])


class HostedSandbox(SandboxActor):
    """A sandbox slot as a Ray actor: it learns which node it landed on, and works from that
    node's clone of the origin when the origin is elsewhere."""

    def __init__(
        self, name: str, bus: BusPort, backend: SandboxBackend, agents: AgentEnv | None = None
    ) -> None:
        node = ray.get_runtime_context().get_node_id()
        if hasattr(backend, "origin"):
            backend = on_node(backend, node)
        if hasattr(backend, "slot"):
            backend = dataclasses.replace(backend, slot=name)  # type: ignore[type-var]
        port: AgentsPort | None = None
        if agents is not None:
            port = SlotAgents(agents, name) if agents.agents.host == "slot" else RayAgents(agents, name)
        super().__init__(name, bus, backend, node, port)
        if isinstance(port, SlotAgents):
            port.tools = self.tool  # the conversation is in this process: its tool calls too

    async def prepare(self, agents: bool = False) -> None:
        await super().prepare(agents)
        self._report_pool()

    async def execute(self, request: TaskRequest) -> TaskResult:
        try:
            return await super().execute(request)
        finally:
            self._report_pool()

    def _report_pool(self) -> None:
        ready = getattr(self._backend, "ready", None)
        _, run_id, _, slot = [*self._name.split("/", 3), "", "", "", ""][:4]
        pool_ready(run_id, slot, ready() if callable(ready) else 0)


def _start_pinned(cls: type, run_id: str, role: str, *args: Any, **kwargs: Any) -> Any:
    """A restartable bookkeeping actor named `omoi/<run>/<role>`, on this node (the log and repo are here)."""
    return host(cls, *args, actor=actor_name(run_id, role), restarts="always", node="here", **kwargs)


def start_bus(run_id: str, log_path: Path, durability: Durability = "FULL") -> Any:
    return _start_pinned(DurableBus, run_id, "bus", str(log_path), durability)


class HostedIntegrator(IntegratorActor):
    """The merge queue on Ray: its checks and rung attempts run on a sandbox slot of its own,
    `omoi/<run>/sandbox/merge`, on this node (where the repository is)."""

    def __init__(self, run_id: str, git_dir: str, sandboxes: RaySandboxes, radar_interval: float) -> None:
        bus = BusProxy(actor_name(run_id, "bus"))
        super().__init__(
            run_id,
            git_dir,
            bus,
            sandboxes,
            slot=actor_name(run_id, "sandbox", "merge"),
            radar_interval=radar_interval,
            name=actor_name(run_id, "integrator"),
        )


def start_integrator(run_id: str, git_dir: Path, sandboxes: RaySandboxes) -> Any:
    """Its slot is placed here, outside the run's `omoi_sandbox` slots: a merge never waits for a
    task's slot to free up. Its timers are read from the driver's environment (OMOI_RADAR_INTERVAL),
    validated at start, not from a Ray worker's."""
    here_only = RaySandboxes(
        run_id, sandboxes.bus, sandboxes.backend, {"scheduling_strategy": here()}, sandboxes.agents
    )
    radar = merge_settings().radar_interval
    return _start_pinned(HostedIntegrator, run_id, "integrator", run_id, str(git_dir), here_only, radar)


def start_graph(
    run_id: str,
    sandboxes: RaySandboxes,
    log_path: Path,
    *,
    max_parallel: int,
    ordering: str = "critical-path",
    durability: Durability = "FULL",
) -> Any:
    bus = WriteAheadBus(actor_name(run_id, "bus"), str(log_path), durability)
    return _start_pinned(
        GraphActor,
        run_id,
        "graph",
        run_id,
        bus,
        sandboxes,
        max_parallel=max_parallel,
        ordering=ordering,
        name=actor_name(run_id, "graph"),
    )
