"""A node's clone of the origin, on real repositories."""

from __future__ import annotations

from pathlib import Path

from omoi.runtime.git import repo as git
from omoi.runtime.git.transport import NodeRepo
from tests.conftest import RepoFactory, run_git


def test_sync_works_while_a_run_branch_is_checked_out_on_this_node(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    origin = make_repo({"f.txt": "1\n"})
    base = run_git(origin, "rev-parse", "HEAD").strip()
    run_git(origin, "branch", "omoi/r/a", base)
    node = NodeRepo(str(origin), tmp_path / "node", "r")
    node.sync(base)
    # one slot on this node has the run's branch checked out...
    git.TaskTree(node.path, node.worktrees / "a", "omoi/r/a").checkout(base)
    # ...while another node pushes a new commit of that branch to the origin
    run_git(origin, "commit", "--allow-empty", "-q", "-m", "more")
    run_git(origin, "branch", "-f", "omoi/r/a", "HEAD")
    node.sync(base)  # a fetch into refs/heads would be refused here
    assert (
        run_git(node.path, "rev-parse", "refs/remotes/origin/omoi/r/a").strip()
        == run_git(origin, "rev-parse", "omoi/r/a").strip()
    )
