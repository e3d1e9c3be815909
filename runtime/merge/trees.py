"""Merges as git objects: `git merge-tree --write-tree` merges two commits with no work tree and
no index (so `.gitattributes` is honoured while nothing is checked out), conflicted files are
read stage by stage, and a resolution is written as blobs into a tree built in a private index.
Nothing here moves a branch: the integrator does that once a candidate head is verified."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from omoi.runtime.git.repo import git_bytes, in_repo


@dataclass(frozen=True)
class Side:
    mode: str
    oid: str


@dataclass(frozen=True)
class Conflict:
    """One conflicted path: the merge base's, our (the integration head's) and their (the task
    branch's) version; a side that deleted or never had the file is None."""

    path: str
    base: Side | None
    ours: Side | None
    theirs: Side | None


@dataclass(frozen=True)
class Merged:
    """The tree git wrote (conflicted files hold markers) and what it could not merge."""

    tree: str
    conflicts: tuple[Conflict, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.conflicts)


def merge(git_dir: Path, ours: str, theirs: str) -> Merged:
    """Merge commit `theirs` into commit `ours`; `ours` wins nothing, git decides or leaves markers."""
    out = git_bytes(git_dir, ["merge-tree", "--write-tree", "-z", ours, theirs], ok=(0, 1))
    fields = out.split(b"\0")
    tree, stages = fields[0].decode(), fields[1:]
    found: dict[str, dict[int, Side]] = {}
    for raw in stages:
        if not raw:
            break  # the informational messages follow the empty field
        info, _, path = raw.partition(b"\t")
        mode, oid, stage = info.decode().split(" ")
        found.setdefault(os.fsdecode(path), {})[int(stage)] = Side(mode, oid)
    conflicts = tuple(Conflict(p, s.get(1), s.get(2), s.get(3)) for p, s in sorted(found.items()))
    return Merged(tree, conflicts)


def blob(git_dir: Path, side: Side | None) -> bytes | None:
    return None if side is None else git_bytes(git_dir, ["cat-file", "blob", side.oid])


def write_blob(git_dir: Path, data: bytes) -> str:
    return git_bytes(git_dir, ["hash-object", "-w", "--stdin"], stdin=data).decode().strip()


@contextlib.contextmanager
def _index(git_dir: Path) -> Iterator[dict[str, str]]:
    fd, path = tempfile.mkstemp(prefix="omoi-index-", dir=git_dir)
    os.close(fd)
    os.unlink(path)  # git makes it; an empty file is not an index
    try:
        yield {"GIT_INDEX_FILE": path}
    finally:
        Path(path).unlink(missing_ok=True)


def replace(git_dir: Path, tree: str, files: Mapping[str, tuple[str, bytes] | None]) -> str:
    """`tree` with each path's content replaced (mode, bytes), or removed (None)."""
    with _index(git_dir) as env:
        git_bytes(git_dir, ["read-tree", tree], env=env)
        for path, entry in files.items():
            if entry is None:
                git_bytes(git_dir, ["update-index", "--force-remove", "--", path], env=env)
                continue
            mode, data = entry
            oid = write_blob(git_dir, data)
            git_bytes(git_dir, ["update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}"], env=env)
        return git_bytes(git_dir, ["write-tree"], env=env).decode().strip()


def commit(git_dir: Path, tree: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", tree, *[a for p in parents for a in ("-p", p)], "-m", message]
    return in_repo(git_dir, args).stdout.strip()


def changed(git_dir: Path, a: str, b: str) -> tuple[str, ...]:
    out = git_bytes(git_dir, ["diff-tree", "-r", "--no-renames", "--name-only", "-z", a, b])
    return tuple(os.fsdecode(p) for p in out.split(b"\0") if p)


def take_side(git_dir: Path, c: Conflict, side: str) -> tuple[str, bytes] | None:
    """The file merged hunk by hunk, each conflicting hunk taken from `side` (ours | theirs):
    what a person chose with `omoi resolve --take`. A side that deleted the file wins as a
    deletion only when it is the side taken."""
    chosen = c.ours if side == "ours" else c.theirs
    if chosen is None:
        return None
    other = c.theirs if side == "ours" else c.ours
    if other is None:
        return chosen.mode, blob(git_dir, chosen) or b""
    with tempfile.TemporaryDirectory(prefix="omoi-take-") as tmp:
        paths = []
        for name, version in (("ours", c.ours), ("base", c.base), ("theirs", c.theirs)):
            path = Path(tmp) / name
            path.write_bytes(blob(git_dir, version) or b"")
            paths.append(str(path))
        # merge-file exits with the number of conflicts left; with --ours/--theirs there are none
        merged = git_bytes(None, ["merge-file", "-p", f"--{side}", *paths], ok=tuple(range(128)))
        return chosen.mode, merged
