"""Git mechanics for runs: task trees on task branches, merges, commits, integration.

A task's files are a plain directory with no `.git` entry of ours in it (a `TaskTree`): every git
command on it names the repository's git directory, the directory as work tree and a private
index explicitly, so nothing a task writes there (a `.git` file pointing at the user's
repository, a `.git/config` with `core.fsmonitor`, a hook) is ever read by host-side git.
Branches are moved with `update-ref`, merges are computed with `git merge-tree` and no work tree
at all, so the user's working tree, index, HEAD and current branch are never touched, and no
branch is ever "checked out" anywhere that could stop a retry from resetting it.

Everything git could execute on a task's content is off: hooks, fsmonitor, and every filter and
merge driver the configuration defines (a task's `.gitattributes` can name them, never define
them); diffs run with `--no-ext-diff --no-textconv`. `GIT_*` variables of the caller are dropped,
so none of them (GIT_EXTERNAL_DIFF, GIT_CONFIG_PARAMETERS, ...) reaches a command. Every command
has a time bound."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from omoi.runtime import names
from omoi.runtime.errors import GitError, RepoError

GIT_TIMEOUT = 300.0  # seconds any one git command may take before it is killed
_CONFIG = (
    "-c", "user.name=omoi", "-c", "user.email=omoi@localhost", "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false", "-c", "core.pager=cat",
    "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "commit.gpgsign=false",
    "-c", "merge.conflictStyle=merge", "-c", "submodule.recurse=false", "-c", "protocol.ext.allow=never",
)  # fmt: skip
# A configured merge driver a task's attributes name is replaced by git's own text merge.
_SAFE_MERGE = "git merge-file --marker-size=%L %A %O %B"


def _env(env: dict[str, str] | None) -> dict[str, str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**base_env, "LC_ALL": "C", **(env or {})}


def git(
    args: Sequence[str],
    cwd: str | Path,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = GIT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["git", *_CONFIG, *args],
            cwd=cwd,
            env=_env(env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",  # file names and contents are a task's: never crash on their bytes
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, -9, f"timed out after {timeout:g}s and was killed", str(cwd)) from exc
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr or proc.stdout, str(cwd))
    return proc


def git_bytes(
    git_dir: Path | None,
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> bytes:
    """A git command whose input or output is file content, as bytes: on the repository
    (`git_dir`), or on plain files (None, `git merge-file`). An exit code in `ok` is an answer."""
    full = ["--git-dir", str(git_dir), *drivers_off(git_dir), *args] if git_dir else list(args)
    try:
        proc = subprocess.run(
            ["git", *_CONFIG, *full],
            cwd=git_dir or "/",
            env=_env(env),
            input=stdin,
            capture_output=True,
            check=False,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, -9, f"timed out after {GIT_TIMEOUT:g}s and was killed", str(git_dir)) from exc
    if proc.returncode not in ok:
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"), str(git_dir))
    return proc.stdout


def _config_stamp(git_dir: Path) -> tuple[int, ...]:
    stamps = []
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "git" / "config"
    for path in (git_dir / "config", Path.home() / ".gitconfig", xdg, Path("/etc/gitconfig")):
        try:
            stamps.append(path.stat().st_mtime_ns)
        except OSError:
            stamps.append(0)
    return tuple(stamps)


def drivers_off(git_dir: Path) -> tuple[str, ...]:
    """`-c` arguments that switch off every filter and merge driver the configuration defines."""
    return _drivers_off(str(git_dir), _config_stamp(git_dir))


@functools.lru_cache(maxsize=64)
def _drivers_off(git_dir: str, _stamp: tuple[int, ...]) -> tuple[str, ...]:
    proc = git(
        ["--git-dir", git_dir, "config", "--null", "--get-regexp", r"^(filter|merge)\."], git_dir, check=False
    )
    names: dict[str, set[str]] = {"filter": set(), "merge": set()}
    for entry in proc.stdout.split("\0"):
        key = entry.split("\n", 1)[0]
        section, _, rest = key.partition(".")
        name, _, _var = rest.rpartition(".")
        if section in names and name:
            names[section].add(name)
    out: list[str] = []
    for name in sorted(names["filter"]):
        for var, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")):
            out += ["-c", f"filter.{name}.{var}={value}"]
    for name in sorted(names["merge"]):
        out += ["-c", f"merge.{name}.driver={_SAFE_MERGE}"]
    return tuple(out)


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
def lock(directory: Path) -> Iterator[None]:
    """Serialize work on one directory across processes (a node's clone is shared by its slots)."""
    lock_path = directory / "omoi" / "git.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def in_repo(git_dir: Path, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A git command on the repository itself (no work tree), its git directory named explicitly."""
    return git(["--git-dir", str(git_dir), *drivers_off(git_dir), *args], git_dir, check=check)


def branch_head(git_dir: Path, branch: str) -> str | None:
    proc = in_repo(
        git_dir, ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"], check=False
    )
    return proc.stdout.strip() or None


def work_in_progress(git_dir: Path, branch: str, base: str) -> str | None:
    """The branch's head when it holds work on top of `base` (checkpoints of an earlier attempt),
    here or as fetched from the origin on another node; None when it holds nothing more."""
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        found = in_repo(git_dir, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False)
        head = found.stdout.strip()
        if found.returncode != 0 or not head or head == base:
            continue
        if in_repo(git_dir, ["merge-base", "--is-ancestor", base, head], check=False).returncode == 0:
            return head
    return None


def set_branch(git_dir: Path, branch: str, commit: str, old: str | None = None) -> None:
    """Point `branch` at `commit`; with `old`, only if it still points there (compare and swap)."""
    in_repo(git_dir, ["update-ref", f"refs/heads/{branch}", commit, *([old] if old else [])])


def merge_base(git_dir: Path, a: str, b: str) -> str:
    """The best common ancestor of two commits ("" when they share none)."""
    return in_repo(git_dir, ["merge-base", a, b], check=False).stdout.strip()


def is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    return in_repo(git_dir, ["merge-base", "--is-ancestor", a, b], check=False).returncode == 0


def commit_of(git_dir: Path, rev: str) -> str:
    """The commit `rev` names; a GitError naming it when there is none."""
    return in_repo(git_dir, ["rev-parse", "--verify", f"{rev}^{{commit}}"]).stdout.strip()


def merged_tree(git_dir: Path, head: str, other: str | None) -> str | None:
    """The tree git's merge of `other` into `head` writes, conflict markers and all (None: no
    merge asked for)."""
    if other is None:
        return None
    proc = in_repo(git_dir, ["merge-tree", "--write-tree", "--no-messages", head, other], check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise GitError(["merge-tree", head, other], proc.returncode, proc.stderr, str(git_dir))
    return proc.stdout.splitlines()[0].strip()


def clear_stale_locks(git_dir: Path, run_id: str, trees: Path) -> list[Path]:
    """Remove the lock files of this run's own branch refs and task-tree indexes that a git
    process left when it was killed with its actor (Ray kills a worker's children with it), and
    return them. Call it only under the run's lock once the run's earlier actors are gone: then
    no live git of ours can hold one. The user's refs and index are never looked at."""
    refs = git_dir / "refs" / "heads" / names.run_prefix(run_id).rstrip("/")
    found = [*refs.rglob("*.lock")] if refs.is_dir() else []
    found += [*trees.glob(".*.index.lock")] if trees.is_dir() else []
    for lock_file in found:
        lock_file.unlink(missing_ok=True)
    return found


@dataclass(frozen=True)
class TaskTree:
    """A task's files: `workspace` is a plain directory, its index a file beside it. Host-side
    git reaches it only through `run`, which names the git directory, the work tree and the
    index, so whatever the task writes into the workspace is data, never git's configuration."""

    git_dir: Path
    workspace: Path
    branch: str
    merge_parent: str | None = None  # the tree holds a merge of the branch with this commit
    start: str | None = None  # laid out from work in progress: its final commit folds onto this

    @property
    def index(self) -> Path:
        return self.workspace.parent / f".{self.workspace.name}.index"

    def run(self, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return git(
            [
                "--git-dir",
                str(self.git_dir),
                "--work-tree",
                str(self.workspace),
                *drivers_off(self.git_dir),
                *args,
            ],
            self.git_dir,  # never the workspace: the task owns it
            check=check,
            env={"GIT_INDEX_FILE": str(self.index)},
        )

    def checkout(self, commit: str, tree: str | None = None) -> None:
        """Reset the branch to `commit` and lay its files (or `tree`'s) out in the workspace. An
        existing empty workspace is kept, not replaced: it may be the mount source of a container
        started ahead of time (a warm sandbox), which would lose sight of a new directory."""
        if self.workspace.is_dir() and any(self.workspace.iterdir()):
            shutil.rmtree(self.workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.index.unlink(missing_ok=True)
        set_branch(self.git_dir, self.branch, commit)
        self.run(["read-tree", "--reset", "-u", tree or commit])

    def head(self) -> str:
        head = branch_head(self.git_dir, self.branch)
        if head is None:
            raise GitError(
                ["rev-parse", self.branch], 1, "the task's branch does not exist", str(self.git_dir)
            )
        return head

    def _stage(self, leave_out: Iterable[str], *extra: str) -> None:
        """`git add -A`, leaving out the given paths (as the file system spells them)."""
        spec = Path(f"{self.index}.pathspec")
        spec.write_bytes(
            b"".join([b".\0", *(b":(exclude,literal)" + os.fsencode(p) + b"\0" for p in leave_out)])
        )
        try:
            self.run(["add", "-A", *extra, f"--pathspec-from-file={spec}", "--pathspec-file-nul"])
        finally:
            spec.unlink(missing_ok=True)

    def commit(self, message: str, leave_out: Iterable[str] = (), onto: str | None = None) -> str:
        """Commit every change in the workspace (if any) on the branch and return the branch head,
        read back from the repository: a commit that did not happen is never reported. With `onto`
        the commit's parent is that ancestor of the head instead: the work-in-progress commits
        since it are folded into this one."""
        self._stage(leave_out)
        tree = self.run(["write-tree"]).stdout.strip()
        head = self.head()
        parent = onto or head
        unchanged = tree == in_repo(self.git_dir, ["rev-parse", f"{parent}^{{tree}}"]).stdout.strip()
        if unchanged and self.merge_parent is None:
            if parent != head:
                set_branch(self.git_dir, self.branch, parent, head)
            return parent
        parents = ["-p", parent, *(["-p", self.merge_parent] if self.merge_parent else [])]
        new = in_repo(self.git_dir, ["commit-tree", tree, *parents, "-m", message]).stdout.strip()
        set_branch(self.git_dir, self.branch, new, head)
        if self.head() != new:
            raise GitError(
                ["update-ref", self.branch], 1, "the branch did not move to the new commit", str(self.git_dir)
            )
        return new

    def diff(self, leave_out: Iterable[str] = (), since: str | None = None) -> str:
        """Everything changed since `since` (default: the branch head), new files included."""
        self._stage(list(leave_out), "--intent-to-add")
        return self.run(
            ["diff", "--no-ext-diff", "--no-textconv", "--no-color", since or f"refs/heads/{self.branch}"]
        ).stdout

    def remove(self) -> None:
        """Remove the workspace and its index; the branch stays."""
        shutil.rmtree(self.workspace, ignore_errors=True)  # never follows a link it meets
        for leftover in (self.index, Path(f"{self.index}.pathspec"), Path(f"{self.index}.lock")):
            leftover.unlink(missing_ok=True)  # the last two, if a git was killed while staging
