"""The integrator: one branch per run holding all task work."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from omoi.runtime import git
from omoi.runtime.runstate import run_branch


class IntegratorActor:
    """Merges succeeded task branches, in dependency order, into `omoi/<run-id>` on the base commit.

    State: none beyond its configuration (the repository and a scratch worktree path). Handles
    `integrate`. Emits nothing itself: the graph announces the result in `run.finished`.
    If it dies: safe to retry; the run branch is rebuilt from scratch on every call."""

    def __init__(
        self, repo: str | Path, git_dir: str | Path, worktree_root: str | Path, *, dry_run: bool = False
    ) -> None:
        self._repo, self._git_dir, self._root = Path(repo), Path(git_dir), Path(worktree_root)
        self._dry_run = dry_run  # for runs whose sandboxes write no branches (the scheduler benchmark)

    async def integrate(self, run_id: str, base: str, branches: Sequence[str]) -> str:
        if self._dry_run:
            return base
        worktree = self._root / "_integration"
        return await asyncio.to_thread(
            git.integrate, self._repo, self._git_dir, worktree, run_branch(run_id), base, list(branches)
        )
