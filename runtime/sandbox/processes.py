"""Process groups that must not outlive their sandbox.

A command runs in its own session, so killing the actor that started it (a crash, `ray.kill`, a
driver dying) leaves it running, and it would go on writing into a workspace that a later attempt
reuses. Each running command leaves a marker (pgid and the kernel's start time of its leader, so a
recycled pid is never mistaken for it); the next attempt, and the run's shutdown, reap what is left."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

MARK_SUFFIX = ".pgid"


def start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def mark(path: Path, pid: int) -> None:
    path.write_text(f"{pid} {start_ticks(pid) or ''}\n")


def reap(path: Path) -> bool:
    """Kill the process group recorded in `path` if its leader is still the same process."""
    try:
        pid_text, _, ticks = path.read_text().strip().partition(" ")
    except OSError:
        return False
    path.unlink(missing_ok=True)
    pid = int(pid_text)
    if not ticks or start_ticks(pid) != ticks:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
        return True
    return False


def reap_all(root: Path) -> int:
    """Reap every marked group under `root` (a run's worktree directory); returns how many."""
    return sum(reap(p) for p in root.glob(f"*{MARK_SUFFIX}")) if root.exists() else 0
