"""File access to a sandbox's workspace, confined to it.

The workspace is a directory on the host (bind-mounted at /workspace in a container), so the file
tools run here, in a host process, over files a task's processes may be changing at that moment.
Every path is opened through `runtime.sandbox.beneath` (component by component from a descriptor of the
root, never following a link out), only regular files are read or written, and every read is
bounded in size. File names that are not UTF-8 are shown escaped (`\\xNN`)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from omoi.runtime.errors import SandboxError
from omoi.runtime.sandbox.beneath import Beneath, PathEscapeError, components, shown, walk

CONTAINER_ROOT = "/workspace"
MAX_READ = 256 * 1024  # a whole-file read; larger files are read by line range
MAX_RANGE_SCAN = 64 * 1024 * 1024  # bytes a line-range read may go through to find its lines
MAX_SEARCH_FILE = 1024 * 1024  # larger files are not searched
MAX_SEARCH_BYTES = 64 * 1024 * 1024  # bytes one search reads at most
MAX_LINE = 10_000  # characters of a line a pattern is matched against
MAX_HITS = 200

__all__ = ["CONTAINER_ROOT", "MAX_HITS", "MAX_READ", "PathEscapeError", "SearchHit", "Workspace"]


@dataclass(frozen=True)
class SearchHit:
    path: str
    line: int
    text: str


class Workspace:
    def __init__(self, root: Path, owner_uid: int | None = None) -> None:
        self.root, self.owner_uid = root, owner_uid
        self._beneath = Beneath(str(root), CONTAINER_ROOT)

    def _read(self, path: str, cap: int) -> tuple[bytes, int]:
        fd, st = self._beneath.open_regular(path)
        with os.fdopen(fd, "rb") as fh:
            return fh.read(cap), st.st_size

    def read_file(self, path: str, start: int | None = None, end: int | None = None) -> str:
        """Text of the file, or lines start..end (1-based, inclusive)."""
        if start is None and end is None:
            data, size = self._read(path, MAX_READ + 1)
            if size > MAX_READ or len(data) > MAX_READ:
                raise SandboxError(f"'{path}' is larger than {MAX_READ} bytes: read a line range")
            return data.decode("utf-8", errors="replace")
        first, lines = max(1, start or 1), []
        fd, _ = self._beneath.open_regular(path)
        with os.fdopen(fd, "rb") as fh:
            scanned = 0
            for n, raw in enumerate(fh, 1):
                scanned += len(raw)
                if n >= first:
                    lines.append(raw)
                if (
                    (end is not None and n >= end)
                    or scanned > MAX_RANGE_SCAN
                    or sum(map(len, lines)) > MAX_READ
                ):
                    break
        return b"".join(lines).decode("utf-8", errors="replace")

    def write_file(self, path: str, content: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT
        fd, st = self._beneath.open_regular(path, flags, create_dirs=True, owner=self.owner_uid)
        with os.fdopen(fd, "wb") as fh:
            fh.truncate(0)
            fh.write(content.encode("utf-8"))
            if self.owner_uid is not None and st.st_uid != self.owner_uid:
                os.fchown(fh.fileno(), self.owner_uid, self.owner_uid)

    def list_files(self, path: str = ".") -> list[str]:
        """Files under `path`, relative to the workspace, git metadata left out."""
        return sorted(shown(rel) for rel, _st in self._files(path, regular_only=False))

    def _files(self, path: str, *, regular_only: bool) -> list[tuple[str, os.stat_result]]:
        fd = self._beneath.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            prefix = "/".join(components(path, CONTAINER_ROOT))
            out = []
            for e in walk(fd, f"{prefix}/" if prefix else ""):
                wanted = stat.S_ISREG(e.st.st_mode) or (not regular_only and stat.S_ISLNK(e.st.st_mode))
                if wanted:
                    out.append((e.rel, e.st))
            return out
        finally:
            os.close(fd)

    def search(self, pattern: str, path: str = ".") -> list[SearchHit]:
        """Lines matching a regular expression, at most MAX_HITS, in regular files only (links are
        not followed, files over MAX_SEARCH_FILE and binary files are skipped)."""
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise SandboxError(
                f"search pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
        hits: list[SearchHit] = []
        budget = MAX_SEARCH_BYTES
        for rel, st in self._files(path, regular_only=True):
            if st.st_size > MAX_SEARCH_FILE or budget <= 0:
                continue
            try:
                data, _ = self._read(rel, MAX_SEARCH_FILE)
            except (OSError, SandboxError):
                continue  # changed since the walk: what it is now was checked by the open
            budget -= len(data)
            if b"\0" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if rx.search(line[:MAX_LINE]):
                    hits.append(SearchHit(shown(rel), n, line[:300]))
                    if len(hits) >= MAX_HITS:
                        return hits
        return hits
