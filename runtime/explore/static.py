"""Explore, the static part: a deterministic picture of a repository, written as `explore.json`.

It grounds every later phase: requirements, design and tasks may only name files and symbols
that exist here (or that an earlier task creates), and acceptance commands may only use the
programs found here. Nothing in the repository is run; files tracked by git at the explored
checkout are read, and Python is parsed in a process pool (see pyscan)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from omoi.runtime.errors import RepoError
from omoi.runtime.explore import history, pyparse, pyscan, repo_facts
from omoi.runtime.explore.repo_facts import Commands, EntryPoint, LanguageStat, Manifest
from omoi.runtime.explore.scan_cache import ScanCache
from omoi.runtime.git.repo import TaskTree, branch_head, git

MAX_SYMBOLS = 50_000
_BINARY_PROBE = 8192
_COUNT_LINES_UP_TO = 5_000_000  # bytes; a larger file is data, counted as 0 lines


class Module(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    path: str


class Dependents(BaseModel):
    model_config = ConfigDict(frozen=True)
    module: str
    dependents: int


class Unparsed(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    error: str


class PythonGraph(BaseModel):
    model_config = ConfigDict(frozen=True)
    modules: tuple[Module, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()  # (importer, imported), both modules of this repository
    cycles: tuple[tuple[str, ...], ...] = ()  # closed: (a, b, a)
    most_depended_on: tuple[Dependents, ...] = ()
    external_imports: dict[str, int] = Field(default_factory=dict)  # top-level name -> importing modules
    parsers: dict[str, int] = Field(default_factory=dict)  # ast | lines | none -> files read that way
    unparsed: tuple[Unparsed, ...] = ()  # files ast refused or that were too large, and why


class SymbolRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    kind: str
    path: str
    line: int


class Hotspot(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    commits: int
    lines_changed: int


class Finding(BaseModel):
    """Something the explorer agent saw that the static pass cannot (conventions, risks, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    topic: str = Field(min_length=1, description="e.g. conventions, testing, risk")
    detail: str = Field(min_length=1)
    files: tuple[str, ...] = ()


class Exploration(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: int = 1
    root: str
    head: str
    files: int
    bytes: int
    paths: tuple[str, ...]
    languages: dict[str, LanguageStat]
    manifests: tuple[Manifest, ...]
    entry_points: tuple[EntryPoint, ...]
    commands: Commands
    programs: tuple[str, ...]
    docs: tuple[str, ...]
    python: PythonGraph
    symbols: tuple[SymbolRef, ...]
    symbols_truncated: bool = False
    hotspots: tuple[Hotspot, ...]
    findings: tuple[Finding, ...] = ()
    elapsed_s: float = 0.0

    def summary(self, limit: int = 6000) -> str:
        """The exploration as a few lines of text for a prompt, within `limit` characters."""
        lang = ", ".join(f"{k} {v.files} files/{v.lines} lines" for k, v in list(self.languages.items())[:6])
        cmds = [
            f"{kind}: {c.command}" for kind in ("test", "lint", "build") for c in getattr(self.commands, kind)
        ]
        lines = [
            f"repository at {self.head[:10]}: {self.files} files ({lang})",
            "commands: " + ("; ".join(cmds) or "none found"),
            "entry points: "
            + (", ".join(f"{e.name} -> {e.target}" for e in self.entry_points[:10]) or "none"),
            "manifests: " + (", ".join(m.path for m in self.manifests) or "none"),
            "most imported modules: "
            + ", ".join(f"{d.module} ({d.dependents})" for d in self.python.most_depended_on[:10]),
            "import cycles: " + ("; ".join(" -> ".join(c) for c in self.python.cycles[:5]) or "none"),
            "churn hotspots: " + ", ".join(f"{h.path} ({h.commits})" for h in self.hotspots[:8]),
            "docs: " + ", ".join(self.docs[:10]),
            *(f"finding: {f.topic}: {f.detail}" for f in self.findings[:10]),
            "modules: " + ", ".join(f"{m.name} ({m.path})" for m in self.python.modules[:200]),
        ]
        text = "\n".join(lines)
        return text if len(text) <= limit else text[: limit - 20] + "\n[... cut ...]"

    def symbol_names(self) -> set[str]:
        return {s.name for s in self.symbols} | {s.name.rsplit(".", 1)[-1] for s in self.symbols}


_REGULAR = ("100644", "100755")


def tracked_files(root: Path, tree: TaskTree | None = None) -> list[str]:
    """The regular files git tracks (links and submodules left out: host-side code never follows
    a committed link), asking the task tree's index when given, else the checkout at `root`."""
    return sorted(tracked_blobs(root, tree))


def tracked_blobs(root: Path, tree: TaskTree | None = None) -> dict[str, str]:
    """`tracked_files` with each file's blob id, as the index has it."""
    args = ["ls-files", "-z", "--cached", "--stage"]
    proc = tree.run(args, check=False) if tree is not None else git(args, root, check=False)
    if proc.returncode != 0:
        raise RepoError(str(root), f"not a git checkout (git ls-files: {proc.stderr.strip()})")
    entries = (e.split("\t", 1) for e in proc.stdout.split("\0") if "\t" in e)
    out: dict[str, str] = {}
    for meta, path in entries:
        mode, blob, *_ = meta.split(" ")
        if mode in _REGULAR:
            out[path] = blob
    return out


def _count_lines(path: Path) -> tuple[int, int]:
    """(bytes, lines); binary files and huge ones count no lines."""
    try:
        size = path.stat().st_size
        if size > _COUNT_LINES_UP_TO:
            return size, 0
        data = path.read_bytes()
    except OSError:
        return 0, 0
    if b"\0" in data[:_BINARY_PROBE]:
        return size, 0
    return size, data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def explore(
    root: str | Path,
    *,
    tree: TaskTree | None = None,
    workers: int | None = None,
    history_commits: int = 1000,
    cache: Path | None = None,
) -> Exploration:
    """Explore the checkout at `root`, or the task tree `tree` (whose git directory is named, never
    discovered from the tree). With `cache`, Python files whose blob was scanned before are not
    parsed again (a file whose work-tree copy differs from its blob is: the blob id is the index's)."""
    started = time.monotonic()
    root = Path(root).resolve()
    blobs = tracked_blobs(root, tree)
    paths = sorted(blobs)
    if tree is not None:
        head = branch_head(tree.git_dir, tree.branch) or ""
    else:
        head = git(["rev-parse", "HEAD"], root, check=False).stdout.strip()
    if not head:
        raise RepoError(str(root), "the repository has no commits; commit something to explore it")
    py_files = [p for p in paths if p.endswith(".py")]
    scans = _scan(root, tree, py_files, blobs, workers, cache)
    sizes = {p: _count_lines(root / p) for p in paths}
    facts = repo_facts.facts(root, paths, [s.path for s in scans if s.main_guard])
    names = pyscan.module_names(py_files, facts.package_dirs)
    graph = pyscan.import_graph(scans, names)
    symbols = [
        SymbolRef(name=sym.name, kind=sym.kind, path=s.path, line=sym.line)
        for s in scans
        for sym in s.symbols
    ]
    return Exploration(
        root=str(root),
        head=head,
        files=len(paths),
        bytes=sum(b for b, _ in sizes.values()),
        paths=tuple(paths),
        languages=repo_facts.languages((p, lines) for p, (_, lines) in sizes.items()),
        manifests=facts.manifests,
        entry_points=facts.entry_points,
        commands=facts.commands,
        programs=facts.programs,
        docs=facts.docs,
        python=PythonGraph(
            modules=tuple(Module(name=n, path=p) for p, n in sorted(names.items(), key=lambda x: x[1])),
            edges=tuple(sorted(graph.graph.edges())),
            cycles=tuple(tuple(c) for c in graph.cycles()),
            most_depended_on=tuple(Dependents(module=m, dependents=d) for m, d in graph.most_depended_on()),
            external_imports=graph.external,
            parsers=dict(Counter(s.parser for s in scans)),
            unparsed=tuple(Unparsed(path=s.path, error=s.error) for s in scans if s.error),
        ),
        symbols=tuple(symbols[:MAX_SYMBOLS]),
        symbols_truncated=len(symbols) > MAX_SYMBOLS,
        hotspots=tuple(
            Hotspot(path=h.path, commits=h.commits, lines_changed=h.lines_changed)
            for h in history.hotspots(
                tree.git_dir if tree else root,
                rev=tree.branch if tree else "HEAD",
                commits=history_commits,
                tracked=set(paths),
            )
        ),
        elapsed_s=round(time.monotonic() - started, 3),
    )


def _scan(
    root: Path,
    tree: TaskTree | None,
    py_files: list[str],
    blobs: dict[str, str],
    workers: int | None,
    cache: Path | None,
) -> list[pyparse.FileScan]:
    if cache is None:
        return pyparse.scan_files(root, py_files, workers)
    kept = ScanCache(cache)
    # Only files unchanged since they were staged are trusted to the cache.
    args = ["diff", "--name-only", "-z"]
    proc = tree.run(args, check=False) if tree is not None else git(args, root, check=False)
    dirty = set(proc.stdout.split("\0"))
    found = {p: kept.get(p, blobs[p]) for p in py_files if p not in dirty}
    hits = [s for s in found.values() if s is not None]
    misses = [p for p in py_files if found.get(p) is None]
    scans = sorted(hits + pyparse.scan_files(root, misses, workers), key=lambda s: s.path)
    if misses:
        kept.save([s for s in scans if s.path not in dirty], blobs)
    return scans


def write(exploration: Exploration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(exploration.model_dump_json(indent=1) + "\n", encoding="utf-8")


def load(path: Path) -> Exploration:
    return Exploration.model_validate_json(path.read_text(encoding="utf-8"))
