"""Parsing Python files for what they import and define, in this process or in worker processes.

Only statements are visited (module, class and function bodies, and the blocks inside them), never
expressions: an import or a definition is always a statement, and skipping expressions makes the
walk several times cheaper than `ast.walk`. Parsing is most of the cost of exploring a large
repository, so many files are spread over worker processes: `python -m omoi.runtime.explore.pyparse ROOT`
reads NUL-separated paths on stdin and writes the pickled scans to stdout. Plain subprocesses, not
multiprocessing: they work whatever the caller's main module is (a notebook, stdin, a Ray worker,
where forking is unsafe), and they import nothing but the standard library."""

from __future__ import annotations

import ast
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

AST_UP_TO = 32 * 1024  # bytes; larger files (6% of files, half the bytes of big repos) are line-scanned
MAX_BYTES = 4_000_000  # larger files are data or generated code: counted, not read for symbols
_WORKERS_FROM = 300  # fewer Python files are parsed in-process (a worker costs ~50 ms to start)
_BLOCKS = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class Symbol:
    name: str  # `f`, `C`, or `C.m` for a method
    kind: str  # class | function | method
    line: int


@dataclass(frozen=True)
class Imported:
    module: str  # absolute for `import a.b`; for `from`, the module part with its level resolved later
    names: tuple[str, ...] = ()  # the names of a `from ... import`
    level: int = 0  # leading dots of a relative import
    line: int = 0


@dataclass
class FileScan:
    path: str
    imports: list[Imported] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    main_guard: bool = False  # `if __name__ == "__main__":` at the top level
    parser: str = "ast"  # ast | lines (see scan_lines) | none
    error: str | None = None  # why it could not be parsed


def scan_source(path: str, source: bytes) -> FileScan:
    """`ast` for ordinary files; the line scanner for large ones and for what `ast` refuses."""
    if len(source) > MAX_BYTES:
        return FileScan(path, parser="none", error=f"not read: {len(source)} bytes (more than {MAX_BYTES})")
    if len(source) > AST_UP_TO:
        return scan_lines(path, source)
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        out = scan_lines(path, source)
        out.error = f"not valid Python 3 ({exc.__class__.__name__}: {exc}); read line by line"
        return out
    out = FileScan(path)
    _visit(tree.body, out)
    return out


_LINE = re.compile(
    rb"^(?P<indent>[ \t]*)(?:"
    rb"import[ \t]+(?P<imports>[^\n#;]+)"
    rb"|from[ \t]+(?P<dots>\.*)(?P<module>[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]+)"
    rb"|(?:async[ \t]+)?def[ \t]+(?P<def>\w+)"
    rb"|class[ \t]+(?P<cls>\w+)"
    rb"|(?P<main>if[ \t]+__name__[ \t]*==[ \t]*['\"]__main__['\"])"
    rb"|(?P<top>(?<=^)[^\s#]))",
    re.M,
)


def scan_lines(path: str, source: bytes) -> FileScan:
    """Imports and definitions from the shape of the lines: about ten times cheaper than `ast`.
    It can be fooled by code inside multi-line strings and by backslash continuations, which is
    why it is used only where `ast` costs too much or refuses the file."""
    out = FileScan(path, parser="lines")
    line, last = 1, 0
    cls: str | None = None  # the top-level class whose body we are in
    body_indent: int | None = None
    for m in _LINE.finditer(source):
        line += source.count(b"\n", last, m.start())
        last = m.start()
        indent = len(m.group("indent").expandtabs())
        if indent == 0:
            cls, body_indent = None, None
        if m.group("imports"):
            for part in m.group("imports").decode("utf-8", "replace").split(","):
                words = part.split()
                if words:
                    out.imports.append(Imported(words[0], line=line))
        elif m.group("names") is not None:
            text = re.sub(r"#[^\n]*", "", m.group("names").decode("utf-8", "replace")).strip("()")
            names = tuple(w.split()[0] for w in text.split(",") if w.split())
            dots = len(m.group("dots"))
            out.imports.append(Imported(m.group("module").decode(), names, dots, line))
        elif m.group("cls"):
            if indent == 0:
                cls = m.group("cls").decode()
                out.symbols.append(Symbol(cls, "class", line))
        elif m.group("def"):
            name = m.group("def").decode()
            if indent == 0:
                out.symbols.append(Symbol(name, "function", line))
            elif cls is not None and body_indent in (None, indent):
                body_indent = indent
                out.symbols.append(Symbol(f"{cls}.{name}", "method", line))
        elif m.group("main") and indent == 0:
            out.main_guard = True
    return out


def _visit(body: Sequence[ast.stmt], out: FileScan, where: str = "") -> None:
    """`where`: "" at module level, the class name directly in a top-level class body, "def"
    inside a function (its imports count; its nested definitions are not in the index)."""
    for node in body:
        if isinstance(node, ast.Import):
            out.imports += [Imported(a.name, line=node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            out.imports.append(Imported(node.module or "", names, node.level, node.lineno))
        elif isinstance(node, ast.ClassDef):
            if not where:
                out.symbols.append(Symbol(node.name, "class", node.lineno))
            _visit(node.body, out, node.name if not where else "def")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not where:
                out.symbols.append(Symbol(node.name, "function", node.lineno))
            elif where != "def":
                out.symbols.append(Symbol(f"{where}.{node.name}", "method", node.lineno))
            _visit(node.body, out, "def")  # lazy imports inside functions count
        elif isinstance(node, _BLOCKS):
            if not where and isinstance(node, ast.If) and _is_main_guard(node.test):
                out.main_guard = True
            for part in ("body", "orelse", "finalbody"):
                _visit(getattr(node, part, []), out, where)
            for handler in getattr(node, "handlers", []):
                _visit(handler.body, out, where)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                _visit(case.body, out, where)


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _scan_files(root: str, paths: Sequence[str]) -> list[FileScan]:
    out = []
    for p in paths:
        try:
            source = (Path(root) / p).read_bytes()
        except OSError as exc:
            out.append(FileScan(p, error=f"unreadable: {exc.strerror}"))
            continue
        out.append(scan_source(p, source))
    return out


def scan_files(root: Path, paths: Sequence[str], workers: int | None = None) -> list[FileScan]:
    """Scan every file; with many files, in `workers` processes (default: one per core)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < _WORKERS_FROM:
        return _scan_files(str(root), paths)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "omoi.runtime.explore.pyparse", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    try:
        for i, proc in enumerate(procs):  # pipes are small: hand out every share before reading any
            assert proc.stdin is not None
            proc.stdin.write("\0".join(paths[i::workers]).encode())
            proc.stdin.close()
        scans: list[FileScan] = []
        for proc in procs:
            assert proc.stdout is not None
            scans += pickle.load(proc.stdout)
            if proc.wait() != 0:
                raise RuntimeError(f"a Python parsing worker exited {proc.returncode}")
    finally:
        for proc in procs:
            proc.kill()
    return sorted(scans, key=lambda s: s.path)


def _worker(root: str) -> None:
    paths = [p for p in sys.stdin.buffer.read().decode().split("\0") if p]
    pickle.dump(_scan_files(root, paths), sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":  # by its real name, so the parent unpickles omoi.runtime.explore.pyparse.FileScan
    from omoi.runtime.explore.pyparse import _worker as worker

    worker(sys.argv[1])
