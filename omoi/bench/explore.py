"""`omoi bench explore`: the static Explore pass against its floor (`git ls-files` and reading
each file). No Ray."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path

from rich.table import Table

from omoi.bench.common import timed
from omoi.runtime.git.repo import git

# The installed dependencies whose sources make the corpus: about 6,000 files, 5,000 of them Python.
CORPUS_PACKAGES = (
    "pydantic", "pydantic_core", "networkx", "rich", "click", "anthropic", "httpx", "fastapi",
    "starlette", "structlog", "yaml", "uvicorn", "git", "aiohttp", "grpc", "google", "numpy", "pandas",
)  # fmt: skip


def make_corpus(path: Path) -> int:
    """A git repository at `path` made of the sources of installed packages (no network): copies
    of their directories in site-packages, compiled files left out, in one commit. Returns the
    number of files."""
    import shutil
    import site

    roots = [Path(p) for p in site.getsitepackages()]
    path.mkdir(parents=True)
    for name in CORPUS_PACKAGES:
        for root in roots:
            if (root / name).is_dir():
                shutil.copytree(
                    root / name, path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
                )
                break
    git(["init", "--quiet"], path)
    git(["add", "-A"], path)
    git(["-c", "user.name=bench", "-c", "user.email=bench@omoi", "commit", "--quiet", "-m", "corpus"], path)
    return len(git(["ls-files"], path).stdout.splitlines())


def explore(path: Path, *, repeat: int = 3) -> Table:
    """The static Explore against the least any analysis must do: list the tracked files and read
    each one. Both in this process, median of `repeat`, the page cache warm for both."""
    from omoi.runtime.explore.static import explore as run_explore
    from omoi.runtime.explore.static import tracked_files

    def read_all() -> int:
        files = tracked_files(path)
        for f in files:
            with contextlib.suppress(OSError):
                (path / f).read_bytes()
        return len(files)

    read_all()  # warm the page cache
    baseline = [timed(read_all) for _ in range(repeat)]
    runs = [run_explore(path) for _ in range(repeat)]
    with tempfile.TemporaryDirectory(prefix="omoi-scan-cache-") as tmp:
        cache = Path(tmp) / "scans.json"
        run_explore(path, cache=cache)  # fills it
        warm = [run_explore(path, cache=cache) for _ in range(repeat)]
    last = runs[-1]
    base_s = statistics.median(t for t, _ in baseline)
    ours_s = statistics.median(r.elapsed_s for r in runs)
    warm_s = statistics.median(r.elapsed_s for r in warm)
    table = Table(title=f"omoi bench explore: {path} ({last.files:,} files), median of {repeat}")
    for col in ("path", "wall s", "files/s", "ratio vs baseline"):
        table.add_column(col, justify="left" if col == "path" else "right")
    table.add_row(
        "git ls-files + read every file (baseline)", f"{base_s:.2f}", f"{last.files / base_s:,.0f}", "1.00x"
    )
    table.add_row(
        "omoi static explore (first time: every Python file parsed)",
        f"{ours_s:.2f}", f"{last.files / ours_s:,.0f}", f"{ours_s / base_s:.2f}x",
    )  # fmt: skip
    table.add_row(
        "omoi static explore again (scans kept by blob id, nothing changed)",
        f"{warm_s:.2f}", f"{last.files / warm_s:,.0f}", f"{warm_s / base_s:.2f}x",
    )  # fmt: skip
    py = last.python
    table.caption = (
        f"{len(py.modules):,} Python modules ({', '.join(f'{k}: {v:,}' for k, v in py.parsers.items())}), "
        f"{len(py.edges):,} import edges, {len(py.cycles)} cycles, {len(last.symbols):,} symbols"
        f"{' (capped)' if last.symbols_truncated else ''}, {len(last.hotspots)} hotspots"
    )
    return table
