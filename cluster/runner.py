"""Driving one run on Ray: start (or resume) its actors, follow its log, clean up after it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ray
import structlog

from omoi.cluster import deploy
from omoi.cluster.agents import AgentEnv, start_concurrency
from omoi.cluster.connect import actor_name, here, kill_run_actors, run_actor_names
from omoi.cluster.handles import BusProxy
from omoi.cluster.spec import start_spec
from omoi.cluster.supervision import start_supervision
from omoi.runtime.config import agent_settings, model_settings, sandbox_settings, supervision_settings
from omoi.runtime.errors import InputError, SandboxError
from omoi.runtime.git.repo import clear_stale_locks
from omoi.runtime.log.events import (
    AgentAnswered,
    BudgetRaised,
    Event,
    RunCancelRequested,
    RunFinished,
    TaskCancelRequested,
    check_readable,
)
from omoi.runtime.log.store import Durability
from omoi.runtime.log.subscription import advance
from omoi.runtime.run.begin import RunLock, collect_worktrees, open_log
from omoi.runtime.run.paths import RunPaths
from omoi.runtime.run.snapshot import fold_log
from omoi.runtime.run.state import FOLLOWED, fold
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.sandbox.docker import (
    DockerBackend,
    DockerLimits,
    connect_engine,
    engine_or_none,
    remove_run_containers,
)
from omoi.runtime.sandbox.image import default_tag, ensure_image, image_exists
from omoi.runtime.sandbox.local import LocalBackend, NoopBackend
from omoi.runtime.sandbox.seam import SandboxBackend

EventSink = Callable[[list[Event]], None]

logger = structlog.get_logger("omoi.runner")


SLOT_RESOURCE = "omoi_sandbox"


def make_backend(kind: str, paths: RunPaths, *, spread: bool = False) -> SandboxBackend:
    """`spread`: sandboxes may land on other nodes, so they work from clones of the repository."""
    origin = str(paths.repo.path) if spread else None
    cfg = sandbox_settings()
    if kind == "local":
        return LocalBackend(
            paths.repo.path,
            paths.repo.git_dir,
            paths.worktrees,
            run_id=paths.run_id,
            origin=origin,
            tree_limits=cfg.tree_limits(),
        )
    if kind == "docker":
        return DockerBackend(
            paths.repo.path,
            paths.repo.git_dir,
            paths.worktrees,
            run_id=paths.run_id,
            origin=origin,
            image=cfg.image or default_tag(),
            limits=DockerLimits.from_settings(cfg),
            tree_limits=cfg.tree_limits(),
            pool=cfg.pool,
            rundir=str(paths.run_dir),
        )
    if kind == "noop":
        return NoopBackend()
    raise InputError(f"unknown sandbox backend '{kind}' (choose from docker, local)")


NOT_ISOLATED = (
    "tasks run with --sandbox local, directly on this host, NOT isolated "
    "(no limits, network and host files reachable)"
)


def choose_sandbox(requested: str, say: Callable[[str], None] = print) -> tuple[str, str | None]:
    """Resolve `auto`: `docker` when an engine answers and the image is there or can be built now
    (on first use, saying so), else `local`, with a warning to show. A first run never dead-ends."""
    if requested != "auto":
        return requested, None
    client = engine_or_none()
    if client is None:
        return "local", f"no Docker engine answers: {NOT_ISOLATED}"
    tag = sandbox_settings().image or default_tag()
    try:
        built = ensure_image(client, tag, say)
    except SandboxError as exc:
        return "local", f"the sandbox image {tag} could not be built ({exc}): {NOT_ISOLATED}"
    if built is None:
        return "local", (
            f"the sandbox image {tag} is not built, and neither debootstrap nor a usable local base "
            "image is here to build it (install debootstrap, or `omoi sandbox build-image "
            f"--dockerfile`): {NOT_ISOLATED}"
        )
    return "docker", None


def check_sandbox(kind: str) -> None:
    """Everything a backend needs, checked before a run writes anything."""
    if kind == "docker":
        tag = sandbox_settings().image or default_tag()  # a bad setting is reported before anything else
        client = connect_engine()
        if not image_exists(client, tag):
            raise InputError(f"the sandbox image {tag} is not built: run `omoi sandbox build-image`")


class RunHandle:
    """A live run. `wait` follows its log until `run.finished`; `cancel` and `add_tasks` go to the
    graph actor; `inject` publishes any event into the run's bus."""

    def __init__(
        self,
        paths: RunPaths,
        bus: Any,
        graph: Any,
        result: Any,
        keep: Sequence[Any] = (),
        lock: RunLock | None = None,
    ) -> None:
        self.paths, self.run_id = paths, paths.run_id
        self._keep = list(keep)  # a non-detached actor dies with its last handle
        self._lock = lock
        self.bus, self.graph, self._result = bus, graph, result
        self.cursor = 0

    def events(self, timeout: float = 0.5, prefixes: tuple[str, ...] | None = FOLLOWED) -> list[Event]:
        """The next events after this handle's cursor (a long-poll of at most `timeout` s)."""
        batch: list[Event] = ray.get(self.bus.read.remote(self.cursor, prefixes, 5000, timeout))
        fresh, self.cursor = advance(self.cursor, batch)  # the same rule as a Subscription's
        return fresh

    def wait(
        self, on_events: EventSink | None = None, timeout: float | None = None, refresh: float = 0.2
    ) -> RunFinished:
        """Block until the run finishes; every `refresh` s hand what is new in the log to `on_events`.

        The run's result is what is waited on; the log is read at most once per refresh, so a
        watching driver costs the cluster a few reads a second however busy the run is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            done, _ = ray.wait([self._result], timeout=refresh)
            if on_events is not None:
                while batch := self.events(timeout=0):
                    on_events(batch)
            if done:
                finished: RunFinished = ray.get(self._result)
                return finished
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_id} did not finish within {timeout}s")

    def inject(self, events: Sequence[Event]) -> list[int]:
        """Publish events into the live run; returns their seqs. Refused whole (InputError) if an
        event would not read back from the log as it was written."""
        check_readable(events)
        seqs: list[int] = ray.get(self.bus.publish.remote(list(events)))
        return seqs

    def answer(self, task_id: str, answer: str) -> None:
        """Answer the question of the task's agent (`agent.needs_input`); its task goes on."""
        self.inject([AgentAnswered(run_id=self.run_id, task_id=task_id, answer=answer, source="user")])

    def raise_budget(self, scope: str = "run", *, tokens: int = 0, usd: float = 0.0) -> None:
        """Lift the run's (or a task's) budget by these amounts; agents waiting on it go on."""
        self.inject(
            [BudgetRaised(run_id=self.run_id, scope=scope, add_tokens=tokens, add_usd=usd, source="user")]
        )

    def cancel(self, task_id: str | None = None, reason: str = "cancelled by user") -> None:
        ev: Event = (
            RunCancelRequested(run_id=self.run_id, reason=reason)
            if task_id is None
            else TaskCancelRequested(run_id=self.run_id, task_id=task_id, reason=reason)
        )
        self.inject([ev])

    def add_tasks(self, specs: Sequence[TaskSpec]) -> list[str]:
        ids: list[str] = ray.get(self.graph.add_tasks.remote(list(specs)))
        return ids

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Kill every actor of the run, any command its sandboxes left running, its containers and
        its task trees (warm slots included). The log and the branches stay; `resume` picks the run
        up again."""
        clear_run(self.paths)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@dataclass(frozen=True)
class Cleared:
    actors: int
    containers: int
    trees: int

    def __str__(self) -> str:
        def n(count: int, what: str) -> str:
            return f"{count} {what}{'' if count == 1 else 's'}"

        return f"{n(self.actors, 'actor')}, {n(self.containers, 'container')}, {n(self.trees, 'task tree')}"

    def __add__(self, other: Cleared) -> Cleared:
        return Cleared(
            self.actors + other.actors, self.containers + other.containers, self.trees + other.trees
        )


def clear_run(paths: RunPaths, *, actors: bool = True) -> Cleared:
    """Remove everything a run left running or on disk: its actors (when connected to its
    cluster), its containers, its task trees and warm slots, and the commands they ran. The log
    and the branches stay. Only this run's: names, labels and directories are the run's own."""
    killed = len(run_actor_names(paths.run_id)) if actors else 0
    if actors:
        kill_run_actors(paths.run_id)
    client = engine_or_none()  # a killed sandbox actor's containers still run
    containers = 0
    if client is not None:
        containers = remove_run_containers(client, paths.run_id, rundir=paths.run_dir)
    return Cleared(killed, containers, collect_worktrees(paths.repo, paths.run_dir))  # reaps processes first


def launch(
    paths: RunPaths,
    first_events: Sequence[Event] | None = None,
    *,
    max_parallel: int | None = None,
    sandbox: str | None = None,
    ordering: str = "critical-path",
    durability: Durability = "FULL",
    agents: AgentEnv | None = None,
) -> RunHandle:
    """Start the actors of a new run (`first_events` given) or of an existing one (resume).

    `agents` configures the model client and the agent loop (default: read from the environment,
    `ANTHROPIC_*`, `OMOI_MODEL_*`, `OMOI_AGENT_*`).

    Everything that can be refused is checked before the first write; a failure after that
    releases the run's lock, so a retry or `omoi resume` can take it."""
    if first_events is None:
        with contextlib.closing(open_log(paths)) as log:
            state = fold_log(paths.run_id, log)[0]
    else:
        state = fold(paths.run_id, list(first_events))
    if state.started is None:
        raise InputError(f"run '{paths.run_id}' has no run.started event in {paths.events_db}")
    max_parallel = max_parallel or state.started.max_parallel
    env = agents or AgentEnv(model_settings(), agent_settings())
    agent_tasks = [t.spec.agent for t in state.tasks.values() if t.spec.agent is not None]
    for agent in agent_tasks:
        env.models.model_for(agent.category)  # an unknown category is refused before anything starts
    # A goal's agents are not loaded during its spec: on 2 cores, loading the SDK in each slot's agent
    # took the CPU the spec's own first turn needed (first turn 5.2 s -> 2.3 s in `omoi demo`).
    agents_ahead = 0 if state.started.plan_only or state.started.goal else len(agent_tasks)
    sandbox = sandbox or state.started.sandbox
    # Nodes that advertise sandbox slots get the sandboxes; without any, they stay on this node.
    slots = int(ray.cluster_resources().get(SLOT_RESOURCE, 0))  # type: ignore[no-untyped-call]
    if slots and max_parallel > slots:
        raise InputError(
            f"--max-parallel {max_parallel} is more than the cluster's {slots} '{SLOT_RESOURCE}' slots"
        )
    placement: dict[str, Any] = (
        {"resources": {SLOT_RESOURCE: 1}} if slots else {"scheduling_strategy": here()}
    )
    backend = make_backend(sandbox, paths, spread=bool(slots))
    lock = RunLock(paths.run_dir)
    lock.acquire()  # refuses a second driver for the same run
    try:
        kill_run_actors(paths.run_id)  # leftovers of an interrupted driver would hold stale state
        stale = clear_stale_locks(paths.repo.git_dir, paths.run_id, paths.worktrees)
        if stale:  # their git was killed with its actor: nothing else of this run is running now
            logger.warning("run.stale_git_locks_removed", run_id=paths.run_id, files=[str(p) for p in stale])
        bus = deploy.start_bus(paths.run_id, paths.events_db, durability)
        if first_events is not None:  # a run starts when it is launched: stamped as it becomes durable
            now = datetime.now(UTC)
            ray.get(bus.publish.remote([e.model_copy(update={"ts": now}) for e in first_events]))
        supervisor = start_supervision(paths.run_id, supervision_settings(), env)
        following = supervisor.start.remote()  # the budget's fold is current before any model call
        start_concurrency()
        sandboxes = deploy.RaySandboxes(
            paths.run_id, BusProxy(actor_name(paths.run_id, "bus")), backend, placement, env
        )
        keep = [supervisor]
        if state.awaiting_spec:
            spec = start_spec(paths, state.started.base_commit, env)
            keep += [spec, spec.run.remote()]  # it drives itself; the graph follows the log
        # Slots for the tasks there are (a goal's come later): one task needs one slot, not max_parallel.
        slots_now = max_parallel if state.started.goal else min(max_parallel, len(state.tasks))
        sandboxes.warm(0 if state.started.plan_only else slots_now, agents=min(slots_now, agents_ahead))
        ray.get(following)
        integrator = deploy.start_integrator(paths.run_id, paths.repo.git_dir, sandboxes)
        keep += [integrator, integrator.run.remote()]  # it follows the log until the run ends
        graph = deploy.start_graph(
            paths.run_id,
            sandboxes,
            paths.events_db,
            max_parallel=max_parallel,
            ordering=ordering,
            durability=durability,
        )
    except BaseException:
        clear_run(paths)  # a failed launch leaves nothing: actors, warm containers, slot directories
        lock.release()
        raise
    return RunHandle(paths, bus, graph, graph.run.remote(), keep=keep, lock=lock)
