"""The sandboxes whose workspace is a task tree on this host: `local` (no isolation) and `noop`.

`WorktreeSandbox` (files and commits over a task tree) is shared with the Docker backend; `noop`
runs nothing at all, for measuring the scheduler. The protocols are in sandbox/seam.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from omoi.runtime.git import repo as git
from omoi.runtime.git.transport import NodeRepo
from omoi.runtime.run.execution import TaskRequest
from omoi.runtime.sandbox import processes, tree_quota
from omoi.runtime.sandbox.beneath import shown
from omoi.runtime.sandbox.seam import COMMAND_ENV, DEFAULT_OUTPUT_CAP, ExecResult, Sandbox
from omoi.runtime.sandbox.tree_quota import TreeLimits
from omoi.runtime.sandbox.workspace import SearchHit, Workspace


class WorktreeSandbox:
    """What every backend whose workspace is a task tree on this host shares: files and commits.

    A commit first scans the tree (sizes, and entries git must not see, which are removed), so
    host-side git only ever reads a bounded tree of regular files and links. Backends whose task
    processes may still run at that moment stop them first (see DockerSandbox)."""

    def __init__(
        self,
        tree: git.TaskTree,
        owner_uid: int | None = None,
        publish: NodeRepo | None = None,
        limits: TreeLimits | None = None,
    ) -> None:
        self.tree, self.workspace = tree, tree.workspace
        self.files = Workspace(tree.workspace, owner_uid)
        self.publish = publish  # where the branch goes when committed, if this node is not the origin
        self.limits = limits or TreeLimits()
        self._start = tree.start  # the branch head before the first work-in-progress commit

    async def read_file(self, path: str, start: int | None = None, end: int | None = None) -> str:
        return await asyncio.to_thread(self.files.read_file, path, start, end)

    async def write_file(self, path: str, content: str) -> None:
        await asyncio.to_thread(self.files.write_file, path, content)

    async def list_files(self, path: str = ".") -> list[str]:
        return await asyncio.to_thread(self.files.list_files, path)

    async def search(self, pattern: str, path: str = ".") -> list[SearchHit]:
        return await asyncio.to_thread(self.files.search, pattern, path)

    async def diff(self) -> str:
        return await asyncio.to_thread(self._diff)

    def _diff(self) -> str:
        found = tree_quota.scan(self.workspace, self.limits)
        tree_quota.enforce(
            found, self.limits, per_file=False
        )  # a file too large is only left out of the view
        big = [p for p, _ in found.too_large]
        text = self.tree.diff([*found.hides, *big], self._start)  # the attempt's work, checkpoints too
        skipped = [shown(p) for p in big] + [p for p, _ in found.left_out]
        return text + (f"\n(not shown: {', '.join(skipped)})\n" if skipped else "")

    async def commit(self, message: str) -> str:
        return await asyncio.to_thread(self._commit, message)

    def _commit(self, message: str) -> str:
        found = tree_quota.scan(self.workspace, self.limits, remove=True)
        tree_quota.enforce(found, self.limits)
        head = self.tree.commit(message + tree_quota.left_out_note(found), onto=self._start)
        if self.publish is not None:
            self.publish.push(self.tree.branch)
        return head

    async def alive(self) -> bool:
        return await asyncio.to_thread(self.workspace.is_dir)

    async def checkpoint(self, message: str) -> str:
        """Commit the work so far to the branch while the task goes on, so the merge queue's radar
        sees it. The workspace is left as it is (what git must not see is left out, not removed),
        and the final commit folds these commits into one. A tree that holds a merge to resolve
        is not checkpointed: "" then."""
        if self.tree.merge_parent is not None:
            return ""
        return await asyncio.to_thread(self._checkpoint, message)

    def _checkpoint(self, message: str) -> str:
        found = tree_quota.scan(self.workspace, self.limits)
        tree_quota.enforce(found, self.limits, per_file=False)
        if self._start is None:
            self._start = self.tree.head()
        head = self.tree.commit(message, [*found.hides, *(p for p, _ in found.too_large)])
        if self.publish is not None:
            self.publish.push(self.tree.branch)
        return head


class TailBuffer:
    """Keeps the last `cap` bytes of a stream and whether anything was dropped."""

    def __init__(self, cap: int = DEFAULT_OUTPUT_CAP) -> None:
        self.cap, self.total, self._buf = cap, 0, bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buf += chunk
        if len(self._buf) > self.cap:
            del self._buf[: len(self._buf) - self.cap]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self) -> str:
        return self._buf.decode("utf-8", errors="replace")


async def run_process_group(
    command: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    cap: int = DEFAULT_OUTPUT_CAP,
    on_start: Callable[[int], None] | None = None,
) -> ExecResult:
    """Run a shell command in its own process group; on timeout or cancellation kill the group."""
    start = time.monotonic()
    proc = await asyncio.create_subprocess_shell(
        command,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    if on_start is not None:
        on_start(proc.pid)
    tail = TailBuffer(cap)

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            tail.feed(chunk)

    reader = asyncio.create_task(pump())
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        await proc.wait()
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        await proc.wait()
        reader.cancel()
        raise
    # A child that escaped the group may keep the pipe open; do not wait on it forever.
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(reader, 2.0)
    return ExecResult(
        exit_code=None if timed_out else proc.returncode,
        output=tail.text(),
        truncated=tail.truncated,
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def process_marker(workspace: Path) -> Path:
    return workspace.parent / f".{workspace.name}{processes.MARK_SUFFIX}"


class LocalSandbox(WorktreeSandbox):
    """A task tree on the host. Commands see the host: this backend isolates nothing."""

    def __init__(
        self,
        tree: git.TaskTree,
        output_cap: int,
        publish: NodeRepo | None = None,
        limits: TreeLimits | None = None,
    ) -> None:
        super().__init__(tree, publish=publish, limits=limits)
        self.output_cap = output_cap

    async def exec(self, command: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        full_env = {**os.environ, **COMMAND_ENV, **(env or {})}
        marker = process_marker(self.workspace)
        try:
            return await run_process_group(
                command,
                self.workspace,
                full_env,
                timeout,
                self.output_cap,
                on_start=lambda pid: processes.mark(marker, pid),
            )
        finally:
            marker.unlink(missing_ok=True)

    async def destroy(self) -> None:
        await asyncio.to_thread(self.tree.remove)


@dataclass
class LocalBackend:
    """Sandboxes as task trees under `worktree_root/<task-id>`, each starting from its request's base."""

    repo: Path
    git_dir: Path
    worktree_root: Path
    output_cap: int = DEFAULT_OUTPUT_CAP
    run_id: str = ""
    origin: str | None = None  # set when sandboxes may run on nodes other than the origin's
    node_repo: NodeRepo | None = None
    tree_limits: TreeLimits = field(default_factory=TreeLimits)
    name: str = "local"

    async def warm(self) -> None:
        return None

    async def create(self, request: TaskRequest) -> Sandbox:
        workspace = Path(self.worktree_root) / request.task_id
        tree = await asyncio.to_thread(self._prepare, request, workspace)
        return LocalSandbox(tree, self.output_cap, self.node_repo, self.tree_limits)

    def _prepare(self, request: TaskRequest, workspace: Path) -> git.TaskTree:
        if self.node_repo is not None:
            self.node_repo.sync(request.base)
        return prepare_tree(Path(self.git_dir), workspace, request)


