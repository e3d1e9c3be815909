"""The Docker sandbox backend: the task's worktree bind-mounted into a locked-down container.

Defaults: no network (a task opts in with `network: true`), memory, CPU and pids limits, a
read-only root with a tmpfs `/tmp` and home, every capability dropped, no-new-privileges, an
unprivileged user that owns the worktree, and no host environment at all (the model is called
from the agent actor, outside). Commands run through `docker exec` under `timeout -s KILL`,
which kills the command's whole process group. Git runs on the host: the container never needs
the repository's metadata."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omoi.runtime.config import UNLIMITED, SandboxSettings
from omoi.runtime.errors import SandboxError
from omoi.runtime.git import repo as git
from omoi.runtime.git.transport import NodeRepo
from omoi.runtime.run.execution import TaskRequest
from omoi.runtime.sandbox import tree_quota
from omoi.runtime.sandbox.image import SANDBOX_UID, default_tag
from omoi.runtime.sandbox.local import TailBuffer, WorktreeSandbox, prepare_tree
from omoi.runtime.sandbox.seam import COMMAND_ENV, DEFAULT_OUTPUT_CAP, ExecResult, Sandbox
from omoi.runtime.sandbox.tree_quota import TreeLimits

QUOTA_POLL_S = 0.1  # how often, at the most, a running command's workspace is measured against its quota
LABEL = "omoi.run"
RUNDIR_LABEL = "omoi.rundir"  # where the run's lock is: `omoi gc` leaves containers of live runs alone
SLOT_LABEL = "omoi.slot"  # the slot (actor) that owns it: a slot's successor removes its leftovers


@dataclass(frozen=True)
class DockerLimits:
    memory: str | None = "2g"  # None: no memory limit (spelled `unlimited` in the settings)
    cpus: float = 1.0
    pids: int = 512
    tmpfs: str = "512m"

    @classmethod
    def from_settings(cls, cfg: SandboxSettings) -> DockerLimits:
        memory = None if cfg.memory == UNLIMITED else cfg.memory
        return cls(memory=memory, cpus=cfg.cpus, pids=cfg.pids, tmpfs=cfg.tmpfs)

    def engine_options(self) -> dict[str, Any]:
        """The container options that hold these limits (swap is never allowed)."""
        memory = {"mem_limit": self.memory, "memswap_limit": self.memory} if self.memory else {}
        return {**memory, "nano_cpus": int(self.cpus * 1e9), "pids_limit": self.pids}


@dataclass
class DockerBackend:
    """Sandboxes as containers over worktrees. Keeps `pool` containers started ahead of time, each
    over an empty directory mounted at /workspace: acquiring one costs a worktree, not a container
    start. A container is replaced after use, never reused, so nothing a task left behind (a
    process, a file in /tmp) can reach the next task."""

    repo: Path
    git_dir: Path
    worktree_root: Path
    run_id: str = ""
    image: str = field(default_factory=default_tag)
    limits: DockerLimits = field(default_factory=DockerLimits)
    output_cap: int = DEFAULT_OUTPUT_CAP
    tree_limits: TreeLimits = field(default_factory=TreeLimits)
    pool: int = 1
    slot: str = ""
    origin: str | None = None  # set when sandboxes may run on nodes other than the origin's
    node_repo: NodeRepo | None = None
    rundir: str = ""  # the run's directory (its lock): on another node, not where the trees are
    name: str = "docker"

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @property
    def client(self) -> Any:
        if "_client" not in self.__dict__:
            self.__dict__["_client"] = connect_engine()
        return self.__dict__["_client"]

    @property
    def _spares(self) -> list[asyncio.Future[tuple[Any, Path]]]:
        spares: list[asyncio.Future[tuple[Any, Path]]] = self.__dict__.setdefault("_spare_list", [])
        return spares

    def ready(self) -> int:
        """Warm containers started and waiting for a task."""
        return sum(1 for f in self._spares if f.done() and not f.cancelled() and f.exception() is None)

    async def warm(self) -> None:
        """Start the pool now (a sandbox slot calls this when it starts)."""
        await self._adopt()
        self._refill()
        await asyncio.gather(*self._spares, return_exceptions=True)

    async def _adopt(self) -> None:
        """A slot starting again after its actor died first removes the containers its predecessor
        left running, before anything reuses a directory one of them may still be writing into."""
        if self.slot and not self.__dict__.get("_adopted"):
            self.__dict__["_adopted"] = True
            await asyncio.to_thread(self._remove_slot_leftovers)

    async def close(self) -> None:
        """Remove the spares (a run's shutdown also removes every container labelled with it)."""
        spares, self.__dict__["_spare_list"] = self._spares, []
        for fut in spares:
            with contextlib.suppress(Exception):
                container, slot = await fut
                await asyncio.to_thread(container.remove, force=True)
                shutil.rmtree(slot, ignore_errors=True)

    async def create(self, request: TaskRequest) -> Sandbox:
        await self._adopt()
        spare = None
        while self._spares and spare is None:
            with contextlib.suppress(Exception):  # a spare that failed to start is dropped
                spare = await self._spares.pop(0)
        try:
            return await asyncio.to_thread(self._create, request, spare)
        finally:
            self._refill()

    def _remove_slot_leftovers(self) -> None:
        for c in self.client.containers.list(
            all=True, filters={"label": [f"{LABEL}={self.run_id}", f"{SLOT_LABEL}={self.slot}"]}
        ):
            c.remove(force=True)

    def _refill(self) -> None:
        while len(self._spares) < self.pool:
            self._spares.append(asyncio.ensure_future(asyncio.to_thread(self._start_spare)))

    def _start_spare(self) -> tuple[Any, Path]:
        slot = Path(self.worktree_root) / f".slot-{uuid.uuid4().hex[:12]}"
        slot.mkdir(parents=True)
        os.chown(slot, SANDBOX_UID, SANDBOX_UID)
        return self._start_container(slot, network=False, task="spare", attempt=0), slot

    def _start_container(self, workspace: Path, *, network: bool, task: str, attempt: int) -> Any:
        import docker.types

        try:
            container = self.client.containers.create(
                self.image,
                ["sleep", "infinity"],
                init=True,
                auto_remove=False,
                name=f"omoi-{self.run_id or 'x'}-{task}-{attempt}-{uuid.uuid4().hex[:6]}"[:120],
                labels={
                    LABEL: self.run_id,
                    SLOT_LABEL: self.slot,
                    RUNDIR_LABEL: self.rundir or str(Path(self.worktree_root).parent),
                    "omoi.task": task,
                    "omoi.attempt": str(attempt),
                },
                network_mode="bridge" if network else "none",
                read_only=True,
                tmpfs={
                    "/tmp": f"rw,size={self.limits.tmpfs}",
                    "/home/omoi": f"rw,size={self.limits.tmpfs},uid={SANDBOX_UID}",
                },
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                **self.limits.engine_options(),
                # A Mount, not a `volumes` string: a path with ':' in it would split that string.
                mounts=[docker.types.Mount("/workspace", str(workspace), type="bind", read_only=False)],
                working_dir="/workspace",
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                environment={},
            )
            container.start()
            return container
        except Exception as exc:
            raise SandboxError(f"cannot start a sandbox container from {self.image}: {exc}") from exc

    def _create(self, request: TaskRequest, spare: tuple[Any, Path] | None) -> DockerSandbox:
        if spare is not None and not request.network:
            container, workspace = spare
        else:
            if spare is not None:  # a task with network needs its own container; the spare is replaced
                spare[0].remove(force=True)
                shutil.rmtree(spare[1], ignore_errors=True)
            container = None
            workspace = Path(self.worktree_root) / request.task_id
        tree = git.TaskTree(Path(self.git_dir), workspace, request.branch)
        try:
            if self.node_repo is not None:
                self.node_repo.sync(request.base)
            tree = prepare_tree(Path(self.git_dir), workspace, request)
            _chown_tree(workspace, SANDBOX_UID)
            if container is None:  # cold: no spare, or the task needs its own network
                container = self._start_container(
                    workspace, network=request.network, task=request.task_id, attempt=request.attempt
                )
        except BaseException:
            if container is not None:
                container.remove(force=True)
            tree.remove()
            raise
        return DockerSandbox(self, container, tree)


class DockerSandbox(WorktreeSandbox):
    """A container over a task tree. Host-side git reads the tree only while no process of the
    task can change it: a diff or a work-in-progress checkpoint freezes the container (cgroup
    freezer) for its duration, and the final commit kills it first: its last use of the container."""

    def __init__(self, backend: DockerBackend, container: Any, tree: git.TaskTree) -> None:
        super().__init__(tree, owner_uid=SANDBOX_UID, publish=backend.node_repo, limits=backend.tree_limits)
        self.backend, self.container = backend, container

    def _diff(self) -> str:
        with self._held("read its diff"):
            return super()._diff()

    def _checkpoint(self, message: str) -> str:
        with self._held("commit its work in progress"):
            return super()._checkpoint(message)

    async def alive(self) -> bool:
        return await asyncio.to_thread(self._alive)

    def _alive(self) -> bool:
        """Its container runs (or is frozen for a moment by a checkpoint) over its workspace."""
        import docker.errors

        try:
            self.container.reload()
        except docker.errors.DockerException:  # gone, or the engine does not answer
            return False
        return self.container.status in ("running", "paused") and self.workspace.is_dir()

    @contextlib.contextmanager
    def _held(self, why: str) -> Iterator[None]:
        """The container frozen (cgroup freezer): no process of the task runs while host git reads."""
        import docker.errors

        try:
            self.container.pause()
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot hold the sandbox still to {why}: {exc}") from exc
        try:
            yield
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self.container.unpause()

    def _commit(self, message: str) -> str:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):  # 409: it has stopped already
            self.container.kill()
        self.container.wait(timeout=30)
        return super()._commit(message)

    async def exec(self, command: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        return await asyncio.to_thread(self._exec, command, timeout, env or {})

    def _exec(self, command: str, timeout: float, env: dict[str, str]) -> ExecResult:
        api = self.backend.client.api
        start, ooms = time.monotonic(), _oom_kills(self.container.id)
        argv = ["timeout", "-s", "KILL", f"{timeout:g}s", "sh", "-c", command]
        exec_id = api.exec_create(
            self.container.id,
            argv,
            workdir="/workspace",
            environment={**COMMAND_ENV, **env},
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        )["Id"]
        tail = TailBuffer(self.backend.output_cap)
        stop, over = threading.Event(), list[str]()
        watchdog = threading.Thread(target=self._watch_disk, args=(stop, over), daemon=True)
        watchdog.start()
        try:
            for chunk in api.exec_start(exec_id, stream=True, demux=False):
                tail.feed(chunk)
        finally:
            stop.set()
            watchdog.join()
        code = api.exec_inspect(exec_id)["ExitCode"]
        elapsed = time.monotonic() - start
        oom = _oom_kills(self.container.id) > ooms
        timed_out = code == 137 and not oom and not over and elapsed >= timeout * 0.95
        note = f"\n[omoi] the command was killed: {over[0]}\n" if over else ""
        return ExecResult(
            exit_code=None if timed_out else code,
            output=tail.text() + note,
            truncated=tail.truncated,
            timed_out=timed_out,
            duration_s=elapsed,
            oom_killed=oom,
            killed_for=over[0] if over else "",
        )

    def _watch_disk(self, stop: threading.Event, over: list[str]) -> None:
        """While a command runs, measure the workspace against its quota; past it, kill every
        process of the task (not the container's init), so a command cannot fill the host's disk.
        The interval is QUOTA_POLL_S, or five times what the last scan cost on a large tree (the
        watchdog stays under a fifth of a core); a command overshoots by what it writes in one."""
        interval = QUOTA_POLL_S
        while not stop.wait(interval):
            began = time.monotonic()
            try:
                tree_quota.enforce(tree_quota.scan(self.workspace, self.limits), self.limits, per_file=False)
            except SandboxError as exc:
                over.append(str(exc))
                api, kill = self.backend.client.api, ["sh", "-c", "kill -KILL -1"]
                api.exec_start(api.exec_create(self.container.id, kill, user=str(SANDBOX_UID))["Id"])
                return
            interval = max(QUOTA_POLL_S, 5 * (time.monotonic() - began))

    async def destroy(self) -> None:
        await asyncio.to_thread(self._destroy)

    def _destroy(self) -> None:
        try:
            self.container.remove(force=True)
        finally:
            self.tree.remove()


def connect_engine() -> Any:
    """A Docker client that has answered a ping, or a SandboxError that says what to do."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise SandboxError(
            f"no Docker engine answers ({exc}); start dockerd, or run with --sandbox local (not isolated)"
        ) from exc
    return client


def engine_or_none() -> Any:
    """A client if an engine answers, else None: for callers that can do without one."""
    try:
        return connect_engine()
    except SandboxError:
        return None


def engine_answers() -> bool:
    client = engine_or_none()
    if client is None:
        return False
    client.close()
    return True


def remove_run_containers(
    client: Any,
    run_id: str | None = None,
    *,
    spare_live: bool = False,
    rundir: Path | None = None,
    under: Path | None = None,
) -> int:
    """Remove the containers of one run (or of every run); returns how many. With `spare_live`,
    containers of runs that a live process is driving are left alone. `rundir` keeps to the run
    kept in that directory (another repository may have a run of the same id), `under` to the
    runs kept below that directory (one repository's)."""
    from omoi.runtime.run.begin import is_live

    filters = {"label": f"{LABEL}={run_id}" if run_id else LABEL}
    removed = 0
    for c in client.containers.list(all=True, filters=filters):
        label = c.labels.get(RUNDIR_LABEL)
        if rundir is not None and label != str(rundir):
            continue
        if under is not None and (not label or not Path(label).is_relative_to(under)):
            continue
        if spare_live and label and is_live(Path(label)):
            continue
        c.remove(force=True)
        removed += 1
    return removed


def _chown_tree(root: Path, uid: int) -> None:
    for dirpath, _dirs, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for name in filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def _oom_kills(container_id: str) -> int:
    """OOM kills in the container's memory cgroup so far (cgroup v1 or v2)."""
    candidates = [
        (Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.oom_control"), "oom_kill"),
        (Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.events"), "oom_kill"),
        (Path(f"/sys/fs/cgroup/docker/{container_id}/memory.events"), "oom_kill"),
    ]
    for path, key in candidates:
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except OSError:
            continue
    return 0
