"""Lock files a killed git leaves: the run's own are cleared on launch, nobody else's."""

from __future__ import annotations

import subprocess
from pathlib import Path

from omoi.runtime.git.repo import TaskTree, clear_stale_locks


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_killed_gits_locks_on_the_runs_refs_and_trees_are_cleared_and_the_users_kept(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    git_dir = repo / ".git"
    trees = tmp_path / "trees"
    trees.mkdir()
    tree = TaskTree(git_dir, trees / "b", "omoi/r1/b")
    ours = [git_dir / "refs/heads/omoi/r1/b.lock", trees / ".b.index.lock"]
    users = [git_dir / "refs/heads/main.lock", git_dir / "refs/heads/omoi/r2/b.lock", git_dir / "index.lock"]
    for lock_file in ours + users:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock_file.write_text("")

    assert sorted(clear_stale_locks(git_dir, "r1", trees)) == sorted(ours)
    assert all(not p.exists() for p in ours)
    assert all(p.exists() for p in users), "another run's and the user's locks are theirs"
    tree.checkout(base)  # the branch and the tree's index can be written again
    assert _git(repo, "rev-parse", "omoi/r1/b").strip() == base
