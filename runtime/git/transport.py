"""Git as the transport between nodes: no shared filesystem is assumed.

A node that runs sandboxes keeps a bare clone of the run's origin in its own workspace root. A task
starts from that clone after fetching the branches it depends on, and its branch is pushed back to
the origin when it succeeds; the integrator works where the origin is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omoi.runtime.git import repo as git

NODE_ROOT_ENV = "OMOI_NODE_ROOT"


def default_node_root() -> Path:
    return Path(os.environ.get(NODE_ROOT_ENV) or Path.home() / ".cache" / "omoi" / "nodes")


@dataclass(frozen=True)
class NodeRepo:
    """This node's bare clone of `origin` for one run, under `root`."""

    origin: str
    root: Path
    run_id: str

    @property
    def path(self) -> Path:
        return self.root / "repo.git"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    def sync(self, base: str) -> None:
        """Clone on first use, then fetch the run's branches (other nodes pushed them) and `base`."""
        self.root.mkdir(parents=True, exist_ok=True)
        with git.lock(self.root):
            if not (self.path / "HEAD").exists():
                git.git(["clone", "--bare", "--quiet", self.origin, str(self.path)], self.root)
            # Into remote-tracking refs: another slot on this node may have a run branch checked out
            # in its worktree, and git refuses to move a checked-out branch under it.
            refspec = f"+refs/heads/omoi/{self.run_id}/*:refs/remotes/origin/omoi/{self.run_id}/*"
            git.git(["fetch", "--quiet", "origin", refspec], self.path)
            if git.git(["cat-file", "-e", f"{base}^{{commit}}"], self.path, check=False).returncode != 0:
                git.git(["fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*"], self.path)

    def push(self, branch: str) -> None:
        """Publish the task's branch to the origin (forced: a retry resets the branch)."""
        git.in_repo(
            self.path, ["push", "--quiet", "--force", "origin", f"refs/heads/{branch}:refs/heads/{branch}"]
        )
