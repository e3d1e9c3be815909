"""The integrator: one branch per run holding all task work."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from omoi.runtime.git import repo as git
from omoi.runtime.names import run_branch


class IntegratorActor:
    """Merges succeeded task branches, in dependency order, into `omoi/<run-id>` on the base commit.

    State: none beyond its configuration (the repository's git directory). Handles `integrate`:
    merges are computed by git without a work tree, so nothing a task committed is checked out.
    Emits nothing itself: the graph announces the result in `run.finished`.
    If it dies: safe to retry; the run branch is rebuilt from scratch on every call."""

    def __init__(self, git_dir: str | Path, *, dry_run: bool = False) -> None:
        self._git_dir = Path(git_dir)
        self._dry_run = dry_run  # for runs whose sandboxes write no branches (the scheduler benchmark)

    async def integrate(self, run_id: str, base: str, branches: Sequence[str]) -> str:
        if self._dry_run:
            return base
        return await asyncio.to_thread(git.integrate, self._git_dir, run_branch(run_id), base, list(branches))
