"""What a task may leave in its workspace for host-side git to read: bounded, and nothing git
cannot hold safely.

Host git reads every file of a task's tree to commit it, and a sparse file costs nothing to make
inside a container (`truncate -s 2G`) but gigabytes of host CPU and memory to hash and diff. So the
quota counts apparent sizes, which is what git reads. Before a commit (with the task's processes
gone) the tree is scanned through directory descriptors: past the quota, or with a file above the
per-file bound, the commit is refused and the task fails, naming the largest files. Entries git
must not see are removed first: `.git` in any case anywhere (a nested repository's metadata would
make host git follow its `gitdir:` and record a commit that exists nowhere), FIFOs, sockets and
device nodes."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from omoi.runtime.errors import SandboxError
from omoi.runtime.sandbox.beneath import is_git_metadata, kind, shown, walk

GIB, MIB = 1 << 30, 1 << 20


@dataclass(frozen=True)
class TreeLimits:
    disk: int | None = 2 * GIB  # bytes of files in the workspace (apparent sizes); None: unlimited
    max_file: int | None = 100 * MIB  # bytes of one file; None: unlimited
    max_entries: int = 500_000  # files and directories


class DiskQuotaError(SandboxError):
    """The workspace holds more than its limits allow; names the largest files."""

    def __init__(self, problem: str, largest: tuple[tuple[str, int], ...] = ()) -> None:
        self.problem, self.largest = problem, largest
        top = ", ".join(f"{p} ({size_text(n)})" for p, n in largest)
        super().__init__(problem + (f"; largest: {top}" if top else ""))


@dataclass
class TreeScan:
    total: int = 0
    entries: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)
    too_large: list[tuple[str, int]] = field(
        default_factory=list
    )  # (path as the file system spells it, size)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    hides: list[str] = field(default_factory=list)  # paths git must not be shown (specials, nested repos)

    def _note(self, path: str, size: int) -> None:
        self.largest = sorted([*self.largest, (shown(path), size)], key=lambda e: -e[1])[:5]


def scan(root: Path, limits: TreeLimits, *, remove: bool = False) -> TreeScan:
    """Sizes of the tree under `root`, and what git must not see (removed with `remove`)."""
    out = TreeScan()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for e in walk(fd, skip_git=False, limit=limits.max_entries):
            out.entries += 1
            mode = e.st.st_mode
            if is_git_metadata(e.name):
                out.left_out.append((shown(e.rel), "git metadata a task made"))
                out.hides.append(e.rel if e.rel == e.name else e.rel.rsplit("/", 1)[0])
            elif stat.S_ISREG(mode):
                out.total += e.st.st_size
                out._note(e.rel, e.st.st_size)
                if limits.max_file is not None and e.st.st_size > limits.max_file:
                    out.too_large.append((e.rel, e.st.st_size))
                continue
            elif stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
                continue
            else:
                out.left_out.append((shown(e.rel), kind(mode)))
                out.hides.append(e.rel)
            if remove:
                if stat.S_ISDIR(mode):
                    shutil.rmtree(e.name, dir_fd=e.dir_fd)
                else:
                    os.unlink(e.name, dir_fd=e.dir_fd)
    finally:
        os.close(fd)
    return out


def enforce(found: TreeScan, limits: TreeLimits, *, per_file: bool = True) -> None:
    """DiskQuotaError if the scan is past a limit (the per-file one too, unless told not to)."""
    largest = tuple(found.largest)
    if per_file and found.too_large:
        (path, size), *more = found.too_large
        others = f" (and {len(more)} more)" if more else ""
        raise DiskQuotaError(
            f"'{shown(path)}' is {size_text(size)}{others}, above the {size_text(limits.max_file or 0)} "
            "a file may be (OMOI_SANDBOX_MAX_FILE); git is not a large-file store",
            largest,
        )
    if limits.disk is not None and found.total > limits.disk:
        raise DiskQuotaError(
            f"the workspace holds {size_text(found.total)}, above its quota of {size_text(limits.disk)} "
            "(OMOI_SANDBOX_DISK; sizes are apparent: a sparse file counts at its full length)",
            largest,
        )


def size_text(n: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def left_out_note(found: TreeScan) -> str:
    """A commit message trailer naming what was removed before the commit, if anything."""
    if not found.left_out:
        return ""
    shown_paths = ", ".join(f"{p} ({why})" for p, why in found.left_out[:20])
    more = f" and {len(found.left_out) - 20} more" if len(found.left_out) > 20 else ""
    return f"\nomoi left out what git cannot hold safely: {shown_paths}{more}\n"
