"""The sandbox seam: a place to run one task attempt's commands on its own branch.

Backends implement `SandboxBackend`: `local` and `noop` (sandbox/local.py) and `docker`
(sandbox/docker.py). Agents and the sandbox actor see only `Sandbox`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from omoi.runtime.git.transport import NodeRepo, default_node_root
from omoi.runtime.run.execution import TaskRequest
from omoi.runtime.sandbox.workspace import SearchHit

DEFAULT_OUTPUT_CAP = 16 * 1024
SANDBOX_KINDS = ("auto", "docker", "local", "noop")


# Every sandboxed command gets these: running a project's tests must not leave bytecode in the
# worktree, where the task's commit would pick it up (not every repository ignores __pycache__).
COMMAND_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool
    duration_s: float
    oom_killed: bool = False
    killed_for: str = ""  # why the runtime killed it (a limit), if it did


class Sandbox(Protocol):
    async def exec(self, command: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        """Run `command` in the workspace; past `timeout` the whole process tree is killed."""
        ...

    async def commit(self, message: str) -> str:
        """Commit all changes to the sandbox's branch and return its head."""
        ...

    async def checkpoint(self, message: str) -> str:
        """Commit work in progress to the branch while the task goes on (the merge queue's radar
        reads it); the final `commit` folds these into one. "" where there is nothing to do."""
        ...

    async def destroy(self) -> None:
        """Remove the workspace; committed work stays on the branch."""
        ...

    async def alive(self) -> bool:
        """Whether it can still run the attempt's commands (its workspace is there, its container
        runs): the agent's heartbeat says the attempt is alive only when its sandbox is too."""
        ...

    # Files, confined to the workspace (see runtime.sandbox.workspace): paths are relative to it, or
    # absolute under /workspace; anything that would leave it raises PathEscapeError.
    async def read_file(self, path: str, start: int | None = None, end: int | None = None) -> str: ...

    async def write_file(self, path: str, content: str) -> None: ...

    async def list_files(self, path: str = ".") -> list[str]: ...

    async def search(self, pattern: str, path: str = ".") -> list[SearchHit]: ...

    async def diff(self) -> str: ...


class SandboxBackend(Protocol):
    name: str

    async def warm(self) -> None:
        """Get ready ahead of the first task (start spare containers, ...); may do nothing."""
        ...

    async def create(self, request: TaskRequest) -> Sandbox: ...


def on_node(backend: Any, node_id: str, node_root: Path | None = None) -> Any:
    """The backend as it works on node `node_id`: from that node's clone of the origin when it
    has one (`origin` set), else unchanged (the repository is on this node)."""
    if backend.origin is None:
        return backend
    repo = NodeRepo(
        backend.origin, (node_root or default_node_root()) / node_id / backend.run_id, backend.run_id
    )
    return dataclasses.replace(
        backend, repo=repo.path, git_dir=repo.path, worktree_root=repo.worktrees, node_repo=repo
    )
