"""Python modules and the import graph they form, from the scans of pyparse."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import networkx as nx

from omoi.runtime.explore.pyparse import FileScan, Imported


def module_names(paths: Iterable[str], package_dirs: Mapping[str, str] | None = None) -> dict[str, str]:
    """path -> dotted module name. `package_dirs` is setuptools' `package-dir` (package -> folder,
    '' for the root), so a repository whose folders install under other names still resolves.
    Otherwise a module is named from the outermost enclosing folder that is still a package (has
    `__init__.py`); a `src/` layout, or a loose script named by its file, falls out of that."""
    files = [p for p in paths if p.endswith(".py")]
    packages = {str(PurePosixPath(p).parent) for p in files if PurePosixPath(p).name == "__init__.py"}
    mapped = sorted(
        ((d.strip("/"), pkg) for pkg, d in (package_dirs or {}).items()), key=lambda x: -len(x[0])
    )
    names: dict[str, str] = {}
    for p in files:
        parts = list(PurePosixPath(p).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        folder = next((m for m in mapped if not m[0] or p.startswith(m[0] + "/")), None)
        if folder is not None:
            inner = parts[len(PurePosixPath(folder[0]).parts) if folder[0] else 0 :]
            dotted = [*folder[1].split("."), *inner] if folder[1] else inner
        else:
            depth, parent = 0, PurePosixPath(p).parent
            while str(parent) in packages:
                depth, parent = depth + 1, parent.parent
            own = 0 if PurePosixPath(p).name == "__init__.py" else 1
            dotted = parts[len(parts) - (depth + own) :] if depth + own else []
        if dotted:
            names[p] = ".".join(dotted)
    return names


def resolve(imp: Imported, importer: str, is_package: bool, known: set[str]) -> list[str]:
    """The repository's modules an import statement reaches (none for third-party imports)."""
    if imp.level:
        base = importer.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (imp.level - 1)] if imp.level > 1 else base
        module = ".".join([*base, imp.module] if imp.module else base)
    else:
        module = imp.module
    candidates = [f"{module}.{n}" for n in imp.names if n != "*"] if imp.names else []
    hits = [c for c in candidates if c in known]
    if not hits or len(hits) < len(candidates):
        parts = module.split(".")
        for i in range(len(parts), 0, -1):  # the longest prefix that is one of ours
            if ".".join(parts[:i]) in known:
                hits.append(".".join(parts[:i]))
                break
    return hits


@dataclass
class ImportGraph:
    graph: nx.DiGraph[str]  # module -> module it imports
    external: dict[str, int]  # top-level third-party name -> importing modules

    def cycles(self, limit: int = 20) -> list[list[str]]:
        """One cycle per strongly connected component (all simple cycles can be exponential),
        smallest components first, each closed: [a, b, a]."""
        out = []
        sccs = sorted((c for c in nx.strongly_connected_components(self.graph) if len(c) > 1), key=len)
        for comp in sccs[:limit]:
            edges = nx.find_cycle(self.graph.subgraph(comp))
            out.append([e[0] for e in edges] + [edges[0][0]])
        return out

    def most_depended_on(self, n: int = 15) -> list[tuple[str, int]]:
        ranked = sorted(self.graph.in_degree(), key=lambda x: (-x[1], x[0]))
        return [(m, d) for m, d in ranked[:n] if d > 0]


def import_graph(scans: Sequence[FileScan], names: Mapping[str, str]) -> ImportGraph:
    known = set(names.values())
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(known)
    external: dict[str, set[str]] = {}
    for scan in scans:
        importer = names.get(scan.path)
        if importer is None:
            continue
        is_package = scan.path.endswith("__init__.py")
        for imp in scan.imports:
            targets = resolve(imp, importer, is_package, known)
            for t in targets:
                if t != importer:
                    graph.add_edge(importer, t)
            if not targets and not imp.level and imp.module:
                external.setdefault(imp.module.split(".")[0], set()).add(importer)
    return ImportGraph(graph, {k: len(v) for k, v in sorted(external.items())})
