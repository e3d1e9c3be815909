"""The Docker sandbox backend: the task's worktree bind-mounted into a locked-down container.

Defaults: no network (a task opts in with `network: true`), memory, CPU and pids limits, a
read-only root with a tmpfs `/tmp` and home, every capability dropped, no-new-privileges, an
unprivileged user that owns the worktree, and no host environment at all (the model is called
from the agent actor, outside). Commands run through `docker exec` under `timeout -s KILL`,
which kills the command's whole process group. Git runs on the host: the container never needs
the repository's metadata."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omoi.runtime import git
from omoi.runtime.errors import SandboxError
from omoi.runtime.execution import TaskRequest
from omoi.runtime.image import SANDBOX_UID, default_tag
from omoi.runtime.sandbox import (
    DEFAULT_OUTPUT_CAP,
    ExecResult,
    Sandbox,
    TailBuffer,
    WorktreeSandbox,
    prepare_worktree,
)

LABEL = "omoi.run"


@dataclass(frozen=True)
class DockerLimits:
    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    tmpfs: str = "512m"


@dataclass
class DockerBackend:
    """Sandboxes as containers over worktrees under `worktree_root/<task-id>`."""

    repo: Path
    git_dir: Path
    worktree_root: Path
    image: str = field(default_factory=default_tag)
    limits: DockerLimits = field(default_factory=DockerLimits)
    output_cap: int = DEFAULT_OUTPUT_CAP
    name: str = "docker"

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_client"}

    @property
    def client(self) -> Any:
        if "_client" not in self.__dict__:
            self.__dict__["_client"] = connect_engine()
        return self.__dict__["_client"]

    async def create(self, request: TaskRequest) -> Sandbox:
        return await asyncio.to_thread(self._create, request)

    def _create(self, request: TaskRequest) -> DockerSandbox:
        workspace = Path(self.worktree_root) / request.task_id
        prepare_worktree(Path(self.repo), Path(self.git_dir), workspace, request)
        _chown_tree(workspace, SANDBOX_UID)
        try:
            container = self.client.containers.run(
                self.image,
                ["sleep", "infinity"],
                detach=True,
                init=True,
                auto_remove=False,
                name=f"omoi-{request.run_id}-{request.task_id}-{request.attempt}"[:120],
                labels={
                    LABEL: request.run_id,
                    "omoi.task": request.task_id,
                    "omoi.attempt": str(request.attempt),
                },
                network_mode="bridge" if request.network else "none",
                read_only=True,
                tmpfs={
                    "/tmp": f"rw,size={self.limits.tmpfs}",
                    "/home/omoi": f"rw,size={self.limits.tmpfs},uid={SANDBOX_UID}",
                },
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit=self.limits.memory,
                memswap_limit=self.limits.memory,
                nano_cpus=int(self.limits.cpus * 1e9),
                pids_limit=self.limits.pids,
                volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}},
                working_dir="/workspace",
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                environment={},
            )
        except Exception as exc:
            git.remove_worktree(Path(self.repo), Path(self.git_dir), workspace)
            raise SandboxError(f"cannot start a sandbox container from {self.image}: {exc}") from exc
        return DockerSandbox(self, container, workspace)


class DockerSandbox(WorktreeSandbox):
    def __init__(self, backend: DockerBackend, container: Any, workspace: Path) -> None:
        super().__init__(Path(backend.repo), Path(backend.git_dir), workspace, owner_uid=SANDBOX_UID)
        self.backend, self.container = backend, container

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
            environment=env,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        )["Id"]
        tail = TailBuffer(self.backend.output_cap)
        for chunk in api.exec_start(exec_id, stream=True, demux=False):
            tail.feed(chunk)
        code = api.exec_inspect(exec_id)["ExitCode"]
        elapsed = time.monotonic() - start
        oom = _oom_kills(self.container.id) > ooms
        timed_out = code == 137 and not oom and elapsed >= timeout * 0.95
        return ExecResult(
            exit_code=None if timed_out else code,
            output=tail.text(),
            truncated=tail.truncated,
            timed_out=timed_out,
            duration_s=elapsed,
            oom_killed=oom,
        )

    async def destroy(self) -> None:
        await asyncio.to_thread(self._destroy)

    def _destroy(self) -> None:
        try:
            self.container.remove(force=True)
        finally:
            git.remove_worktree(Path(self.backend.repo), Path(self.backend.git_dir), self.workspace)


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


def engine_answers() -> bool:
    try:
        connect_engine().close()
        return True
    except SandboxError:
        return False


def remove_run_containers(client: Any, run_id: str | None = None) -> int:
    """Remove the containers of one run (or of every run); returns how many."""
    filters = {"label": f"{LABEL}={run_id}" if run_id else LABEL}
    found = client.containers.list(all=True, filters=filters)
    for c in found:
        c.remove(force=True)
    return len(found)


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
