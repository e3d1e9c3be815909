"""File access to a sandbox's workspace, confined to it.

The workspace is a directory on the host (bind-mounted at /workspace in a container), so files
are read and written here, where confinement is enforced on resolved real paths: an absolute path
outside the workspace, a `..` escape and a symlink that points outside are all refused before any
byte is touched."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from omoi.runtime import git
from omoi.runtime.errors import SandboxError

CONTAINER_ROOT = "/workspace"
MAX_READ = 256 * 1024
MAX_HITS = 200


class PathEscapeError(SandboxError):
    """A path that would leave the workspace."""

    def __init__(self, path: str, why: str) -> None:
        self.path, self.why = path, why
        super().__init__(f"path '{path}' is refused: {why}; paths must stay inside {CONTAINER_ROOT}")


@dataclass(frozen=True)
class SearchHit:
    path: str
    line: int
    text: str


class Workspace:
    def __init__(self, root: Path, owner_uid: int | None = None) -> None:
        self.root, self.owner_uid = root, owner_uid

    def resolve(self, path: str) -> Path:
        """The real path inside the workspace that `path` names, or PathEscapeError."""
        if not path or "\0" in path:
            raise PathEscapeError(path, "empty or contains a NUL byte")
        rel = path
        if path.startswith("/"):
            if path != CONTAINER_ROOT and not path.startswith(CONTAINER_ROOT + "/"):
                raise PathEscapeError(path, "absolute path outside the workspace")
            rel = path[len(CONTAINER_ROOT) :].lstrip("/") or "."
        root = self.root.resolve()
        target = (root / rel).resolve()  # follows symlinks: a link out of the workspace lands outside
        if target != root and root not in target.parents:
            why = (
                "it leaves the workspace through a symlink" if ".." not in Path(rel).parts else "'..' escapes"
            )
            raise PathEscapeError(path, why)
        return target

    def read_file(self, path: str, start: int | None = None, end: int | None = None) -> str:
        """Text of the file, or lines start..end (1-based, inclusive)."""
        target = self.resolve(path)
        if not target.is_file():
            raise SandboxError(f"'{path}' is not a file in the workspace")
        if start is None and end is None and target.stat().st_size > MAX_READ:
            raise SandboxError(f"'{path}' is larger than {MAX_READ} bytes: read a line range")
        text = target.read_text(encoding="utf-8", errors="replace")
        if start is None and end is None:
            return text
        lines = text.splitlines(keepends=True)
        return "".join(lines[max(0, (start or 1) - 1) : end])

    def write_file(self, path: str, content: str) -> None:
        target = self.resolve(path)
        missing = [
            p for p in [target, *target.parents] if not p.exists() and self.root.resolve() in p.parents
        ]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        if self.owner_uid is not None:
            for p in missing:
                os.lchown(p, self.owner_uid, self.owner_uid)

    def list_files(self, path: str = ".") -> list[str]:
        """Files under `path`, relative to the workspace, git metadata left out."""
        base, root = self.resolve(path), self.root.resolve()
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            out += [str((Path(dirpath) / f).relative_to(root)) for f in sorted(filenames) if f != ".git"]
        return out

    def search(self, pattern: str, path: str = ".") -> list[SearchHit]:
        """Lines matching a regular expression, at most MAX_HITS."""
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise SandboxError(
                f"search pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
        hits: list[SearchHit] = []
        for rel in self.list_files(path):
            try:
                text = (self.root / rel).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if rx.search(line):
                    hits.append(SearchHit(rel, n, line[:300]))
                    if len(hits) >= MAX_HITS:
                        return hits
        return hits

    def diff(self) -> str:
        """Everything changed since the sandbox started, new files included."""
        git.git(["add", "-A", "--intent-to-add"], self.root)
        return git.git(["diff", "HEAD"], self.root).stdout
