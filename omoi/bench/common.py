"""What the benchmarks share: a scratch repository, percentiles, a timer. No Ray here."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from omoi.runtime.git.repo import git


@contextlib.contextmanager
def scratch_repo(files: dict[str, str] | None = None) -> Iterator[Path]:
    """A throwaway git repository with one commit holding `files`, removed afterwards."""
    repo = Path(tempfile.mkdtemp(prefix="omoi-bench-"))
    try:
        git(["init", "--quiet"], repo)
        for name, text in (files or {}).items():
            (repo / name).write_text(text)
        git(["add", "-A"], repo)
        git(["commit", "--quiet", "--allow-empty", "-m", "bench"], repo)
        yield repo
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
