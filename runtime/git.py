"""Git mechanics for runs: worktrees on task branches, merges, commits, integration.

Everything happens in worktrees under omoi's state directory, on `omoi/...` branches, so the user's
working tree, index and current branch are never touched. Hooks are switched off and the identity is
fixed, so a repository's configuration cannot change what a run does."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from omoi.runtime.errors import GitError, MergeConflictError, RepoError

_CONFIG = (
    "-c", "user.name=omoi", "-c", "user.email=omoi@localhost", "-c", "core.hooksPath=/dev/null",
    "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "commit.gpgsign=false",
    "-c", "merge.conflictStyle=merge",
    # Docker sandboxes hand worktrees to an unprivileged uid; git must still work on them here.
    "-c", "safe.directory=*",
)  # fmt: skip
_SCRUB = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


def git(args: Sequence[str], cwd: str | Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["LC_ALL"] = "C"
    proc = subprocess.run(
        ["git", *_CONFIG, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr or proc.stdout, str(cwd))
    return proc


@dataclass(frozen=True)
class RepoInfo:
    path: Path
    git_dir: Path
    head_commit: str
    head_ref: str


def inspect_repo(path: str | Path) -> RepoInfo:
    """Check that `path` is a usable run target: a git work tree with at least one commit."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RepoError(str(path), "does not exist")
    if not p.is_dir():
        raise RepoError(str(path), "is not a directory")
    try:
        repo = gitpython.Repo(p, search_parent_directories=False)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError) as exc:
        raise RepoError(str(path), "is not a git repository (run `git init` and commit first)") from exc
    with repo:
        if repo.bare:
            raise RepoError(str(path), "is a bare repository; point omoi at a clone with a work tree")
        try:
            head = repo.head.commit.hexsha
        except ValueError as exc:
            raise RepoError(str(path), "has no commits yet (make a first commit)") from exc
        ref = repo.head.ref.name if not repo.head.is_detached else ""
        common = Path(repo.common_dir).resolve()
        return RepoInfo(
            path=Path(repo.working_tree_dir or p).resolve(), git_dir=common, head_commit=head, head_ref=ref
        )


@contextlib.contextmanager
def repo_lock(git_dir: Path) -> Iterator[None]:
    """Serialize worktree bookkeeping: concurrent `git worktree add/remove` race on shared files."""
    lock_path = git_dir / "omoi" / "git.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def add_worktree(repo: Path, git_dir: Path, worktree: Path, branch: str, base: str) -> None:
    """Check `branch` out at `base` in a fresh worktree, resetting the branch if it exists.

    An existing empty directory is kept, not replaced: it may be the mount source of a container
    started ahead of time (a warm sandbox), which would lose sight of a new directory."""
    with repo_lock(git_dir):
        if worktree.is_dir() and not any(worktree.iterdir()):
            git(["worktree", "prune"], repo, check=False)
        else:
            _drop_worktree(repo, worktree)
        worktree.parent.mkdir(parents=True, exist_ok=True)
        git(["worktree", "add", "--force", "--quiet", "-B", branch, str(worktree), base], repo)


def merge_branches(worktree: Path, branches: Sequence[str]) -> None:
    """Merge each branch into the worktree's branch; on conflict abort and name the files."""
    for branch in branches:
        proc = git(["merge", "--no-edit", "-m", f"omoi: merge {branch}", branch], worktree, check=False)
        if proc.returncode != 0:
            conflicted = git(["diff", "--name-only", "--diff-filter=U"], worktree, check=False).stdout.split()
            git(["merge", "--abort"], worktree, check=False)
            if conflicted:
                raise MergeConflictError(branch, conflicted, str(worktree))
            raise GitError(["merge", branch], proc.returncode, proc.stderr or proc.stdout, str(worktree))


def commit_all(worktree: Path, message: str) -> str:
    """Commit every change in the worktree (if any) and return the branch head."""
    git(["add", "-A"], worktree)
    if git(["diff", "--cached", "--quiet"], worktree, check=False).returncode == 1:
        git(["commit", "--quiet", "--no-verify", "-m", message], worktree)
    return head(worktree)


def head(worktree: Path) -> str:
    return git(["rev-parse", "HEAD"], worktree).stdout.strip()


def remove_worktree(repo: Path, git_dir: Path, worktree: Path) -> None:
    """Remove the worktree directory and its bookkeeping; the branch stays."""
    with repo_lock(git_dir):
        _drop_worktree(repo, worktree)


def _drop_worktree(repo: Path, worktree: Path) -> None:
    if worktree.exists():
        git(["worktree", "remove", "--force", "--force", str(worktree)], repo, check=False)
        shutil.rmtree(worktree, ignore_errors=True)
    git(["worktree", "prune"], repo, check=False)


def branch_head(repo: Path, branch: str) -> str | None:
    proc = git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], repo, check=False)
    return proc.stdout.strip() or None


def integrate(
    repo: Path, git_dir: Path, worktree: Path, branch: str, base: str, branches: Sequence[str]
) -> str:
    """Make `branch` the merge of `branches` (in the given dependency order) on top of `base`."""
    add_worktree(repo, git_dir, worktree, branch, base)
    try:
        merge_branches(worktree, branches)
        return head(worktree)
    finally:
        remove_worktree(repo, git_dir, worktree)