def prepare_tree(git_dir: Path, workspace: Path, request: TaskRequest) -> git.TaskTree:
    """The task's tree on its branch, from its base (the integration head: its dependencies'
    work is merged there), or the merge it is to resolve; with `keep_work`, from the work in
    progress an earlier attempt checkpointed on the branch on top of that base, if there is any.
    Any command an earlier attempt's dead sandbox left running there is killed first."""
    processes.reap(process_marker(workspace))
    tree = git.TaskTree(git_dir, workspace, request.branch, request.merge_parent)
    try:
        start = git.commit_of(git_dir, request.base)
        wip = git.work_in_progress(git_dir, request.branch, start) if request.keep_work else None
        if wip is not None:  # a restarted attempt goes on from its predecessor's checkpoint
            tree.checkout(wip)
            return replace(tree, start=start)
        tree.checkout(start, request.merge_tree or git.merged_tree(git_dir, start, request.merge_parent))
    except BaseException:
        tree.remove()
        raise
    return tree


class NoopSandbox(WorktreeSandbox):
    """Nothing to run and no files: what is left to measure is the scheduling machinery."""

    def __init__(self) -> None:
        super().__init__(git.TaskTree(Path("/nonexistent"), Path("/nonexistent"), ""))

    async def exec(self, command: str, timeout: float, env: dict[str, str] | None = None) -> ExecResult:
        return ExecResult(exit_code=0, output="", truncated=False, timed_out=False, duration_s=0.0)

    async def commit(self, message: str) -> str:
        return ""

    async def checkpoint(self, message: str) -> str:
        return ""

    async def alive(self) -> bool:
        return True

    async def destroy(self) -> None:
        return None


class NoopBackend:
    """Runs nothing: what is left to measure is the scheduling, the bus and the actor calls."""

    name = "noop"

    async def warm(self) -> None:
        return None

    async def create(self, request: TaskRequest) -> Sandbox:
        return NoopSandbox()
