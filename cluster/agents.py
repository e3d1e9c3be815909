"""Agents on Ray: each attempt's conversation in its sandbox slot's process (`SlotAgents`, the
default) or in an agent actor of its own next to the slot (`RayAgents`, `OMOI_AGENT_HOST=own`),
the cluster-wide concurrency actor, and the proxies that let agents reach their run's bus, budget
and guardian (the budget and the guardian live in the run's supervisor actor,
`cluster/supervision.py`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError

from omoi.actors.agent import AgentActor
from omoi.actors.concurrency import ConcurrencyActor
from omoi.cluster.connect import NAMESPACE, actor_name
from omoi.cluster.handles import BusProxy, Named, call
from omoi.cluster.hosting import host
from omoi.policies.model_calls import ModelRules
from omoi.runtime.config import AgentSettings, ModelSettings
from omoi.runtime.errors import AgentLostError, SandboxError
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.run.execution import AgentResult, TaskRequest
from omoi.runtime.sandbox.seam import ExecResult
from omoi.runtime.sandbox.workspace import SearchHit
from omoi.runtime.supervision.state import Note

CONCURRENCY = "omoi/cluster/concurrency"  # one for the cluster: limits hold across runs


@dataclass(frozen=True)
class AgentEnv:
    """What every agent of a run is configured with, read once where the run starts."""

    models: ModelSettings = field(default_factory=ModelSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)

    def rules(self) -> ModelRules:
        m = self.models
        return ModelRules(m.limits, m.default_limit, m.max_tries, m.backoff, m.backoff_cap)


class SlotsProxy(Named):
    """SlotsPort over the concurrency actor. While a lease is held, a `hold` call stays open on
    the actor: if the actor restarts, Ray re-sends it, and that re-claims the slot."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._holds: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_holds": {}}

    async def acquire(self, key: str, limit: int, holder: str, lease: str) -> None:
        await call(self.handle.acquire.remote(key, limit, holder, lease))
        self._holds[lease] = self.handle.hold.remote(key, limit, holder, lease)

    async def release(self, lease: str) -> None:
        self._holds.pop(lease, None)
        await call(self.handle.release.remote(lease))

    async def release_holder(self, holder: str) -> None:
        await call(self.handle.release_holder.remote(holder))


class BudgetProxy(Named):
    async def admit(self, task_id: str, after: int = 0) -> None:
        await call(self.handle.admit.remote(task_id, after))


# A slot's own `tool` method: (task id, attempt, operation, arguments) -> what the operation returns.
ToolCall = Callable[[str, int, str, dict[str, Any]], Awaitable[Any]]


