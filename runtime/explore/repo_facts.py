"""What a repository declares about itself: its languages, manifests and dependencies, entry
points, the commands that test, lint and build it, and its docs. Read from files, never by
running anything in the repository (exploring must be safe on code nobody has reviewed)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

LANGUAGES = {
    ".py": "Python", ".pyi": "Python", ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript",
    ".jsx": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript", ".go": "Go", ".rs": "Rust",
    ".java": "Java", ".kt": "Kotlin", ".scala": "Scala", ".rb": "Ruby", ".php": "PHP", ".c": "C",
    ".h": "C", ".cc": "C++", ".cpp": "C++", ".hpp": "C++", ".cs": "C#", ".swift": "Swift",
    ".sh": "Shell", ".bash": "Shell", ".sql": "SQL", ".html": "HTML", ".css": "CSS", ".scss": "CSS",
    ".md": "Markdown", ".rst": "reStructuredText", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML",
    ".json": "JSON", ".ini": "INI", ".cfg": "INI", ".proto": "Protocol Buffers", ".pyx": "Cython",
}  # fmt: skip
DOC_NAMES = re.compile(r"^(README|CHANGELOG|CHANGES|CONTRIBUTING|HISTORY|ARCHITECTURE|DESIGN)(\..*)?$", re.I)
# Programs every sandbox has, whatever the repository declares.
BASE_PROGRAMS = frozenset(
    [
        "sh",
        "bash",
        "true",
        "false",
        "test",
        "[",
        "echo",
        "printf",
        "cat",
        "grep",
        "egrep",
        "find",
        "ls",
        "wc",
        "head",
        "tail",
        "sort",
        "uniq",
        "diff",
        "cmp",
        "sed",
        "awk",
        "tr",
        "cut",
        "xargs",
        "env",
        "cd",
        "mkdir",
        "rm",
        "cp",
        "mv",
        "touch",
        "git",
        "python",
        "python3",
        "timeout",
    ]
)


class LanguageStat(BaseModel):
    model_config = ConfigDict(frozen=True)
    files: int = 0
    lines: int = 0


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    kind: str  # pyproject | setup.cfg | requirements | package.json | Cargo.toml | go.mod | Makefile
    name: str = ""
    dependencies: tuple[str, ...] = ()
    dev_dependencies: tuple[str, ...] = ()


class EntryPoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    target: str  # `module:function`, a file, or a command
    source: str  # where it is declared


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)
    command: str
    source: str  # the file (and key) it was found in


class Commands(BaseModel):
    model_config = ConfigDict(frozen=True)
    test: tuple[Command, ...] = ()
    lint: tuple[Command, ...] = ()
    build: tuple[Command, ...] = ()


class Facts(BaseModel):
    model_config = ConfigDict(frozen=True)
    manifests: tuple[Manifest, ...] = ()
    entry_points: tuple[EntryPoint, ...] = ()
    commands: Commands = Commands()
    docs: tuple[str, ...] = ()
    package_dirs: dict[str, str] = Field(default_factory=dict)  # setuptools' package-dir mapping
    programs: tuple[str, ...] = ()  # what acceptance commands may call: base tools + declared ones


def languages(line_counts: Iterable[tuple[str, int]]) -> dict[str, LanguageStat]:
    stats: dict[str, list[int]] = {}
    for path, lines in line_counts:
        lang = LANGUAGES.get(PurePosixPath(path).suffix.lower())
        if lang is None and PurePosixPath(path).name in ("Makefile", "Dockerfile"):
            lang = PurePosixPath(path).name
        if lang is not None:
            s = stats.setdefault(lang, [0, 0])
            s[0] += 1
            s[1] += lines
    ranked = sorted(stats.items(), key=lambda kv: -kv[1][1])
    return {k: LanguageStat(files=v[0], lines=v[1]) for k, v in ranked}


def docs(paths: Sequence[str]) -> tuple[str, ...]:
    out = [
        p
        for p in paths
        if DOC_NAMES.match(PurePosixPath(p).name)
        or (p.startswith(("docs/", "doc/")) and p.endswith((".md", ".rst", ".txt")))
    ]
    return tuple(sorted(out, key=lambda p: (p.count("/"), p))[:200])


def _req_name(spec: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return m.group(1).lower().replace("_", "-") if m else ""


def _toml(root: Path, rel: str) -> dict[str, Any]:
    try:
        return tomllib.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def facts(root: Path, paths: Sequence[str], main_guards: Sequence[str] = ()) -> Facts:
    """Everything declared, from the manifests at the top of the repository (and requirement
    files anywhere shallow). `main_guards`: Python files with an `if __name__ == "__main__"`."""
    present = set(paths)
    manifests: list[Manifest] = []
    entries: list[EntryPoint] = []
    test: list[Command] = []
    lint: list[Command] = []
    build: list[Command] = []
    package_dirs: dict[str, str] = {}

    if "pyproject.toml" in present:
        data = _toml(root, "pyproject.toml")
        project = data.get("project", {})
        tool = data.get("tool", {})
        optional = project.get("optional-dependencies", {})
        dev = [d for group in optional.values() for d in group] + list(
            tool.get("poetry", {}).get("group", {}).get("dev", {}).get("dependencies", {}) or {}
        )
        deps = list(project.get("dependencies", [])) + list(tool.get("poetry", {}).get("dependencies", {}))
        manifests.append(
            Manifest(
                path="pyproject.toml",
                kind="pyproject",
                name=str(project.get("name") or tool.get("poetry", {}).get("name", "")),
                dependencies=tuple(n for n in map(_req_name, deps) if n and n != "python"),
                dev_dependencies=tuple(n for n in map(_req_name, dev) if n),
            )
        )
        for name, target in {
            **project.get("scripts", {}),
            **tool.get("poetry", {}).get("scripts", {}),
        }.items():
            entries.append(
                EntryPoint(name=name, target=str(target), source="pyproject.toml [project.scripts]")
            )
        setuptools = tool.get("setuptools", {})
        if isinstance(setuptools.get("package-dir"), dict):
            package_dirs = {str(k): str(v) for k, v in setuptools["package-dir"].items()}
        if "pytest" in tool or "pytest" in manifests[-1].dev_dependencies + manifests[-1].dependencies:
            test.append(Command(command="python -m pytest -q", source="pyproject.toml [tool.pytest]"))
        if "ruff" in tool:
            lint.append(Command(command="ruff check .", source="pyproject.toml [tool.ruff]"))
        if "mypy" in tool:
            lint.append(Command(command="mypy .", source="pyproject.toml [tool.mypy]"))
        if "build-system" in data:
            build.append(Command(command="python -m build", source="pyproject.toml [build-system]"))
    for req in sorted(p for p in present if re.match(r"^([^/]+/)?requirements[^/]*\.txt$", p)):
        try:
            lines = (root / req).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        names = tuple(n for n in (_req_name(x) for x in lines if not x.strip().startswith(("#", "-"))) if n)
        field = "dev_dependencies" if "dev" in req or "test" in req else "dependencies"
        manifests.append(Manifest(path=req, kind="requirements", **{field: names}))
    if "package.json" in present:
        _package_json(root, manifests, entries, test, lint, build)
    if "Cargo.toml" in present:
        cargo = _toml(root, "Cargo.toml")
        manifests.append(
            Manifest(
                path="Cargo.toml",
                kind="Cargo.toml",
                name=str(cargo.get("package", {}).get("name", "")),
                dependencies=tuple(cargo.get("dependencies", {})),
                dev_dependencies=tuple(cargo.get("dev-dependencies", {})),
            )
        )
        test.append(Command(command="cargo test", source="Cargo.toml"))
        build.append(Command(command="cargo build", source="Cargo.toml"))
    if "go.mod" in present:
        text = _read(root, "go.mod")
        module = re.search(r"^module\s+(\S+)", text, re.M)
        requires = re.findall(r"^\s+([a-z0-9.\-/]+\.[a-z]+/\S+)\s+v", text, re.M)
        manifests.append(
            Manifest(
                path="go.mod",
                kind="go.mod",
                name=module.group(1) if module else "",
                dependencies=tuple(requires),
            )
        )
        test.append(Command(command="go test ./...", source="go.mod"))
        build.append(Command(command="go build ./...", source="go.mod"))
    if "Makefile" in present:
        targets = re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", _read(root, "Makefile"), re.M)
        manifests.append(Manifest(path="Makefile", kind="Makefile", dependencies=()))
        for target, bucket in (("test", test), ("check", test), ("lint", lint), ("build", build)):
            if target in targets:
                bucket.append(Command(command=f"make {target}", source=f"Makefile target '{target}'"))
    if "tox.ini" in present:
        test.append(Command(command="tox", source="tox.ini"))
    if not test and any(_is_python_test(p) for p in present):
        folder = "tests" if any(p.startswith("tests/") for p in present) else "."
        test.append(Command(command=f"python -m unittest discover -s {folder}", source="test_*.py files"))
    ruff_file = next((f for f in ("ruff.toml", ".ruff.toml") if f in present), None)
    if ruff_file and not any(c.command.startswith("ruff") for c in lint):
        lint.append(Command(command="ruff check .", source=ruff_file))
    for guard in main_guards:
        if (
            PurePosixPath(guard).name in ("__main__.py", "main.py", "app.py", "manage.py", "cli.py")
            or "/" not in guard
        ):
            entries.append(
                EntryPoint(name=PurePosixPath(guard).stem, target=guard, source="if __name__ == '__main__'")
            )
    for p in sorted(present):
        if p.startswith("bin/") and p.count("/") == 1:
            entries.append(EntryPoint(name=PurePosixPath(p).name, target=p, source="bin/"))
    return Facts(
        manifests=tuple(manifests),
        entry_points=tuple(entries[:100]),
        commands=Commands(test=tuple(test), lint=tuple(lint), build=tuple(build)),
        docs=docs(paths),
        package_dirs=package_dirs,
        programs=tuple(sorted(programs(manifests, [*test, *lint, *build]))),
    )


def _package_json(
    root: Path,
    manifests: list[Manifest],
    entries: list[EntryPoint],
    test: list[Command],
    lint: list[Command],
    build: list[Command],
) -> None:
    try:
        pkg = json.loads(_read(root, "package.json") or "{}")
    except json.JSONDecodeError:
        return
    manifests.append(
        Manifest(
            path="package.json",
            kind="package.json",
            name=str(pkg.get("name", "")),
            dependencies=tuple(pkg.get("dependencies", {}) or {}),
            dev_dependencies=tuple(pkg.get("devDependencies", {}) or {}),
        )
    )
    scripts = pkg.get("scripts", {}) or {}
    for key, bucket, cmd in (
        ("test", test, "npm test"),
        ("lint", lint, "npm run lint"),
        ("build", build, "npm run build"),
    ):
        if key in scripts:
            bucket.append(Command(command=cmd, source=f"package.json scripts.{key}"))
    bins = pkg.get("bin") or {}
    for name, target in bins.items() if isinstance(bins, dict) else [(pkg.get("name", "bin"), bins)]:
        entries.append(EntryPoint(name=str(name), target=str(target), source="package.json bin"))
    if pkg.get("main"):
        entries.append(EntryPoint(name="main", target=str(pkg["main"]), source="package.json main"))


def _is_python_test(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _read(root: Path, rel: str) -> str:
    try:
        return (root / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def programs(manifests: Sequence[Manifest], commands: Sequence[Command]) -> set[str]:
    """Programs an acceptance command may start: the base tools, the first word of every detected
    command, and what the manifests declare (a dev dependency on pytest makes `pytest` usable)."""
    out = set(BASE_PROGRAMS)
    for c in commands:
        out.update({c.command.split()[0], program_of(c.command)})
    for m in manifests:
        out.update(m.dependencies)
        out.update(m.dev_dependencies)
        if m.kind == "package.json":
            out.update({"npm", "npx", "node"})
        elif m.kind == "Cargo.toml":
            out.add("cargo")
        elif m.kind == "go.mod":
            out.add("go")
        elif m.kind == "Makefile":
            out.add("make")
    return out


def program_of(command: str) -> str:
    """The program a shell command starts: skips `VAR=value` prefixes and `env`; `python -m X`
    counts as X (a module run by the interpreter needs X installed, not just Python)."""
    words = [w for w in re.split(r"\s+", command.strip()) if w]
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] == "env"):
        words.pop(0)
    if not words:
        return ""
    if PurePosixPath(words[0]).name.startswith("python") and len(words) > 2 and words[1] == "-m":
        return words[2]
    return PurePosixPath(words[0]).name if "/" not in words[0] or words[0].startswith("/") else words[0]
