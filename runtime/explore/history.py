"""Where a repository changes most: git churn from the recent history, through gitpython."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git as gitpython


@dataclass(frozen=True)
class Hotspot:
    path: str
    commits: int
    lines_changed: int


def hotspots(
    repo: Path, *, rev: str = "HEAD", commits: int = 1000, top: int = 20, tracked: set[str] | None = None
) -> list[Hotspot]:
    """The files touched by the most of the last `commits` commits before `rev` (merges left out,
    renames not followed), with the lines added plus removed. Files no longer tracked are dropped.
    `repo` is a checkout or a git directory."""
    try:
        # A root commit is how the files arrived, not how they change: its diff is left out (in a
        # repository imported in one commit it is every file, and most of the cost).
        log = (
            gitpython.Repo(repo)
            .git(c="log.showRoot=false")
            .log(f"-n{commits}", "--no-merges", "--no-renames", "--numstat", "--format=%x00", rev, "--")
        )
    except (gitpython.GitCommandError, gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        return []
    counts: dict[str, list[int]] = {}
    for line in log.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        added, removed, path = parts
        if tracked is not None and path not in tracked:
            continue
        c = counts.setdefault(path, [0, 0])
        c[0] += 1
        c[1] += (int(added) if added.isdigit() else 0) + (int(removed) if removed.isdigit() else 0)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return [Hotspot(p, c, n) for p, (c, n) in ranked[:top]]