class SlotTools:
    """The Sandbox file and command API of one attempt, served by the sandbox slot actor that owns
    the attempt's workspace. Committing and destroying stay with the slot. With `local` (the
    conversation runs in the slot's process), a tool call is a method call, not an actor call."""

    def __init__(self, slot: str, task_id: str, attempt: int, local: ToolCall | None = None) -> None:
        self._slot, self._task, self._attempt, self._local = Named(slot), task_id, attempt, local

    async def _op(self, op: str, **args: Any) -> Any:
        if self._local is not None:
            return await self._local(self._task, self._attempt, op, args)
        return await call(self._slot.handle.tool.remote(self._task, self._attempt, op, args))

    async def exec(self, command: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        result: ExecResult = await self._op("exec", command=command, timeout=timeout, env=env)
        return result

    async def read_file(self, path: str, start: int | None = None, end: int | None = None) -> str:
        text: str = await self._op("read_file", path=path, start=start, end=end)
        return text

    async def write_file(self, path: str, content: str) -> None:
        await self._op("write_file", path=path, content=content)

    async def list_files(self, path: str = ".") -> list[str]:
        files: list[str] = await self._op("list_files", path=path)
        return files

    async def search(self, pattern: str, path: str = ".") -> list[SearchHit]:
        hits: list[SearchHit] = await self._op("search", pattern=pattern, path=path)
        return hits

    async def diff(self) -> str:
        text: str = await self._op("diff")
        return text

    async def checkpoint(self, message: str) -> str:
        head: str = await self._op("checkpoint", message=message)
        return head

    async def alive(self) -> bool:
        up: bool = await self._op("alive")
        return up

    async def commit(self, message: str) -> str:
        raise SandboxError("an agent does not commit: its slot commits when the agent is complete")

    async def destroy(self) -> None:
        raise SandboxError("an agent does not destroy its sandbox")


class HostedAgent(AgentActor):
    """An agent actor built from names: its bus, the concurrency actor, the supervisor (budget and
    guardian); its sandbox is the slot named in each `run`."""

    def __init__(self, name: str, run_id: str, env: AgentEnv, holder: str | None = None) -> None:
        bus, slots = BusProxy(actor_name(run_id, "bus")), SlotsProxy(CONCURRENCY)
        supervisor = SupervisorProxy(actor_name(run_id, "supervisor"))  # budget and guardian: one call
        self._peers: tuple[Named, ...] = (bus, slots, supervisor)
        model = AnthropicModel(env.models, env.rules(), slots=slots)
        node = ray.get_runtime_context().get_node_id()
        super().__init__(
            name, bus, model, supervisor, env.models, env.agents, supervisor, node=node, holder=holder
        )

    async def prepare(self) -> None:
        """Also make one round trip to each peer: the first call on a new handle resolves the
        actor and connects to its process, tens of milliseconds the first turn would pay."""
        await super().prepare()
        await asyncio.gather(*(call(peer.handle.__ray_ready__.remote()) for peer in self._peers))

    async def run(  # type: ignore[override]
        self, request: TaskRequest, sandbox: Any, local: ToolCall | None = None
    ) -> AgentResult:
        """`sandbox` is the name of the slot actor that serves this attempt's tool calls; `local`
        its `tool` method, when this runs in the slot's process."""
        return await super().run(request, SlotTools(sandbox, request.task_id, request.attempt, local))


@dataclass
class RayAgents:
    """AgentsPort of one sandbox slot under `OMOI_AGENT_HOST=own`: the slot's agent actor,
    `omoi/<run>/agent/<slot>`, runs the conversation of each agent attempt the slot runs, one at a
    time, each from a clean state.

    A process per attempt would load the model SDK (~2 s of CPU) before every task; this one is
    loaded once, ahead of the first task (`warm`). An attempt that ends in anything but a result
    (cancelled, the agent died) takes the actor with it, and the next attempt gets a new one.
    The slot actor owns it (not detached), so a dead slot takes its agent along; `agent.started`
    names the actor that runs each task."""

    env: AgentEnv
    slot: str
    _agent: tuple[str, Any, Any] | None = field(default=None, init=False)  # name, handle, prepared
    _started: int = field(default=0, init=False)

    def _ready(self) -> tuple[str, Any]:
        if self._agent is None:
            _, run_id, _, slot = self.slot.split("/", 3)
            self._started += 1
            name = actor_name(run_id, "agent", slot if self._started == 1 else f"{slot}.{self._started}")
            node = ray.get_runtime_context().get_node_id()
            handle: Any = host(HostedAgent, name, run_id, self.env, actor=name, node=node, soft=True)
            self._agent = (name, handle, handle.prepare.remote())
        name, handle, _ = self._agent
        return name, handle

    async def warm(self) -> None:
        """Returns once the agent has loaded the SDK: a run's first agent task starts at once."""
        self._ready()
        assert self._agent is not None
        await call(self._agent[2])

    async def run(self, request: TaskRequest, sandbox: str) -> AgentResult:
        name, handle = self._ready()
        try:
            result: AgentResult = await call(handle.run.remote(request, sandbox))
            return result
        except RayActorError as exc:
            self._agent = None
            raise AgentLostError(name, request.task_id, request.attempt) from exc
        except BaseException:
            self._agent = None
            ray.kill(handle, no_restart=True)  # stopped mid-conversation: it may still hold leases
            raise
        finally:
            if self._agent is None:
                with contextlib.suppress(Exception):  # the sweep takes them back if this fails
                    await SlotsProxy(CONCURRENCY).release_holder(name)


@dataclass
class SlotAgents:
    """AgentsPort that runs each attempt's conversation in the slot's own process
    (`OMOI_AGENT_HOST=slot`, the default): one process per slot instead of two, and a tool call is
    a method call on the slot instead of two actor hops. With 50 agents on 2 cores that took ready
    -> first request from 4.2 s to 1.7 s and the peak memory from 16.3 to 9.5 GB; 100 agents with
    two processes each did not fit. The SDK is loaded once per slot, as with an agent actor
    (`warm`). The conversation's leases are held as `<slot name>@<actor id>` (`holder`), which the
    concurrency actor's sweep finds alive only while this very slot lives; an attempt that ends
    in anything but a result gives them back. If the slot's process dies, the conversation dies
    with it, as an agent actor does with its slot."""

    env: AgentEnv
    slot: str
    tools: ToolCall | None = None  # the slot's own `tool`: tool calls stay in the process
    _agent: HostedAgent | None = field(default=None, init=False)

    @property
    def holder(self) -> str:
        """The slot's name and this incarnation's actor id: a slot started again under the same
        name (its predecessor killed) must not keep the dead one's leases alive."""
        return f"{self.slot}@{ray.get_runtime_context().get_actor_id()}"

    def _ready(self) -> HostedAgent:
        if self._agent is None:
            run_id = self.slot.split("/", 3)[1]
            self._agent = HostedAgent(self.slot, run_id, self.env, holder=self.holder)
        return self._agent

    async def warm(self) -> None:
        await self._ready().prepare()

    async def run(self, request: TaskRequest, sandbox: str) -> AgentResult:
        try:
            return await self._ready().run(request, sandbox, self.tools)
        except BaseException:
            with contextlib.suppress(Exception):  # the sweep takes them back if this fails
                await SlotsProxy(CONCURRENCY).release_holder(self.holder)
            raise


class RayLiveness:
    async def alive(self, holder: str) -> bool:
        """Holders are actor names, `name@actor-id` where a name outlives its actor (a sandbox
        slot started again); a name that no longer resolves, or resolves to another actor, belongs
        to a dead one."""
        name, _, incarnation = holder.partition("@")
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return False
        return not incarnation or handle._actor_id.hex() == incarnation  # a handle's id: no public getter


class HostedConcurrency(ConcurrencyActor):
    def __init__(self) -> None:
        super().__init__(RayLiveness())


def start_concurrency() -> Any:
    """The cluster's concurrency actor, started by the first run that needs it and shared after."""
    # restarted empty, and rebuilt from its callers: see ConcurrencyActor
    return host(HostedConcurrency, actor=CONCURRENCY, restarts="always", detached=True)


class SupervisorProxy(BudgetProxy):
    """SupervisorPort over the run's supervisor actor (its budget and its guardian)."""

    async def before_turn(self, task_id: str, attempt: int, after: int = 0) -> list[Note]:
        notes: list[Note] = await call(self.handle.before_turn.remote(task_id, attempt, after))
        return notes

    async def admit_and_judge(self, task_id: str, attempt: int, admit_after: int, after: int) -> list[Note]:
        notes: list[Note] = await call(
            self.handle.admit_and_judge.remote(task_id, attempt, admit_after, after)
        )
        return notes
